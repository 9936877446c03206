import type { IncomingMessage, ServerResponse } from 'node:http';
import helmet, { type HelmetOptions } from 'helmet';

export type HeaderList = readonly (readonly [name: string, value: string])[];

/**
 * The headers helmet sets with these options, worked out once at start. Helmet's values do not
 * depend on the request (no CSP nonces here), so setting this list on each response is what
 * its middleware does, without a chain of twelve middleware calls per request.
 */
export function securityHeaders(options: HelmetOptions): HeaderList {
  const headers = new Map<string, string>();
  const response = {
    setHeader: (name: string, value: string) => headers.set(name, value),
    removeHeader: (name: string) => headers.delete(name),
  };
  let finished = false;
  helmet(options)(
    { headers: {} } as IncomingMessage,
    response as unknown as ServerResponse,
    (error?: unknown) => {
      if (error !== undefined) throw error;
      finished = true;
    },
  );
  // Helmet's middleware is synchronous; if it ever stops being so, fail at start, not quietly.
  if (!finished) throw new Error('helmet did not finish synchronously');
  return [...headers];
}

/** Sets `headers` on a response. */
export function setHeaders(res: ServerResponse, headers: HeaderList): void {
  for (const [name, value] of headers) res.setHeader(name, value);
}
