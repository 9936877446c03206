import { ResultTooLargeError } from './database.errors';
import { joinGroups, type JoinGroup, type JoinRow, type Relation } from './hash-join';
import type { Scalar } from './hash-index';
import {
  decodeCursor,
  encodeCursor,
  lazyFingerprint,
  goneCursor,
  type CursorKey,
  type CursorPosition,
} from './query/cursor';
import type { FieldPath } from './query/field-path';
import { compilePredicate, indexableConditions, type Predicate } from './query/filter';
import {
  collect,
  pageGroups,
  pageInOrder,
  pageSorted,
  sortAll,
  streamGroups,
  streamInOrder,
  type Candidates,
  type GroupShape,
  lastOf,
  type Page,
} from './query/page';
import { compileProjection } from './query/projection';
import type { JoinQuery, ListQuery, PagingParams } from './query/query-params';
import { compileKeyCompare, compileKeyOf, type RowKey, type SortKey } from './query/sort';
import { PAUSE, Yielder, type LazyRows } from './query/yielder';
import type { StoredRecord } from './record.types';
import type { TableView } from './table';

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

export interface QueryLimits {
  /** Most rows a query may hold at once (MAX_RESULT_ROWS). */
  readonly maxResultRows: number;
}

interface Selection extends Candidates<StoredRecord> {
  /** Upper bound of the matches. */
  readonly size: number;
  readonly plan: string;
}

const ID_KEY: SortKey = { path: ['id'], descending: false };
const LEFT_ID: SortKey = { path: ['left', 'id'], descending: false };
const RIGHT_ID: SortKey = { path: ['right', 'id'], descending: false };
const LAST_SEQ = Number.MAX_SAFE_INTEGER;

/**
 * The records of `table` that may match `filter`, in insertion order, and the test they must
 * pass. An equality or `in` condition at the top level is answered from the primary key or an
 * index when one fits (the smallest candidate set wins); the whole filter is still checked on
 * the candidates, so index-backed answers equal scanned ones.
 */
export function selectRows(view: TableView, filter: Predicate | undefined): Selection {
  // Index and key lookups are made now, as the read starts, when the live table is the snapshot.
  const { table } = view;
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
  if (best === undefined) {
    // Re-iterable: a join may walk a side twice (keys first when it is the smaller side).
    return { rows: view, test, size: view.size, plan: 'scan' };
  }
  const records: StoredRecord[] = [];
  for (const id of new Set(best.ids)) {
    const record = table.get(id);
    if (record !== undefined && (test === undefined || test(record))) records.push(record);
  }
  records.sort((a, b) => table.seqOf(a.id) - table.seqOf(b.id));
  return { rows: records, size: records.length, plan: best.plan };
}

/** @throws ResultTooLargeError when a page would hold more than the cap. */
function checkHeldRows(
  paging: PagingParams,
  sorted: boolean,
  { maxResultRows }: QueryLimits,
): void {
  const held = sorted ? paging.offset + paging.limit + 1 : paging.limit + 1;
  if (held > maxResultRows) throw new ResultTooLargeError(held, maxResultRows);
}

/** Rows of a whole result (`limit=all`), read as the response is written. */
export interface QueryStream<T> {
  /** The rows after offset or cursor, with PAUSE markers between slices of work. */
  readonly rows: LazyRows<T>;
  readonly plan: string;
  /** Paces the reading of the rows, shared with whoever serializes them. */
  readonly yielder: Yielder;
  /** Ends the read early (a client gone); idempotent. */
  readonly close?: () => void;
}

/** How a list is ordered and where it starts: default order by sequence, or an explicit sort. */
type ListOrder =
  | {
      readonly sorted: false;
      readonly keyOf: (r: StoredRecord) => number[];
      readonly after?: number[];
    }
  | {
      readonly sorted: true;
      readonly keyOf: (r: StoredRecord) => RowKey;
      readonly compare: (a: RowKey, b: RowKey) => number;
      readonly after?: RowKey;
    };

