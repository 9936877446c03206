import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export const REQUEST_ID_HEADER = 'x-request-id';
/** Client request ids are echoed only when they are short and plain (no log or header injection). */
const CLIENT_REQUEST_ID = /^[A-Za-z0-9._:/+=-]{1,128}$/;

/** What memdb tracks per request, attached to the raw Node request. */
export interface RequestContext {
  readonly id: string;
  readonly startedAt: bigint;
  /** `Controller#handler` once routing picked one. */
  handler?: string;
  /** Logged at verbose level only (health probes). */
  quiet?: boolean;
}

const CONTEXT = Symbol('memdb.requestContext');
type WithContext = IncomingMessage & { [CONTEXT]?: RequestContext };

/** The raw Node request behind an adapter's request (Express's is the raw one; Fastify's has `raw`). */
function rawRequest(request: unknown): WithContext {
  const raw = (request as { raw?: unknown }).raw;
  return (raw ?? request) as WithContext;
}

export function startRequestContext(request: IncomingMessage): RequestContext {
  const sent = request.headers[REQUEST_ID_HEADER];
  const id = typeof sent === 'string' && CLIENT_REQUEST_ID.test(sent) ? sent : randomUUID();
  const context: RequestContext = { id, startedAt: process.hrtime.bigint() };
  (request as WithContext)[CONTEXT] = context;
  return context;
}

export function requestContextOf(request: unknown): RequestContext | undefined {
  return rawRequest(request)[CONTEXT];
}
