import { scalarOrUndefined, type Scalar } from './hash-index';
import { compileGetter, type FieldPath } from './query/field-path';
import { JOIN_TYPES, type JoinType } from './query/query-params';
import { PAUSE, type Yielder } from './query/yielder';

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
  /**
   * With `rightLookup`: whether it can answer now. While it says no (it is building something
   * in slices), the groups yield PAUSE and ask again once the consumer has paused.
   */
  readonly lookupReady?: () => boolean;
}

type Probe<R> = (key: Scalar) => readonly R[] | undefined;
type KeyOf = (record: unknown) => Scalar | undefined;

function keyGetter(key: string | FieldPath): KeyOf {
  const path = typeof key === 'string' ? [key] : key;
  if (path.length === 1) {
    // The hot case, without the own-member check: what a plain object inherits (constructor,
    // toString, __proto__…) is a function or an object, never a scalar, so it never matches.
    const [field] = path;
    return (record) => {
      const value = (record as Record<string, unknown>)[field];
      const type = typeof value;
      return type === 'string' || type === 'number' || type === 'boolean'
        ? (value as Scalar)
        : undefined;
    };
  }
  const get = compileGetter(path);
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
 */
export async function hashJoin<L, R>(
  left: Relation<L>,
  right: Relation<R>,
  spec: JoinSpec<R>,
): Promise<JoinRow<L, R>[]> {
  if (spec.type === 'right') {
    const mirrored = await hashJoin(right, left, {
      leftKey: spec.rightKey,
      rightKey: spec.leftKey,
      type: 'left',
    });
    return mirrored.map((row) => ({ left: row.right ?? null, right: row.left }));
  }
  const anchorsOnly = spec.type === 'semi' || spec.type === 'anti';
  const rows: JoinRow<L, R>[] = [];
  for (const group of await joinGroups(left, right, spec)) {
    if (group === PAUSE) continue;
    if (anchorsOnly) rows.push({ left: group.left });
    else if (group.matches === null) rows.push({ left: group.left, right: null });
    else for (const match of group.matches) rows.push({ left: group.left, right: match });
  }
  return rows;
}

/**
 * The join as groups, one per anchor: what hashJoin flattens into rows. Counting rows from
 * group sizes, and skipping whole groups, costs O(n + m) however many rows the join has.
 * The hash table is built first (pausing through `yielder` on large sides); the groups then
 * come lazily. Not for right joins (mirror the sides and use `left`).
 */
export async function joinGroups<L, R>(
  left: Relation<L>,
  right: Relation<R>,
  spec: JoinSpec<R>,
  yielder?: Yielder,
): Promise<Iterable<JoinGroup<L, R> | typeof PAUSE>> {
  const leftKeyOf = keyGetter(spec.leftKey);
  const rightKeyOf = keyGetter(spec.rightKey);
  const probe = spec.rightLookup ?? (await buildProbe(left, right, leftKeyOf, rightKeyOf, yielder));
  const ready = spec.rightLookup === undefined ? undefined : spec.lookupReady;
  return groupsOf(left, right, spec.type, leftKeyOf, rightKeyOf, probe, ready);
}

function* groupsOf<L, R>(
  left: Relation<L>,
  right: Relation<R>,
  type: JoinType,
  leftKeyOf: KeyOf,
  rightKeyOf: KeyOf,
  probe: Probe<R>,
  ready?: () => boolean,
): Generator<JoinGroup<L, R> | typeof PAUSE> {
  const leftKeys = type === 'full' ? new Set<Scalar>() : undefined;
  for (const record of left.values()) {
    const key = leftKeyOf(record);
    if (key !== undefined) leftKeys?.add(key);
    if (ready !== undefined && key !== undefined) while (!ready()) yield PAUSE;
    const matches = key === undefined ? undefined : probe(key);
    const found = matches !== undefined && matches.length > 0;
    switch (type) {
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
async function buildProbe<L, R>(
  left: Relation<L>,
  right: Relation<R>,
  leftKeyOf: KeyOf,
  rightKeyOf: KeyOf,
  yielder?: Yielder,
): Promise<Probe<R>> {
  const byKey = new Map<Scalar, R[]>();
  if (right.size <= left.size) {
    for (const record of right.values()) {
      if (yielder?.due()) await yielder.pause();
      const key = rightKeyOf(record);
      if (key === undefined) continue;
      const bucket = byKey.get(key);
      if (bucket) bucket.push(record);
      else byKey.set(key, [record]);
    }
  } else {
    // Hash the smaller left side's keys, then collect the right records that hit them.
    for (const record of left.values()) {
      if (yielder?.due()) await yielder.pause();
      const key = leftKeyOf(record);
      if (key !== undefined && !byKey.has(key)) byKey.set(key, []);
    }
    for (const record of right.values()) {
      if (yielder?.due()) await yielder.pause();
      const key = rightKeyOf(record);
      if (key !== undefined) byKey.get(key)?.push(record);
    }
  }
  return (key) => byKey.get(key);
}
