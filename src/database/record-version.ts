import { createHash } from 'node:crypto';
import type { StoredRecord } from './record.types';

const versions = new WeakMap<StoredRecord, string>();

/**
 * A strong validator of a stored record: a hash of its content. Records are immutable and
 * `updated_at` moves on every write, so every update gets a new version. Computed once per
 * record object and forgotten with it.
 */
export function versionOf(record: StoredRecord): string {
  let version = versions.get(record);
  if (version === undefined) {
    version = createHash('sha1').update(JSON.stringify(record)).digest('base64url');
    versions.set(record, version);
  }
  return version;
}

/** If-Match: `*` (any current version) or a list of versions. */
export type VersionCondition = '*' | readonly string[];

/** Whether `record` (undefined when absent) satisfies an If-Match condition. */
export function matchesVersion(
  record: StoredRecord | undefined,
  condition: VersionCondition,
): boolean {
  if (record === undefined) return false;
  return condition === '*' || condition.includes(versionOf(record));
}
