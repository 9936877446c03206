import type { JsonPrimitive } from '../record.types';
import { QueryError } from './query.errors';

const JSON_NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;
export const MAX_VALUE_LENGTH = 1024;

/**
 * A filter value: JSON numbers, `true`, `false` and `null` are those types; a double-quoted
 * value is a string with JSON escapes (`"007"`); anything else is the literal string.
 * @throws QueryError naming `parameter`.
 */
export function parseValue(raw: string, parameter: string): JsonPrimitive {
  if (raw.length > MAX_VALUE_LENGTH) {
    throw new QueryError(parameter, `values are limited to ${MAX_VALUE_LENGTH} characters`);
  }
  if (raw.startsWith('"')) return parseQuoted(raw, parameter);
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  if (raw === 'null') return null;
  if (JSON_NUMBER.test(raw)) {
    const number = Number(raw);
    if (!Number.isFinite(number))
      throw new QueryError(parameter, `'${raw.slice(0, 40)}' is out of range`);
    return number;
  }
  return raw;
}

/** A double-quoted JSON string. @throws QueryError */
export function parseQuoted(raw: string, parameter: string): string {
  try {
    const value: unknown = JSON.parse(raw);
    if (typeof value === 'string') return value;
  } catch {
    // reported below
  }
  throw new QueryError(parameter, `malformed quoted value ${raw.slice(0, 60)}`);
}

/**
 * Splits `a,"b,c",(d,e)` on top-level commas, keeping quoted strings and parenthesised groups
 * whole. @throws QueryError on unbalanced quotes or parentheses.
 */
export function splitTopLevel(text: string, parameter: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (quoted) {
      if (char === '\\') i++;
      else if (char === '"') quoted = false;
    } else if (char === '"') {
      quoted = true;
    } else if (char === '(') {
      depth++;
    } else if (char === ')') {
      if (--depth < 0) break;
    } else if (char === ',' && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  if (quoted || depth !== 0) throw new QueryError(parameter, 'unbalanced quotes or parentheses');
  parts.push(text.slice(start));
  return parts;
}
