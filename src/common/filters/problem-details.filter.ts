import { type ArgumentsHost, Catch, type ExceptionFilter, Logger, Optional } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { ServerResponse } from 'node:http';
import { ApiProblemException } from '../problems/api-problem.exception';
import { INTERNAL_ERROR, PROBLEM_CONTENT_TYPE, toProblem } from '../problems/problem-details';
import { StorageService } from '../../database/storage.service';
import { SEQ_HEADER } from '../http/sequence';

/** Answers every error as RFC 9457 problem details; logs unexpected faults with their stack. */
@Catch()
export class ProblemDetailsFilter implements ExceptionFilter {
  private readonly logger = new Logger(ProblemDetailsFilter.name);

  constructor(
    private readonly adapterHost: HttpAdapterHost,
    @Optional() private readonly storage?: StorageService,
  ) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const { httpAdapter } = this.adapterHost;
    const http = host.switchToHttp();
    const request: unknown = http.getRequest();
    const response: unknown = http.getResponse();
    const problem = toProblem(exception);
    if (problem.code === INTERNAL_ERROR) {
      this.logger.error(
        exception instanceof Error ? exception.message : String(exception),
        exception instanceof Error ? exception.stack : undefined,
      );
    } else if (problem.status >= 500) {
      this.logger.warn(`${problem.code}: ${problem.detail}`);
    }
    const url = String(httpAdapter.getRequestUrl(request) ?? '');
    const query = url.indexOf('?');
    problem.instance = query === -1 ? url : url.slice(0, query);
    const body = JSON.stringify(problem);
    const headers: Record<string, string> = {
      ...(exception instanceof ApiProblemException ? exception.headers : undefined),
      'Content-Type': PROBLEM_CONTENT_TYPE,
      // Set here, not by Node, so that a HEAD request is told the length on both adapters.
      'Content-Length': String(Buffer.byteLength(body)),
    };
    const retryAfter = (exception as { retryAfterSeconds?: unknown } | null)?.retryAfterSeconds;
    if (typeof retryAfter === 'number') headers['Retry-After'] = String(retryAfter);
    const seq = answerSeq(exception, problem.instance, this.storage);
    if (seq !== undefined) headers[SEQ_HEADER] = String(seq);
    if (isFastifyReply(response)) {
      // Through the reply, which holds the headers set so far (rate limits…); as bytes, since
      // Fastify appends a charset parameter to a JSON media type sent as a string.
      if (response.raw.headersSent) response.raw.end();
      else response.code(problem.status).headers(headers).send(Buffer.from(body));
      return;
    }
    if (isNodeResponse(response)) {
      // Node's own response, which Fastify hands to middleware.
      if (!response.headersSent) writeRaw(response, problem.status, headers, body);
      else response.end();
      return;
    }
    if (httpAdapter.isHeadersSent(response)) {
      httpAdapter.end(response);
      return;
    }
    // Written raw: adapters' reply() would reset the media type of error objects to
    // application/json, and Express's send() would append a charset parameter.
    httpAdapter.status(response, problem.status);
    for (const [name, value] of Object.entries(headers))
      httpAdapter.setHeader(response, name, value);
    httpAdapter.end(response, body);
  }
}

/** Where an answer under /api/v1 stands in the log: a logged write's own, else the server's. */
function answerSeq(
  exception: unknown,
  path: string,
  storage: StorageService | undefined,
): number | undefined {
  const own = (exception as { seq?: unknown } | null)?.seq;
  if (typeof own === 'number') return own;
  return path.startsWith('/api/v1/') ? storage?.appliedSeq : undefined;
}

/** The subset of Fastify's reply the filter uses; Express's response has no `raw`. */
interface FastifyReplyLike {
  readonly raw: ServerResponse;
  code(status: number): this;
  headers(values: Record<string, string>): this;
  send(payload: Buffer): this;
}

function isFastifyReply(response: unknown): response is FastifyReplyLike {
  return typeof response === 'object' && response !== null && 'raw' in response;
}

/** Node's response has no `status()`, which Express's and Fastify's add. */
function isNodeResponse(response: unknown): response is ServerResponse {
  return (
    typeof response === 'object' &&
    response !== null &&
    typeof (response as Partial<ServerResponse>).setHeader === 'function' &&
    !('status' in response)
  );
}

function writeRaw(
  res: ServerResponse,
  status: number,
  headers: Record<string, string>,
  body: string,
): void {
  res.statusCode = status;
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  res.end(body);
}
