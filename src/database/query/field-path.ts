import { FIELD_PATH_RULE } from '../names';
import { QueryError } from './query.errors';

export { FIELD_PATH_RULE };

/** A field path such as `address.city`, split into segments. */
export type FieldPath = readonly string[];

const SEGMENT = /^[A-Za-z0-9_$-]{1,64}$/;
export const MAX_PATH_SEGMENTS = 32;

/**
 * Parses `a.b.c`. Names reach records only as own members (see getPath), but `__proto__` is
 * refused outright: no stored record can have it.
 * @throws QueryError naming `parameter`.
 */
export function parseFieldPath(text: string, parameter: string): FieldPath {
  const segments = text.split('.');
  if (
    segments.length > MAX_PATH_SEGMENTS ||
    !segments.every((s) => SEGMENT.test(s) && s !== '__proto__')
  ) {
    throw new QueryError(
      parameter,
      `'${text.slice(0, 100)}' is not a field path: ${FIELD_PATH_RULE}`,
    );
  }
  return segments;
}

/** The value at `path`, following own members only; undefined when any step is missing. */
export function getPath(record: unknown, path: FieldPath): unknown {
  let value = record;
  for (let i = 0; i < path.length; i++) {
    if (typeof value !== 'object' || value === null || !Object.hasOwn(value, path[i]))
      return undefined;
    value = (value as Record<string, unknown>)[path[i]];
  }
  return value;
}

/** Like getPath, for one-segment paths without the loop (the common case on hot paths). */
export function compileGetter(path: FieldPath): (record: unknown) => unknown {
  if (path.length === 1) {
    const [field] = path;
    return (record) =>
      typeof record === 'object' && record !== null && Object.hasOwn(record, field)
        ? (record as Record<string, unknown>)[field]
        : undefined;
  }
  return (record) => getPath(record, path);
}
