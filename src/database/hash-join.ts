/** Join types: `inner` keeps matched pairs; `left` also keeps unmatched left records. */
export const JOIN_TYPES = ['inner', 'left'] as const;
export type JoinType = (typeof JOIN_TYPES)[number];

/** One output row: nothing merged, so neither side's fields can overwrite the other's. */
export interface JoinRow<L, R> {
  readonly left: L;
  readonly right: R | null;
}

/** A side of a join: anything with a size and an ordered iteration, such as a Map. */
export interface Relation<T> {
  readonly size: number;
  values(): Iterable<T>;
}

export interface JoinSpec {
  readonly leftKey: string;
  readonly rightKey: string;
  readonly type: JoinType;
}

type Scalar = string | number | boolean;
type Row = Readonly<Record<string, unknown>>;

/** Join keys are scalars compared strictly (`3` is not `"3"`); null, missing or nested never match. */
function keyOf(record: Row, field: string): Scalar | undefined {
  const value = record[field];
  const type = typeof value;
  return type === 'string' || type === 'number' || type === 'boolean'
    ? (value as Scalar)
    : undefined;
}

/**
 * Hash equi-join `left[leftKey] === right[rightKey]` in O(n + m), building the hash table on the
 * smaller side. Rows come in left order, and for each left record in right order, whichever side
 * is hashed. Lazy: a consumer that stops early does not pay for the rest of the probe.
 */
export function* hashJoin<L extends Row, R extends Row>(
  left: Relation<L>,
  right: Relation<R>,
  { leftKey, rightKey, type }: JoinSpec,
): Generator<JoinRow<L, R>> {
  const keepUnmatched = type === 'left';
  let matchesOf: (record: L) => readonly R[] | undefined;

  if (right.size <= left.size) {
    const byKey = new Map<Scalar, R[]>();
    for (const record of right.values()) {
      const key = keyOf(record, rightKey);
      if (key === undefined) continue;
      const bucket = byKey.get(key);
      if (bucket) bucket.push(record);
      else byKey.set(key, [record]);
    }
    matchesOf = (record) => {
      const key = keyOf(record, leftKey);
      return key === undefined ? undefined : byKey.get(key);
    };
  } else {
    // Hash the smaller left side's keys, then collect the right records that hit them.
    const byKey = new Map<Scalar, R[]>();
    for (const record of left.values()) {
      const key = keyOf(record, leftKey);
      if (key !== undefined && !byKey.has(key)) byKey.set(key, []);
    }
    for (const record of right.values()) {
      const key = keyOf(record, rightKey);
      if (key !== undefined) byKey.get(key)?.push(record);
    }
    matchesOf = (record) => {
      const key = keyOf(record, leftKey);
      const bucket = key === undefined ? undefined : byKey.get(key);
      return bucket && bucket.length > 0 ? bucket : undefined;
    };
  }

  for (const record of left.values()) {
    const matches = matchesOf(record);
    if (matches) {
      for (const match of matches) yield { left: record, right: match };
    } else if (keepUnmatched) {
      yield { left: record, right: null };
    }
  }
}
