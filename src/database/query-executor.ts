import { joinGroups, type JoinGroup, type JoinRow, type Relation } from './hash-join';
import type { Scalar } from './hash-index';
import { decodeCursor, encodeCursor, fingerprint, type CursorKey } from './query/cursor';
import type { FieldPath } from './query/field-path';
import { compilePredicate, indexableConditions, type Predicate } from './query/filter';
import {
  pageGroups,
  pageInOrder,
  pageSorted,
  type GroupShape,
  type Page,
  type PageRequest,
} from './query/page';
import { compileProjection } from './query/projection';
import { QueryError } from './query/query.errors';
import type { JoinQuery, ListQuery, PagingParams } from './query/query-params';
import { compileKeyCompare, compileKeyOf, type RowKey, type SortKey } from './query/sort';
import type { StoredRecord } from './record.types';
import type { Table } from './table';

/** One page of a list or join, with how it was answered. */
export interface QueryResult<T> {
  readonly items: readonly T[];
  /** Matches in all (X-Total-Count); undefined with `count=none`. */
  readonly total?: number;
  /** Opaque cursor of the next page, when there is one. */
  readonly nextCursor?: string;
  /** How the rows were found: `scan`, `pk` or `index(<field>)`; joins name each side. */
  readonly plan: string;
}

interface Selection {
  /** Matching records in insertion order. */
  readonly rows: Iterable<StoredRecord>;
  /** Upper bound of the matches, for choosing the side to hash. */
  readonly size: number;
  readonly plan: string;
}

const ID_PATH: FieldPath = ['id'];
const LEFT_ID: SortKey = { path: ['left', 'id'], descending: false };
const RIGHT_ID: SortKey = { path: ['right', 'id'], descending: false };
const LAST_SEQ = Number.MAX_SAFE_INTEGER;
/** Most rows a sorted join may order (sorting needs them all at once). */
export const JOIN_SORT_ROWS_MAX = 250_000;

/**
 * The records of `table` matching `filter`, in insertion order. An equality or `in` condition
 * at the top level is answered from the primary key or an index when one fits (the smallest
 * candidate set wins); the whole filter is then checked on the candidates, so index-backed
 * answers equal scanned ones.
 */
export function selectRows(table: Table, filter: Predicate | undefined): Selection {
  const test = filter === undefined ? undefined : compilePredicate(filter);
  let best: { ids: string[]; plan: string } | undefined;
  for (const { path, values } of indexableConditions(filter)) {
    const field = path.join('.');
    let ids: string[];
    if (field === 'id') {
      ids = values.filter((value): value is string => typeof value === 'string');
    } else {
      const index = table.index(field);
      // Null is never indexed, so a condition that admits null cannot be answered by the index.
      if (index === undefined || values.includes(null)) continue;
      ids = values.flatMap((value) => [...(index.lookup(value) ?? [])]);
    }
    if (best === undefined || ids.length < best.ids.length) {
      best = { ids, plan: field === 'id' ? 'pk' : `index(${field})` };
    }
  }
  if (best !== undefined) {
    const unique = [...new Set(best.ids)];
    const records: StoredRecord[] = [];
    for (const id of unique) {
      const record = table.get(id);
      if (record !== undefined && (test === undefined || test(record))) records.push(record);
    }
    records.sort((a, b) => table.seqOf(a.id) - table.seqOf(b.id));
    return { rows: records, size: records.length, plan: best.plan };
  }
  return {
    rows: test === undefined ? table.values() : filtered(table.values(), test),
    size: table.size,
    plan: 'scan',
  };
}

function* filtered<T>(rows: Iterable<T>, test: (row: T) => boolean): Generator<T> {
  for (const row of rows) if (test(row)) yield row;
}

