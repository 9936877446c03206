import { compileGetter, type FieldPath } from './query/field-path';
import type { StoredRecord } from './record.types';

export type Scalar = string | number | boolean;

/** Index keys are scalars, as for joins and equality: `3` and `"3"` are different keys. */
export function scalarOrUndefined(value: unknown): Scalar | undefined {
  const type = typeof value;
  return type === 'string' || type === 'number' || type === 'boolean'
    ? (value as Scalar)
    : undefined;
}

/**
 * A hash index of one field (a dot path): scalar value → ids of the records holding it.
 * Records whose field is missing, null or not a scalar are not indexed (and never conflict).
 * Maintained by Table under the table's lock.
 */
export class HashIndex {
  private readonly buckets = new Map<Scalar, Set<string>>();
  private readonly get: (record: unknown) => unknown;

  constructor(
    readonly field: string,
    readonly path: FieldPath,
    readonly unique: boolean,
  ) {
    this.get = compileGetter(path);
  }

  keyOf(record: StoredRecord): Scalar | undefined {
    return scalarOrUndefined(this.get(record));
  }

  /** Ids holding `key`, or undefined. */
  lookup(key: unknown): ReadonlySet<string> | undefined {
    return this.buckets.get(key as Scalar);
  }

  /** For a unique index: the key `record` would duplicate (ignoring the record's own id). */
  conflict(record: StoredRecord): Scalar | undefined {
    if (!this.unique) return undefined;
    const key = this.keyOf(record);
    if (key === undefined) return undefined;
    const holders = this.buckets.get(key);
    if (holders === undefined) return undefined;
    for (const id of holders) if (id !== record.id) return key;
    return undefined;
  }

  add(record: StoredRecord): void {
    const key = this.keyOf(record);
    if (key === undefined) return;
    const bucket = this.buckets.get(key);
    if (bucket) bucket.add(record.id);
    else this.buckets.set(key, new Set([record.id]));
  }

  remove(record: StoredRecord): void {
    const key = this.keyOf(record);
    if (key === undefined) return;
    const bucket = this.buckets.get(key);
    if (bucket === undefined) return;
    bucket.delete(record.id);
    if (bucket.size === 0) this.buckets.delete(key);
  }
}
