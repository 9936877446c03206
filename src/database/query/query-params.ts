import { parseFieldPath, type FieldPath } from './field-path';
import { allOf, parseCondition, parseGroup, type Predicate } from './filter';
import { parseFields } from './projection';
import { QueryError } from './query.errors';
import { parseSort, type SortKey } from './sort';

/** A raw query string as the HTTP adapter parsed it: repeated names give arrays. */
export type RawQuery = Readonly<Record<string, unknown>>;

export interface PagingParams {
  /** Rows per page; Infinity with `limit=all` (the whole result, streamed). */
  readonly limit: number;
  readonly offset: number;
  readonly cursor?: string;
  /** False with `count=none`. */
  readonly count: boolean;
}

export interface ListQuery extends PagingParams {
  readonly filter?: Predicate;
  readonly sort: readonly SortKey[];
  readonly fields?: readonly FieldPath[];
}

export const JOIN_TYPES = ['inner', 'left', 'right', 'full', 'semi', 'anti'] as const;
export type JoinType = (typeof JOIN_TYPES)[number];
export type JoinSideName = 'left' | 'right';

export interface JoinQuery extends PagingParams {
  readonly type: JoinType;
  readonly leftKey?: FieldPath;
  readonly rightKey?: FieldPath;
  readonly filters: { readonly left?: Predicate; readonly right?: Predicate };
  /** Paths into the row: `left.age` is `['left', 'age']`. */
  readonly sort: readonly SortKey[];
  readonly fields?: { readonly left?: readonly FieldPath[]; readonly right?: readonly FieldPath[] };
}

export interface LimitRule {
  readonly defaultLimit: number;
  readonly maxLimit: number;
}

const PAGING_PARAMS = ['limit', 'offset', 'cursor', 'count', 'sort', 'fields'];
const JOIN_RESERVED = new Set([...PAGING_PARAMS, 'type', 'leftKey', 'rightKey']);
/** `limit=all`: the whole result, streamed rather than paged. */
export const ALL = 'all';
/** Largest offset accepted; deeper pages are for cursors. */
export const OFFSET_MAX = 1_000_000;
const FILTER_PARAMS_MAX = 64;