/** Pages `rows` in default order (by `seqKey`) or by `sort` with `tieBreak` appended. */
function pageRows<T>(
  rows: Iterable<T>,
  paging: PagingParams,
  sort: readonly SortKey[],
  tieBreak: readonly SortKey[],
  seqKey: { readonly length: number; readonly of: (row: T) => readonly number[] },
  queryIdentity: unknown,
): { page: Page<T>; nextCursor?: string } {
  const print = fingerprint(queryIdentity);
  const request = (after: CursorKey | undefined): PageRequest<never> =>
    ({
      limit: paging.limit,
      offset: paging.offset,
      count: paging.count,
      after,
    }) as PageRequest<never>;
  let page: Page<T>;
  if (sort.length === 0) {
    const after =
      paging.cursor === undefined
        ? undefined
        : decodeCursor(paging.cursor, print, { kind: 'seq', length: seqKey.length });
    page = pageInOrder(rows, seqKey.of, request(after));
  } else {
    const keys = [...sort, ...tieBreak];
    const after =
      paging.cursor === undefined
        ? undefined
        : decodeCursor(paging.cursor, print, { kind: 'sort', length: keys.length });
    page = pageSorted(
      rows,
      compileKeyOf(keys) as (row: T) => RowKey,
      compileKeyCompare(keys),
      request(after),
    );
  }
  return {
    page,
    nextCursor: page.nextKey === undefined ? undefined : encodeCursor(print, page.nextKey),
  };
}

/** A page of a table's records: filtered, ordered, paged and projected. */
export function executeList(table: Table, query: ListQuery): QueryResult<unknown> {
  const { rows, plan } = selectRows(table, query.filter);
  const { page, nextCursor } = pageRows(
    rows,
    query,
    query.sort,
    [{ path: ID_PATH, descending: false }],
    { length: 1, of: (record) => [table.seqOf(record.id)] },
    { table: table.name, filter: query.filter ?? null, sort: query.sort },
  );
  const project = query.fields === undefined ? undefined : compileProjection(query.fields);
  return {
    items: project === undefined ? page.items : page.items.map(project),
    total: page.total,
    nextCursor,
    plan,
  };
}

type Row = JoinRow<StoredRecord, StoredRecord>;
type Group = JoinGroup<StoredRecord, StoredRecord>;

