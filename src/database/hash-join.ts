import { scalarOrUndefined, type Scalar } from './hash-index';
import { compileGetter, type FieldPath } from './query/field-path';
import { JOIN_TYPES, type JoinType } from './query/query-params';

export { JOIN_TYPES, type JoinType };

/**
 * One output row: both records whole, nothing merged. `left` is null for the unmatched right
 * records of right and full joins; semi and anti joins have no `right` at all.
 */
export interface JoinRow<L, R> {
  readonly left: L | null;
  readonly right?: R | null;
}

/** A side of a join: anything with a size and an ordered iteration, such as a Map. */
export interface Relation<T> {
  readonly size: number;
  values(): Iterable<T>;
}

export interface JoinSpec<R = unknown> {
  /** Field name or dot path on each side. */
  readonly leftKey: string | FieldPath;
  readonly rightKey: string | FieldPath;
  readonly type: JoinType;
  /**
   * Right records holding a key, in right order (an index): when given, inner, left, full,
   * semi and anti joins probe it instead of building a hash table.
   */
  readonly rightLookup?: (key: Scalar) => readonly R[] | undefined;
}

type Probe<R> = (key: Scalar) => readonly R[] | undefined;

function keyGetter(key: string | FieldPath): (record: unknown) => Scalar | undefined {
  const get = compileGetter(typeof key === 'string' ? [key] : key);
  return (record) => scalarOrUndefined(get(record));
}

/**
 * The rows of one anchor record (the left record; for the unmatched right records that end a
 * full join, null). `matches` are its right records in right order, or null when it has none
 * but is kept (left and full joins) and for semi and anti joins, which return anchors only.
 */
export interface JoinGroup<L, R> {
  readonly left: L | null;
  readonly matches: readonly R[] | null;
}

/**
 * Hash equi-join `left[leftKey] === right[rightKey]` in O(n + m). Keys are scalars compared
 * strictly (`3` is not `"3"`); null, missing or nested keys never match. The hash table is
 * built on the smaller side (or replaced by `rightLookup`). Rows come in left order and, for
 * each left record, in right order; right joins are the mirror image (right order first);
 * full joins add the unmatched right records, in right order, after the left join's rows.
 * Lazy: a consumer that stops early does not pay for the rest of the probe.
 */
export function* hashJoin<L, R>(
  left: Relation<L>,
  right: Relation<R>,
  spec: JoinSpec<R>,
): Generator<JoinRow<L, R>> {
  if (spec.type === 'right') {
    const mirrored = hashJoin(right, left, {
      leftKey: spec.rightKey,
      rightKey: spec.leftKey,
      type: 'left',
    });
    for (const row of mirrored) yield { left: row.right ?? null, right: row.left };
    return;
  }
  const anchorsOnly = spec.type === 'semi' || spec.type === 'anti';
  for (const group of joinGroups(left, right, spec)) {
    if (anchorsOnly) yield { left: group.left };
    else if (group.matches === null) yield { left: group.left, right: null };
    else for (const match of group.matches) yield { left: group.left, right: match };
  }
}

/**
 * The join as groups, one per anchor: what hashJoin flattens into rows. Counting rows from
 * group sizes, and skipping whole groups, costs O(n + m) however many rows the join has.
 * Not for right joins (mirror the sides and use `left`).
 */
export function* joinGroups<L, R>(
  left: Relation<L>,
  right: Relation<R>,
  spec: JoinSpec<R>,
): Generator<JoinGroup<L, R>> {
  const leftKeyOf = keyGetter(spec.leftKey);
  const rightKeyOf = keyGetter(spec.rightKey);
  const probe = spec.rightLookup ?? buildProbe(left, right, leftKeyOf, rightKeyOf);
  const leftKeys = spec.type === 'full' ? new Set<Scalar>() : undefined;

  for (const record of left.values()) {
    const key = leftKeyOf(record);
    if (key !== undefined) leftKeys?.add(key);
    const matches = key === undefined ? undefined : probe(key);
    const found = matches !== undefined && matches.length > 0;
    switch (spec.type) {
      case 'semi':
        if (found) yield { left: record, matches: null };
        break;
      case 'anti':
        if (!found) yield { left: record, matches: null };
        break;
      case 'inner':
        if (found) yield { left: record, matches };
        break;
      default:
        yield { left: record, matches: found ? matches : null };
    }
  }
  if (leftKeys !== undefined) {
    // A right record is matched exactly when some left record holds its key.
    for (const record of right.values()) {
      const key = rightKeyOf(record);
      if (key === undefined || !leftKeys.has(key)) yield { left: null, matches: [record] };
    }
  }
}

/** Hash table on the smaller side, as a probe from a key to the right records holding it. */
function buildProbe<L, R>(
  left: Relation<L>,
  right: Relation<R>,
  leftKeyOf: (record: unknown) => Scalar | undefined,
  rightKeyOf: (record: unknown) => Scalar | undefined,
): Probe<R> {
  const byKey = new Map<Scalar, R[]>();
  if (right.size <= left.size) {
    for (const record of right.values()) {
      const key = rightKeyOf(record);
      if (key === undefined) continue;
      const bucket = byKey.get(key);
      if (bucket) bucket.push(record);
      else byKey.set(key, [record]);
    }
  } else {
    // Hash the smaller left side's keys, then collect the right records that hit them.
    for (const record of left.values()) {
      const key = leftKeyOf(record);
      if (key !== undefined && !byKey.has(key)) byKey.set(key, []);
    }
    for (const record of right.values()) {
      const key = rightKeyOf(record);
      if (key !== undefined) byKey.get(key)?.push(record);
    }
  }
  return (key) => byKey.get(key);
}
