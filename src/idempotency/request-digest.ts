import { createHash } from 'node:crypto';

/** 1 to 255 visible ASCII characters (0x21–0x7E), as the key is compared byte for byte. */
const VALID_KEY = /^[\x21-\x7e]{1,255}$/;

/** Whether an Idempotency-Key header's value can be used as a key. */
export function isValidIdempotencyKey(value: string): boolean {
  return VALID_KEY.test(value);
}

/** SHA-256, hex: how scopes, keys and requests are kept (never the API key or address itself). */
export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * The digest a repeat must match: method, path (without the query) and the parsed JSON body
 * (or none). The body is compared as JSON: whitespace aside, the same bytes; member order
 * counts, as it does in the stored record.
 */
export function requestDigest(method: string, path: string, body: unknown): string {
  const hash = createHash('sha256').update(`${method} ${path}\n`);
  if (body !== undefined) hash.update(JSON.stringify(body));
  return hash.digest('hex');
}