/** A page of the join of two tables; see hashJoin for the row order. */
export function executeJoin(
  leftTable: Table,
  rightTable: Table,
  keys: { readonly leftKey: FieldPath; readonly rightKey: FieldPath },
  query: JoinQuery,
): QueryResult<unknown> {
  const left = selectRows(leftTable, query.filters.left);
  const rightIndex = query.type === 'right' ? undefined : rightTable.index(keys.rightKey.join('.'));
  // With an index on the right key, matches come from the index and the right side is never
  // scanned, unless the join needs all of it anyway (full joins list its unmatched records).
  const probeRight = rightIndex !== undefined && query.type !== 'full';
  const right = probeRight ? undefined : selectRows(rightTable, query.filters.right);
  const rightTest =
    query.filters.right === undefined ? undefined : compilePredicate(query.filters.right);
  // Probed keys are remembered: a key shared by many left records is filtered and ordered once.
  const probed = new Map<Scalar, StoredRecord[]>();
  const rightLookup =
    !probeRight || rightIndex === undefined
      ? undefined
      : (key: Scalar): StoredRecord[] | undefined => {
          const known = probed.get(key);
          if (known !== undefined) return known;
          const records: StoredRecord[] = [];
          for (const id of rightIndex.lookup(key) ?? []) {
            const record = rightTable.get(id);
            if (record !== undefined && (rightTest === undefined || rightTest(record)))
              records.push(record);
          }
          if (records.length > 1)
            records.sort((a, b) => rightTable.seqOf(a.id) - rightTable.seqOf(b.id));
          probed.set(key, records);
          return records;
        };

  const leftRows = asRelation(materialise(left.rows));
  const rightRows: Relation<StoredRecord> =
    right === undefined
      ? { size: rightTable.size, values: () => [] }
      : asRelation(materialise(right.rows));
  const mirrored = query.type === 'right';
  const anchorsOnly = query.type === 'semi' || query.type === 'anti';
  const groups = mirrored
    ? joinGroups(rightRows, leftRows, {
        leftKey: keys.rightKey,
        rightKey: keys.leftKey,
        type: 'left',
      })
    : joinGroups(leftRows, rightRows, {
        leftKey: keys.leftKey,
        rightKey: keys.rightKey,
        type: query.type,
        rightLookup,
      });
  const [anchorTable, matchTable] = mirrored ? [rightTable, leftTable] : [leftTable, rightTable];
  const shape: GroupShape<Group, Row> = {
    size: (group) => group.matches?.length ?? 1,
    keyOf: (group, index) => {
      const anchor = group.left === null ? LAST_SEQ : anchorTable.seqOf(group.left.id);
      if (anchorsOnly) return [anchor];
      return [anchor, group.matches === null ? -1 : matchTable.seqOf(group.matches[index].id)];
    },
    rowAt: (group, index) => {
      if (anchorsOnly) return { left: group.left };
      const match = group.matches === null ? null : group.matches[index];
      return mirrored ? { left: match, right: group.left } : { left: group.left, right: match };
    },
  };
  const identity = {
    left: leftTable.name,
    right: rightTable.name,
    keys,
    type: query.type,
    filters: query.filters,
    sort: query.sort,
  };
  const print = fingerprint(identity);
  let page: Page<Row>;
  if (query.sort.length === 0) {
    const after =
      query.cursor === undefined
        ? undefined
        : decodeCursor(query.cursor, print, { kind: 'seq', length: anchorsOnly ? 1 : 2 });
    page = pageGroups(groups, shape, { ...query, after: after as readonly number[] | undefined });
  } else {
    const all = [...groups];
    const size = all.reduce((sum, group) => sum + shape.size(group), 0);
    if (size > JOIN_SORT_ROWS_MAX) {
      throw new QueryError(
        'sort',
        `a sorted join may cover at most ${JOIN_SORT_ROWS_MAX} rows, and this one has ${size}: filter the sides, or page in default order`,
      );
    }
    const rows = all.flatMap((group) =>
      Array.from({ length: shape.size(group) }, (_, i) => shape.rowAt(group, i)),
    );
    const keysOfSort = [...query.sort, ...(anchorsOnly ? [LEFT_ID] : [LEFT_ID, RIGHT_ID])];
    const after =
      query.cursor === undefined
        ? undefined
        : decodeCursor(query.cursor, print, { kind: 'sort', length: keysOfSort.length });
    page = pageSorted(rows, compileKeyOf(keysOfSort), compileKeyCompare(keysOfSort), {
      ...query,
      after: after as RowKey | undefined,
    });
  }
  const nextCursor = page.nextKey === undefined ? undefined : encodeCursor(print, page.nextKey);

  const projectLeft =
    query.fields?.left === undefined ? undefined : compileProjection(query.fields.left);
  const projectRight =
    query.fields?.right === undefined ? undefined : compileProjection(query.fields.right);
  const items =
    projectLeft === undefined && projectRight === undefined
      ? page.items
      : page.items.map((row) => {
          const out: { left: unknown; right?: unknown } = {
            left: row.left && projectLeft ? projectLeft(row.left) : row.left,
          };
          if ('right' in row)
            out.right = row.right && projectRight ? projectRight(row.right) : row.right;
          return out;
        });
  const joinPlan = rightLookup ? `index(right.${keys.rightKey.join('.')})` : 'hash';
  const rightPlan = right === undefined ? 'probe' : right.plan;
  return {
    items,
    total: page.total,
    nextCursor,
    plan: `left=${left.plan}; right=${rightPlan}; join=${joinPlan}`,
  };
}

function materialise<T>(rows: Iterable<T>): readonly T[] {
  return Array.isArray(rows) ? rows : [...rows];
}

function asRelation<T>(rows: readonly T[]): Relation<T> {
  return { size: rows.length, values: () => rows };
}
