import { createHash } from 'node:crypto';
import { RECORD_ID_PATTERN } from '../names';
import { QueryError } from './query.errors';
import { isSortPart, type RowKey } from './sort';

/** Position after which the next page starts: sequence numbers (default order) or sort parts. */
export type CursorKey = readonly number[] | RowKey;

/**
 * Where a cursor points: its key, or (when the key holds long sort values that would make the
 * URL too long) the ids of the row it points at, whose key is computed again on the next page.
 */
export type CursorPosition =
  { readonly key: CursorKey } | { readonly ref: readonly (string | null)[] };

const CURSOR_MAX_LENGTH = 4096;
/** Keys longer than this (as JSON) are replaced by a reference to their row. */
const INLINE_KEY_MAX = 1500;

/** Identifies a query (tables, filters, order), so a cursor cannot be replayed on another. */
export function fingerprint(query: unknown): string {
  return createHash('sha256').update(JSON.stringify(query)).digest('base64url').slice(0, 16);
}

/**
 * The fingerprint, computed only when first needed: most pages neither read nor issue a
 * cursor, and hashing the query on every request would be wasted.
 */
export function lazyFingerprint(query: unknown): () => string {
  let print: string | undefined;
  return () => (print ??= fingerprint(query));
}

export function encodeCursor(
  fingerprintOfQuery: string,
  key: CursorKey,
  ref: readonly (string | null)[],
): string {
  const inline = JSON.stringify(key).length <= INLINE_KEY_MAX;
  const body = inline
    ? { v: 1, q: fingerprintOfQuery, k: key }
    : { v: 1, q: fingerprintOfQuery, r: ref };
  return Buffer.from(JSON.stringify(body)).toString('base64url');
}

/**
 * Decodes a cursor for the query with this fingerprint. `shape` says what the key must look
 * like: `length` sequence numbers, or `length` sort parts; references hold `refLength` ids.
 * @throws QueryError on anything malformed, tampered or issued for another query.
 */
export function decodeCursor(
  text: string,
  fingerprintOfQuery: string,
  shape: { readonly kind: 'seq' | 'sort'; readonly length: number; readonly refLength: number },
): CursorPosition {
  const bad = (reason: string) => new QueryError('cursor', reason);
  if (text.length > CURSOR_MAX_LENGTH || !/^[A-Za-z0-9_-]+$/.test(text))
    throw bad('malformed cursor');
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    throw bad('malformed cursor');
  }
  const { v, q, k, r } = (decoded ?? {}) as { v?: unknown; q?: unknown; k?: unknown; r?: unknown };
  if (v !== 1 || typeof q !== 'string') throw bad('malformed cursor');
  if (q !== fingerprintOfQuery) {
    throw bad(
      'this cursor belongs to another query: keep every other parameter as in the Link it came from',
    );
  }
  if (Array.isArray(r)) {
    const valid =
      r.length === shape.refLength &&
      r.every(
        (id: unknown) => id === null || (typeof id === 'string' && RECORD_ID_PATTERN.test(id)),
      );
    if (!valid) throw bad('malformed cursor');
    return { ref: r as (string | null)[] };
  }
  const valid =
    Array.isArray(k) &&
    k.length === shape.length &&
    (shape.kind === 'seq'
      ? // A row's own sequence number comes first (never before the first row); a join's
        // second part is -1 for a left record without a match.
        k.every((n: unknown, i) => Number.isSafeInteger(n) && (n as number) >= (i === 0 ? 0 : -1))
      : k.every((part: unknown) => isSortPart(part)));
  if (!valid) throw bad('malformed cursor');
  return { key: k as CursorKey };
}

/** @throws QueryError when a referenced row is gone. */
export function goneCursor(): QueryError {
  return new QueryError(
    'cursor',
    'the record this cursor points at has been deleted (cursors over long sort values name their last record); start again from the first page',
  );
}