/** The single string value of a parameter. @throws QueryError when it is repeated. */
function single(query: RawQuery, name: string): string | undefined {
  const value = query[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string')
    throw new QueryError(name, 'give this parameter once, as a plain value');
  return value;
}

/** Every value of a parameter that may repeat (filters): `a=gt.1&a=lt.5` gives both. */
function many(query: RawQuery, name: string): string[] {
  const value = query[name];
  const values = Array.isArray(value) ? value : [value];
  if (!values.every((v): v is string => typeof v === 'string')) {
    throw new QueryError(name, 'malformed parameter');
  }
  return values;
}

function integer(
  query: RawQuery,
  name: string,
  fallback: number,
  min: number,
  max: number,
  alternative = '',
): number {
  const text = single(query, name);
  if (text === undefined) return fallback;
  const value = /^\d{1,9}$/.test(text) ? Number(text) : Number.NaN;
  if (!(value >= min && value <= max))
    throw new QueryError(name, `must be an integer from ${min} to ${max}${alternative}`);
  return value;
}

function parsePaging(query: RawQuery, { defaultLimit, maxLimit }: LimitRule): PagingParams {
  const count = single(query, 'count');
  if (count !== undefined && count !== 'none' && count !== 'exact') {
    throw new QueryError('count', 'must be exact (the default) or none');
  }
  const cursor = single(query, 'cursor');
  const offset = integer(query, 'offset', 0, 0, OFFSET_MAX);
  if (cursor !== undefined && offset !== 0)
    throw new QueryError('offset', 'cannot be combined with cursor');
  return {
    limit:
      single(query, 'limit') === ALL
        ? Number.POSITIVE_INFINITY
        : integer(query, 'limit', defaultLimit, 1, maxLimit, `, or ${ALL}`),
    offset,
    cursor,
    count: count !== 'none',
  };
}

function filterNames(query: RawQuery, reserved: ReadonlySet<string>): string[] {
  const names = Object.keys(query).filter((name) => !reserved.has(name));
  if (names.length > FILTER_PARAMS_MAX)
    throw new QueryError(names[FILTER_PARAMS_MAX], `at most ${FILTER_PARAMS_MAX} filters`);
  return names;
}

/** Conditions of `field=op.value` parameters and `or`/`and` groups, for one record. */
function parseConditions(
  query: RawQuery,
  names: readonly { name: string; field: string }[],
): Predicate[] {
  const conditions: Predicate[] = [];
  for (const { name, field } of names) {
    for (const value of many(query, name)) {
      if (field === 'or' || field === 'and') {
        conditions.push(parseGroup(field, value, name));
      } else if (field === 'not.or' || field === 'not.and') {
        conditions.push({
          kind: 'not',
          operand: parseGroup(field === 'not.or' ? 'or' : 'and', value, name),
        });
      } else {
        conditions.push(parseCondition(parseFieldPath(field, name), value, name));
      }
    }
  }
  return conditions;
}

/**
 * Parses a list's query string. Reserved: limit, offset, cursor, count, sort, fields, or, and;
 * every other parameter filters on the field it names.
 * @throws QueryError naming the parameter at fault.
 */
export function parseListQuery(query: RawQuery, limits: LimitRule): ListQuery {
  const names = filterNames(query, new Set(PAGING_PARAMS)).map((name) => ({ name, field: name }));
  const sort = single(query, 'sort');
  const fields = single(query, 'fields');
  return {
    ...parsePaging(query, limits),
    filter: allOf(parseConditions(query, names)),
    sort: sort === undefined ? [] : parseSort(sort, 'sort'),
    fields: fields === undefined ? undefined : parseFields(fields, 'fields'),
  };
}

/**
 * The record filter of a query that also has parameters of its own (`reserved`): list filter
 * syntax (`field=op.value`, `or`/`and` groups) on every other name. @throws QueryError
 */
export function parseRecordFilter(
  query: RawQuery,
  reserved: ReadonlySet<string>,
): Predicate | undefined {
  const names = filterNames(query, reserved).map((name) => ({ name, field: name }));
  return allOf(parseConditions(query, names));
}

function sideOf(text: string, parameter: string): { side: JoinSideName; rest: string } {
  const dot = text.indexOf('.');
  const side = text.slice(0, dot);
  if (dot <= 0 || (side !== 'left' && side !== 'right')) {
    throw new QueryError(
      parameter,
      `'${text.slice(0, 60)}' must name its side: left.<field> or right.<field>`,
    );
  }
  return { side, rest: text.slice(dot + 1) };
}

/**
 * Parses a join's query string: type, leftKey, rightKey, paging, and per side `left.<field>`
 * / `right.<field>` filters (`left.or=(…)` too), `sort=left.x,-right.y`, `fields=left.a,right.b`.
 * @throws QueryError naming the parameter at fault.
 */
export function parseJoinQuery(query: RawQuery, limits: LimitRule): JoinQuery {
  const type = single(query, 'type') ?? 'inner';
  if (!(JOIN_TYPES as readonly string[]).includes(type)) {
    throw new QueryError('type', `must be one of ${JOIN_TYPES.join(', ')}`);
  }
  const leftKey = single(query, 'leftKey');
  const rightKey = single(query, 'rightKey');
  const bySide: Record<JoinSideName, { name: string; field: string }[]> = { left: [], right: [] };
  for (const name of filterNames(query, JOIN_RESERVED)) {
    const { side, rest } = sideOf(name, name);
    bySide[side].push({ name, field: rest });
  }
  const sortText = single(query, 'sort');
  const sort = (sortText === undefined ? [] : parseSort(sortText, 'sort')).map((key) => {
    sideOf(key.path.join('.'), 'sort');
    return key;
  });
  const fieldsText = single(query, 'fields');
  let fields: JoinQuery['fields'];
  if (fieldsText !== undefined) {
    const grouped: { left?: FieldPath[]; right?: FieldPath[] } = {};
    for (const path of parseFields(fieldsText, 'fields')) {
      const { side } = sideOf(path.join('.'), 'fields');
      if (path.length < 2)
        throw new QueryError('fields', `name a field of ${side}: ${side}.<field>`);
      (grouped[side] ??= []).push(path.slice(1));
    }
    fields = grouped;
  }
  return {
    ...parsePaging(query, limits),
    type: type as JoinType,
    leftKey: leftKey === undefined ? undefined : parseFieldPath(leftKey, 'leftKey'),
    rightKey: rightKey === undefined ? undefined : parseFieldPath(rightKey, 'rightKey'),
    filters: {
      left: allOf(parseConditions(query, bySide.left)),
      right: allOf(parseConditions(query, bySide.right)),
    },
    sort,
    fields,
  };
}