function listOrder(view: TableView, query: ListQuery, print: () => string): ListOrder {
  if (query.sort.length === 0) {
    const position =
      query.cursor === undefined
        ? undefined
        : decodeCursor(query.cursor, print(), { kind: 'seq', length: 1, refLength: 1 });
    return {
      sorted: false,
      keyOf: (record) => [view.seqOf(record)],
      after:
        position === undefined ? undefined : (positionKey(position, () => undefined) as number[]),
    };
  }
  const keys = [...query.sort, ID_KEY];
  const keyOf = compileKeyOf(keys);
  const position =
    query.cursor === undefined
      ? undefined
      : decodeCursor(query.cursor, print(), { kind: 'sort', length: keys.length, refLength: 1 });
  return {
    sorted: true,
    keyOf,
    compare: compileKeyCompare(keys),
    after:
      position === undefined
        ? undefined
        : (positionKey(position, ([id]) => {
            const record = id === null ? undefined : view.get(id);
            return record === undefined ? undefined : keyOf(record);
          }) as RowKey),
  };
}

function listFingerprint({ table }: TableView, query: ListQuery): () => string {
  return lazyFingerprint({
    table: table.name,
    created: table.created,
    filter: query.filter ?? null,
    sort: query.sort,
  });
}

/** A page of a table's records: filtered, ordered, paged and projected. */
export async function executeList(
  table: TableView,
  query: ListQuery,
  limits: QueryLimits,
): Promise<QueryResult<unknown>> {
  checkHeldRows(query, query.sort.length > 0, limits);
  const selection = selectRows(table, query.filter);
  const print = listFingerprint(table, query);
  const order = listOrder(table, query, print);
  const yielder = new Yielder();
  const page: Page<StoredRecord> = order.sorted
    ? await pageSorted(
        selection,
        order.keyOf,
        order.compare,
        { ...query, after: order.after },
        yielder,
      )
    : await pageInOrder(
        selection,
        order.keyOf,
        // Unfiltered, the snapshot's size is the count: the scan stops at the page's end.
        { ...query, after: order.after, knownTotal: selection.test ? undefined : selection.size },
        yielder,
      );
  const last = lastOf(page);
  const project = query.fields === undefined ? undefined : compileProjection(query.fields);
  return {
    items: project === undefined ? page.items : page.items.map(project),
    total: page.total,
    nextCursor:
      page.nextKey === undefined || last === undefined
        ? undefined
        : encodeCursor(print(), page.nextKey, [last.id]),
    plan: selection.plan,
  };
}

/**
 * A whole list (`limit=all`): filtered, ordered, after offset or cursor, and projected, read
 * lazily in default order. An explicit sort holds the matches (at most MAX_RESULT_ROWS).
 */
export async function streamList(
  table: TableView,
  query: ListQuery,
  limits: QueryLimits,
): Promise<QueryStream<unknown>> {
  const selection = selectRows(table, query.filter);
  const order = listOrder(table, query, listFingerprint(table, query));
  const yielder = new Yielder();
  const { offset } = query;
  const rows: LazyRows<StoredRecord> = order.sorted
    ? await sortAll(
        selection,
        order.keyOf,
        order.compare,
        { offset, after: order.after },
        limits.maxResultRows,
        yielder,
      )
    : streamInOrder(selection, order.keyOf, { offset, after: order.after }, yielder);
  const project = query.fields === undefined ? undefined : compileProjection(query.fields);
  return {
    rows: project === undefined ? rows : mapRows(rows, project),
    plan: selection.plan,
    yielder,
  };
}

/** `rows` through `map`, markers passed on. */
function* mapRows<T, U>(rows: LazyRows<T>, map: (row: T) => U): LazyRows<U> {
  for (const row of rows) yield row === PAUSE ? PAUSE : map(row);
}

type Row = JoinRow<StoredRecord, StoredRecord>;
type Group = JoinGroup<StoredRecord, StoredRecord>;

type JoinKeys = { readonly leftKey: FieldPath; readonly rightKey: FieldPath };

