import { InvalidNameError } from './database.errors';

/** Table names: a letter, then up to 63 letters, digits, `_` or `-`. */
export const TABLE_NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
export const TABLE_NAME_RULE = 'a letter, then up to 63 letters, digits, _ or -';

/** Record ids: 1 to 128 characters from `A-Z a-z 0-9 . _ : -`. */
export const RECORD_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
export const RECORD_ID_RULE = '1 to 128 characters from A-Z a-z 0-9 . _ : -';

/** Field names usable as join keys: a letter, `_` or `$`, then up to 127 word characters, `$` or `-`. */
export const FIELD_NAME_PATTERN = /^[A-Za-z_$][A-Za-z0-9_$-]{0,127}$/;
export const FIELD_NAME_RULE = 'a letter, _ or $, then up to 127 letters, digits, _, $ or -';

/** @throws InvalidNameError when `name` is not a valid table name. */
export function assertTableName(name: string): void {
  if (!TABLE_NAME_PATTERN.test(name)) throw new InvalidNameError('table', name, TABLE_NAME_RULE);
}
