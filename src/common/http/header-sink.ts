/**
 * The response methods controllers need. Express's `res` and Fastify's `reply` both have
 * `header()` and `status()`, so controllers stay free of adapter types.
 */
export interface HeaderSink {
  header(name: string, value: string): unknown;
  getHeader(name: string): unknown;
  status(code: number): unknown;
}

/** Adds `field` to the response's Vary header, keeping what CORS or others put there. */
export function addVary(res: HeaderSink, field: string): void {
  const current = res.getHeader('Vary');
  res.header(
    'Vary',
    typeof current === 'string' && current !== '' ? `${current}, ${field}` : field,
  );
}
