import { hashJoin, type JoinRow, type Relation } from './hash-join';
import type { Scalar } from './hash-index';
import { decodeCursor, encodeCursor, fingerprint, type CursorKey } from './query/cursor';
import type { FieldPath } from './query/field-path';
import { compilePredicate, indexableConditions, type Predicate } from './query/filter';
import { pageInOrder, pageSorted, type Page, type PageRequest } from './query/page';
import { compileProjection } from './query/projection';
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
const LAST_SEQ = Number.MAX_SAFE_INTEGER;

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
  const rightLookup =
    !probeRight || rightIndex === undefined
      ? undefined
      : (key: Scalar): StoredRecord[] | undefined => {
          const ids = rightIndex.lookup(key);
          if (ids === undefined) return undefined;
          const records: StoredRecord[] = [];
          for (const id of ids) {
            const record = rightTable.get(id);
            if (record !== undefined && (rightTest === undefined || rightTest(record)))
              records.push(record);
          }
          if (records.length > 1)
            records.sort((a, b) => rightTable.seqOf(a.id) - rightTable.seqOf(b.id));
          return records;
        };

  const leftRows = materialise(left.rows);
  const rightRows: Relation<StoredRecord> =
    right === undefined
      ? { size: rightTable.size, values: () => [] }
      : asRelation(materialise(right.rows));
  const rows = hashJoin(asRelation(leftRows), rightRows, {
    leftKey: keys.leftKey,
    rightKey: keys.rightKey,
    type: query.type,
    rightLookup,
  });

  const oneSided = query.type === 'semi' || query.type === 'anti';
  const seqOf = (table: Table, record: StoredRecord | null | undefined) =>
    record ? table.seqOf(record.id) : -1;
  const seqKey =
    query.type === 'right'
      ? { length: 2, of: (row: Row) => [seqOf(rightTable, row.right), seqOf(leftTable, row.left)] }
      : oneSided
        ? { length: 1, of: (row: Row) => [seqOf(leftTable, row.left)] }
        : {
            length: 2,
            of: (row: Row) => [
              row.left ? seqOf(leftTable, row.left) : LAST_SEQ,
              seqOf(rightTable, row.right),
            ],
          };
  const tieBreak: SortKey[] = oneSided
    ? [{ path: ['left', 'id'], descending: false }]
    : [
        { path: ['left', 'id'], descending: false },
        { path: ['right', 'id'], descending: false },
      ];
  const { page, nextCursor } = pageRows(rows, query, query.sort, tieBreak, seqKey, {
    left: leftTable.name,
    right: rightTable.name,
    keys,
    type: query.type,
    filters: query.filters,
    sort: query.sort,
  });

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