/** A join ready to be read: its groups, how they hold rows, its order and its plan. */
interface PreparedJoin {
  /** With PAUSE markers while an index probe waits for a hash built in slices. */
  readonly groups: Iterable<Group | typeof PAUSE>;
  readonly shape: GroupShape<Group, Row>;
  readonly anchorsOnly: boolean;
  readonly print: () => string;
  readonly order:
    | { readonly sorted: false; readonly after?: number[] }
    | {
        readonly sorted: true;
        readonly keyOf: (row: Row) => RowKey;
        readonly compare: (a: RowKey, b: RowKey) => number;
        readonly after?: RowKey;
      };
  /** The `fields` projection of a row, if any. */
  readonly project?: (row: Row) => unknown;
  readonly plan: string;
  readonly yielder: Yielder;
}

async function prepareJoin(
  leftTable: TableView,
  rightTable: TableView,
  keys: JoinKeys,
  query: JoinQuery,
): Promise<PreparedJoin> {
  const yielder = new Yielder();
  const left = selectRows(leftTable, query.filters.left);
  const rightIndex =
    query.type === 'right' ? undefined : rightTable.table.index(keys.rightKey.join('.'));
  // With an index on the right key, matches come from the index and the right side is never
  // scanned, unless the join needs all of it anyway (full joins list its unmatched records).
  const probeRight = rightIndex !== undefined && query.type !== 'full';
  const right = probeRight ? undefined : selectRows(rightTable, query.filters.right);
  const rightTest =
    query.filters.right === undefined ? undefined : compilePredicate(query.filters.right);
  // Probed keys are remembered: a key shared by many left records is filtered and ordered once.
  const probed = new Map<Scalar, StoredRecord[]>();
  // Once the right table changes, its index no longer describes the snapshot: the remaining
  // probes use a hash table of the snapshot's right side, built in slices between pauses.
  const snapshotHash =
    !probeRight || rightIndex === undefined
      ? undefined
      : new SnapshotHash(rightTable, (record) => rightIndex.keyOf(record), rightTest);
  const rightLookup =
    snapshotHash === undefined || rightIndex === undefined
      ? undefined
      : (key: Scalar): StoredRecord[] | undefined => {
          const known = probed.get(key);
          if (known !== undefined) return known;
          if (!rightTable.unchanged) return snapshotHash.get(key);
          const records: StoredRecord[] = [];
          for (const id of rightIndex.lookup(key) ?? []) {
            const record = rightTable.table.get(id);
            if (record !== undefined && (rightTest === undefined || rightTest(record)))
              records.push(record);
          }
          if (records.length > 1)
            records.sort((a, b) => rightTable.table.seqOf(a.id) - rightTable.table.seqOf(b.id));
          probed.set(key, records);
          return records;
        };
  const lookupReady = () => rightTable.unchanged || snapshotHash?.build(yielder) !== false;

  const leftRows = await relationOf(left, yielder);
  const rightRows: Relation<StoredRecord> =
    right === undefined
      ? { size: rightTable.size, values: () => [] }
      : await relationOf(right, yielder);
  const mirrored = query.type === 'right';
  const anchorsOnly = query.type === 'semi' || query.type === 'anti';
  const groups = mirrored
    ? await joinGroups(
        rightRows,
        leftRows,
        { leftKey: keys.rightKey, rightKey: keys.leftKey, type: 'left' },
        yielder,
      )
    : await joinGroups(
        leftRows,
        rightRows,
        {
          leftKey: keys.leftKey,
          rightKey: keys.rightKey,
          type: query.type,
          rightLookup,
          lookupReady,
        },
        yielder,
      );
  const [anchorTable, matchTable] = mirrored ? [rightTable, leftTable] : [leftTable, rightTable];
  const shape: GroupShape<Group, Row> = {
    size: (group) => group.matches?.length ?? 1,
    keyOf: (group, index) => {
      const anchor = group.left === null ? LAST_SEQ : anchorTable.seqOf(group.left);
      if (anchorsOnly) return [anchor];
      return [anchor, group.matches === null ? -1 : matchTable.seqOf(group.matches[index])];
    },
    rowAt: (group, index) => {
      if (anchorsOnly) return { left: group.left };
      const match = group.matches === null ? null : group.matches[index];
      return mirrored ? { left: match, right: group.left } : { left: group.left, right: match };
    },
  };
  const print = lazyFingerprint({
    left: leftTable.table.name,
    right: rightTable.table.name,
    created: [leftTable.table.created, rightTable.table.created],
    keys,
    type: query.type,
    filters: query.filters,
    sort: query.sort,
  });
  const refLength = anchorsOnly ? 1 : 2;
  let order: PreparedJoin['order'];
  if (query.sort.length === 0) {
    const position =
      query.cursor === undefined
        ? undefined
        : decodeCursor(query.cursor, print(), { kind: 'seq', length: refLength, refLength });
    order = {
      sorted: false,
      after:
        position === undefined ? undefined : (positionKey(position, () => undefined) as number[]),
    };
  } else {
    const sortKeys = [...query.sort, ...(anchorsOnly ? [LEFT_ID] : [LEFT_ID, RIGHT_ID])];
    const keyOf = compileKeyOf(sortKeys);
    const position =
      query.cursor === undefined
        ? undefined
        : decodeCursor(query.cursor, print(), { kind: 'sort', length: sortKeys.length, refLength });
    order = {
      sorted: true,
      keyOf,
      compare: compileKeyCompare(sortKeys),
      after:
        position === undefined
          ? undefined
          : (positionKey(position, ([leftId, rightId]) => {
              const left = leftId === null ? null : leftTable.get(leftId);
              const right =
                rightId === null || rightId === undefined ? null : rightTable.get(rightId);
              if (left === undefined || right === undefined) return undefined;
              return keyOf(anchorsOnly ? { left } : { left, right });
            }) as RowKey),
    };
  }
  const projectLeft =
    query.fields?.left === undefined ? undefined : compileProjection(query.fields.left);
  const projectRight =
    query.fields?.right === undefined ? undefined : compileProjection(query.fields.right);
  const project =
    projectLeft === undefined && projectRight === undefined
      ? undefined
      : (row: Row) => {
          const out: { left: unknown; right?: unknown } = {
            left: row.left && projectLeft ? projectLeft(row.left) : row.left,
          };
          if ('right' in row)
            out.right = row.right && projectRight ? projectRight(row.right) : row.right;
          return out;
        };
  const joinPlan = rightLookup ? `index(right.${keys.rightKey.join('.')})` : 'hash';
  const rightPlan = right === undefined ? 'probe' : right.plan;
  return {
    groups,
    shape,
    anchorsOnly,
    print,
    order,
    project,
    plan: `left=${left.plan}; right=${rightPlan}; join=${joinPlan}`,
    yielder,
  };
}

