/**
 * The one response method controllers need. Express's `res.header()` and Fastify's
 * `reply.header()` both fit, so controllers stay free of adapter types.
 */
export interface HeaderSink {
  header(name: string, value: string): unknown;
}
