/**
 * The response methods controllers need. Express's `res` and Fastify's `reply` both have
 * `header()` and `status()`, so controllers stay free of adapter types.
 */
export interface HeaderSink {
  header(name: string, value: string): unknown;
  status(code: number): unknown;
}