/**
 * Every group of a join that is to be sorted: sorting needs every row, so joins whose rows
 * (counted from group sizes) exceed the cap are refused.
 * @throws ResultTooLargeError
 */
async function groupsToSort(
  { groups, shape, yielder }: PreparedJoin,
  { maxResultRows }: QueryLimits,
): Promise<Group[]> {
  const all: Group[] = [];
  let rows = 0;
  for (const group of groups) {
    if (group === PAUSE || yielder.due()) await yielder.pause();
    if (group === PAUSE) continue;
    all.push(group);
    rows += shape.size(group);
    if (rows > maxResultRows) {
      throw new ResultTooLargeError(
        rows,
        maxResultRows,
        'sort at least',
        'Filter the sides, or read the join in default order',
      );
    }
  }
  return all;
}

/** A page of the join of two tables; see hashJoin for the row order. */
export async function executeJoin(
  leftTable: TableView,
  rightTable: TableView,
  keys: JoinKeys,
  query: JoinQuery,
  limits: QueryLimits,
): Promise<QueryResult<unknown>> {
  checkHeldRows(query, query.sort.length > 0, limits);
  const join = await prepareJoin(leftTable, rightTable, keys, query);
  const { order, shape, yielder } = join;
  const page: Page<Row> = order.sorted
    ? await pageSorted(
        { rows: rowsOf(await groupsToSort(join, limits), shape) },
        order.keyOf,
        order.compare,
        { ...query, after: order.after },
        yielder,
      )
    : await pageGroups(join.groups, shape, { ...query, after: order.after }, yielder);
  const lastRow = lastOf(page);
  return {
    items: join.project === undefined ? page.items : page.items.map(join.project),
    total: page.total,
    nextCursor:
      page.nextKey === undefined || lastRow === undefined
        ? undefined
        : encodeCursor(
            join.print(),
            page.nextKey,
            join.anchorsOnly
              ? [lastRow.left?.id ?? null]
              : [lastRow.left?.id ?? null, lastRow.right?.id ?? null],
          ),
    plan: join.plan,
  };
}

