import { createHash } from 'node:crypto';
import { QueryError } from './query.errors';
import { isSortPart, type RowKey } from './sort';

/** Position after which the next page starts: sequence numbers (default order) or sort parts. */
export type CursorKey = readonly number[] | RowKey;

const CURSOR_MAX_LENGTH = 4096;

/** Identifies a query (tables, filters, order), so a cursor cannot be replayed on another. */
export function fingerprint(query: unknown): string {
  return createHash('sha256').update(JSON.stringify(query)).digest('base64url').slice(0, 16);
}

export function encodeCursor(fingerprintOfQuery: string, key: CursorKey): string {
  return Buffer.from(JSON.stringify({ v: 1, q: fingerprintOfQuery, k: key })).toString('base64url');
}

/**
 * Decodes a cursor for the query with this fingerprint. `shape` says what the key must look
 * like: `length` sequence numbers, or `length` sort parts.
 * @throws QueryError on anything malformed, tampered or issued for another query.
 */
export function decodeCursor(
  text: string,
  fingerprintOfQuery: string,
  shape: { readonly kind: 'seq' | 'sort'; readonly length: number },
): CursorKey {
  const bad = (reason: string) => new QueryError('cursor', reason);
  if (text.length > CURSOR_MAX_LENGTH || !/^[A-Za-z0-9_-]+$/.test(text))
    throw bad('malformed cursor');
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    throw bad('malformed cursor');
  }
  const { v, q, k } = (decoded ?? {}) as { v?: unknown; q?: unknown; k?: unknown };
  if (v !== 1 || typeof q !== 'string' || !Array.isArray(k)) throw bad('malformed cursor');
  if (q !== fingerprintOfQuery) {
    throw bad(
      'this cursor belongs to another query: keep every other parameter as in the Link it came from',
    );
  }
  const valid =
    k.length === shape.length &&
    (shape.kind === 'seq'
      ? k.every((n: unknown) => Number.isSafeInteger(n) && (n as number) >= -1)
      : k.every((part: unknown) => isSortPart(part)));
  if (!valid) throw bad('malformed cursor');
  return k as CursorKey;
}
