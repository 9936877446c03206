import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { AnswerHeaders, FinalAnswer } from './idempotency.store';

/**
 * Headers that belong to one request, not to its answer: a replay carries its own (the request
 * id and rate limits of the repeat, the date it is sent) and never the first request's.
 */
const PER_REQUEST =
  /^(x-request-id|date|x-ratelimit-.*|retry-after|connection|keep-alive|transfer-encoding|content-length)$/;
/** The answer's sequence is part of the answer even if something set it before the handler. */
const ALWAYS_KEPT = 'x-memdb-seq';

type HeaderValue = number | string | readonly string[];

/**
 * Records the answer written on `res`, whatever writes it (the adapter sending a handler's
 * value, or the exception filter a problem), as it is sent: status, headers and body bytes.
 * Node's own response is hooked for this one request, so it works under Express and Fastify
 * alike. `done` is called once `end()` has been called: with the answer, or with undefined
 * when the body grew past `maxBodyBytes` (such an answer is not kept).
 *
 * Headers already on the response when the capture starts (security headers, the request id,
 * CORS: set for every request before its handler runs) are not part of the answer, nor are
 * per-request ones (PER_REQUEST); a replay gets its own.
 */
export function captureAnswer(
  res: ServerResponse,
  maxBodyBytes: number,
  done: (answer: FinalAnswer | undefined) => void,
): void {
  const before = res.getHeaders();
  const { writeHead, write, end } = res;
  let headers: Record<string, HeaderValue> = {};
  const chunks: Buffer[] = [];
  let bodyBytes = 0;
  const collect = (chunk: unknown, encoding: unknown): void => {
    if (bodyBytes > maxBodyBytes) return;
    const bytes = toBuffer(chunk, encoding);
    if (bytes === undefined) return;
    bodyBytes += bytes.length;
    chunks.push(bytes);
  };

  res.writeHead = function (this: ServerResponse, ...args: unknown[]) {
    const result = (writeHead as (...a: unknown[]) => ServerResponse).apply(this, args);
    // Without earlier setHeader calls Node sends the object given here as it is; with them it
    // merges it into getHeaders(). Either way the two together are what was sent.
    headers = { ...headerObject(args.at(-1)), ...this.getHeaders() } as Record<string, HeaderValue>;
    return result;
  } as ServerResponse['writeHead'];
  res.write = function (this: ServerResponse, chunk: unknown, ...rest: unknown[]) {
    collect(chunk, rest[0]);
    return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
  } as ServerResponse['write'];
  res.end = function (this: ServerResponse, chunk?: unknown, ...rest: unknown[]) {
    if (typeof chunk !== 'function') collect(chunk, rest[0]);
    try {
      return (end as (...a: unknown[]) => ServerResponse).call(this, chunk, ...rest);
    } finally {
      res.writeHead = writeHead;
      res.write = write;
      res.end = end;
      done(
        bodyBytes > maxBodyBytes
          ? undefined
          : {
              status: this.statusCode,
              headers: answerHeaders(headers, before),
              body: Buffer.concat(chunks),
            },
      );
    }
  } as ServerResponse['end'];
}

function toBuffer(chunk: unknown, encoding: unknown): Buffer | undefined {
  if (typeof chunk === 'string')
    return Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
  if (chunk instanceof Uint8Array) return Buffer.from(chunk);
  return undefined;
}

/** writeHead's headers: an object, or a flat [name, value, …] list. */
function headerObject(value: unknown): OutgoingHttpHeaders {
  if (Array.isArray(value)) {
    const object: OutgoingHttpHeaders = {};
    for (let i = 0; i + 1 < value.length; i += 2) object[String(value[i])] = value[i + 1] as string;
    return object;
  }
  return typeof value === 'object' && value !== null ? (value as OutgoingHttpHeaders) : {};
}

function answerHeaders(
  sent: Record<string, HeaderValue>,
  before: OutgoingHttpHeaders,
): AnswerHeaders {
  const kept: Record<string, string | readonly string[]> = {};
  for (const [rawName, value] of Object.entries(sent)) {
    const name = rawName.toLowerCase();
    if (PER_REQUEST.test(name)) continue;
    if (name !== ALWAYS_KEPT && sameValue(before[name], value)) continue;
    kept[name] = typeof value === 'number' ? String(value) : value;
  }
  return kept;
}

function sameValue(a: unknown, b: unknown): boolean {
  return a !== undefined && String(a) === String(b);
}
