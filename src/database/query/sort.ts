import { compileGetter, parseFieldPath, type FieldPath } from './field-path';
import { QueryError } from './query.errors';

export interface SortKey {
  readonly path: FieldPath;
  readonly descending: boolean;
}

export const SORT_KEYS_MAX = 8;

/**
 * A value's place in the sort order: its type's rank, then the value. Numbers come before
 * strings, strings before booleans, booleans before objects and arrays (which tie);
 * null and missing values come last in either direction.
 */
export type SortPart = readonly [rank: number, value: number | string | boolean | null];
export const MISSING_RANK = 9;
const MISSING: SortPart = [MISSING_RANK, null];
const NESTED: SortPart = [4, null];

export function sortPart(value: unknown): SortPart {
  switch (typeof value) {
    case 'number':
      return [1, value];
    case 'string':
      return [2, value];
    case 'boolean':
      return [3, value];
    case 'object':
      return value === null ? MISSING : NESTED;
    default:
      return MISSING;
  }
}

export function isSortPart(value: unknown): value is SortPart {
  if (!Array.isArray(value) || value.length !== 2) return false;
  const [rank, scalar] = value as unknown[];
  switch (rank) {
    case 1:
      return typeof scalar === 'number' && Number.isFinite(scalar);
    case 2:
      return typeof scalar === 'string';
    case 3:
      return typeof scalar === 'boolean';
    case 4:
    case MISSING_RANK:
      return scalar === null;
    default:
      return false;
  }
}

/** Compares two parts; `descending` reverses everything but the place of missing values. */
export function compareParts(a: SortPart, b: SortPart, descending: boolean): number {
  if (a[0] !== b[0]) {
    if (a[0] === MISSING_RANK || b[0] === MISSING_RANK) return a[0] === MISSING_RANK ? 1 : -1;
    return descending ? b[0] - a[0] : a[0] - b[0];
  }
  const x = a[1] as number | string | boolean;
  const y = b[1] as number | string | boolean;
  const order = x < y ? -1 : x > y ? 1 : 0;
  return descending ? -order : order;
}

/**
 * Parses `sort=field,-other` (dot paths; `-` for descending).
 * @throws QueryError naming `parameter`.
 */
export function parseSort(text: string, parameter: string): SortKey[] {
  const items = text.split(',');
  if (items.length > SORT_KEYS_MAX)
    throw new QueryError(parameter, `at most ${SORT_KEYS_MAX} sort fields`);
  return items.map((item) => {
    const descending = item.startsWith('-');
    const name = descending || item.startsWith('+') ? item.slice(1) : item;
    return { path: parseFieldPath(name, parameter), descending };
  });
}

/** The sort key of an item: one part per sort field (tie-breakers included). */
export type RowKey = readonly SortPart[];

export function compileKeyOf(keys: readonly SortKey[]): (item: unknown) => RowKey {
  const getters = keys.map((key) => compileGetter(key.path));
  return (item) => getters.map((get) => sortPart(get(item)));
}

export function compileKeyCompare(keys: readonly SortKey[]): (a: RowKey, b: RowKey) => number {
  const descending = keys.map((key) => key.descending);
  return (a, b) => {
    for (let i = 0; i < descending.length; i++) {
      const order = compareParts(a[i], b[i], descending[i]);
      if (order !== 0) return order;
    }
    return 0;
  };
}
