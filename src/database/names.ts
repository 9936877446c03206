import { InvalidNameError } from './database.errors';

/** Table names: a letter, then up to 63 letters, digits, `_` or `-`. */
export const TABLE_NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
export const TABLE_NAME_RULE = 'a letter, then up to 63 letters, digits, _ or -';

/**
 * Record ids: 1 to 128 characters from `A-Z a-z 0-9 . _ : -`, except `.` and `..`, which no URL
 * can address (clients resolve them as path segments).
 */
export const RECORD_ID_PATTERN = /^(?!\.{1,2}$)[A-Za-z0-9._:-]{1,128}$/;
export const RECORD_ID_RULE = '1 to 128 characters from A-Z a-z 0-9 . _ : - (not . or ..)';

/** Field paths (join keys, indexes): dot-separated names of letters, digits, `_`, `$` or `-`. */
export const FIELD_PATH_PATTERN = /^[A-Za-z0-9_$-]{1,64}(\.[A-Za-z0-9_$-]{1,64}){0,31}$/;
export const FIELD_PATH_RULE =
  'dot-separated names of letters, digits, _, $ or - (at most 32 names of 64 characters)';

/** @throws InvalidNameError when `name` is not a valid table name. */
export function assertTableName(name: string): void {
  if (!TABLE_NAME_PATTERN.test(name)) throw new InvalidNameError('table', name, TABLE_NAME_RULE);
}