/**
 * A whole join (`limit=all`), after offset or cursor, read lazily in default order. An explicit
 * sort holds the rows (at most MAX_RESULT_ROWS).
 */
export async function streamJoin(
  leftTable: TableView,
  rightTable: TableView,
  keys: JoinKeys,
  query: JoinQuery,
  limits: QueryLimits,
): Promise<QueryStream<unknown>> {
  const join = await prepareJoin(leftTable, rightTable, keys, query);
  const { order, shape, yielder } = join;
  const rows: LazyRows<Row> = order.sorted
    ? await sortAll(
        { rows: rowsOf(await groupsToSort(join, limits), shape) },
        order.keyOf,
        order.compare,
        { offset: query.offset, after: order.after },
        limits.maxResultRows,
        yielder,
      )
    : streamGroups(join.groups, shape, { offset: query.offset, after: order.after }, yielder);
  return {
    rows: join.project === undefined ? rows : mapRows(rows, join.project),
    plan: join.plan,
    yielder,
  };
}

/** The key a cursor stands for; a reference is resolved against the current records. */
function positionKey(
  position: CursorPosition,
  resolve: (ref: readonly (string | null)[]) => CursorKey | undefined,
): CursorKey {
  if ('key' in position) return position.key;
  const key = resolve(position.ref);
  if (key === undefined) throw goneCursor();
  return key;
}

function* rowsOf<G, T>(groups: Iterable<G>, shape: GroupShape<G, T>): Generator<T> {
  for (const group of groups) {
    const size = shape.size(group);
    for (let i = 0; i < size; i++) yield shape.rowAt(group, i);
  }
}

/**
 * The records of a snapshot that pass `test`, by their key, in insertion order: built in slices
 * (`build` until it says it is done), so a large side never holds the event loop.
 */
class SnapshotHash {
  private readonly byKey = new Map<Scalar, StoredRecord[]>();
  private rows: Iterator<StoredRecord> | undefined;
  private done = false;

  constructor(
    private readonly view: TableView,
    private readonly keyOf: (record: StoredRecord) => Scalar | undefined,
    private readonly test: ((record: StoredRecord) => boolean) | undefined,
  ) {}

  /** Adds records until the slice of work is used up; true once every record is in. */
  build(yielder: Yielder): boolean {
    if (this.done) return true;
    this.rows ??= this.view[Symbol.iterator]();
    for (let next = this.rows.next(); next.done !== true; next = this.rows.next()) {
      const record = next.value;
      const key = this.keyOf(record);
      if (key !== undefined && (this.test === undefined || this.test(record))) {
        const bucket = this.byKey.get(key);
        if (bucket === undefined) this.byKey.set(key, [record]);
        else bucket.push(record);
      }
      if (yielder.due()) return false;
    }
    this.done = true;
    return true;
  }

  get(key: Scalar): StoredRecord[] | undefined {
    return this.byKey.get(key);
  }
}

/**
 * A join side: an unfiltered scan is the table itself (no copy); anything else is collected
 * once, pausing on long runs.
 */
async function relationOf(selection: Selection, yielder: Yielder): Promise<Relation<StoredRecord>> {
  if (selection.test === undefined && !Array.isArray(selection.rows)) {
    const { rows, size } = selection;
    return { size, values: () => rows };
  }
  const rows = await collect(selection, yielder);
  return { size: rows.length, values: () => rows };
}
