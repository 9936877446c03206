import { type CanActivate, type ExecutionContext, HttpStatus, Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { Reflector } from '@nestjs/core';
import { RAW_BODY } from '../decorators/raw-body.decorator';
import { json } from 'express';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Env } from '../../config/env.validation';
import { assertJsonWithinLimits } from '../pipes/json-object.pipe';
import { ApiProblemException } from '../problems/api-problem.exception';

/** application/json and the +json types (merge-patch+json…), with parameters. */
const JSON_TYPE = /^application\/([a-z0-9.+-]*\+)?json\s*(;|$)/i;

/** A body is announced by a non-zero Content-Length or by Transfer-Encoding. */
function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

type Parser = (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => void;
/** Express's `req`/`res` (Node's own) or Fastify's request/reply (Node's as `raw`). */
type AdapterMessage<T> = { raw?: T & { body?: unknown }; body?: unknown };

/** body-parser failure types, as clear problems. Others keep their own status. */
const PARSER_PROBLEMS: Readonly<Record<string, [HttpStatus, string, string]>> = {
  'entity.parse.failed': [
    HttpStatus.BAD_REQUEST,
    'MALFORMED_JSON',
    'The request body is not valid JSON',
  ],
  'entity.verify.failed': [
    HttpStatus.BAD_REQUEST,
    'INVALID_BODY',
    'A JSON body is required, and this one is empty',
  ],
  'entity.too.large': [
    HttpStatus.PAYLOAD_TOO_LARGE,
    'PAYLOAD_TOO_LARGE',
    'The request body is larger than the server accepts',
  ],
  'charset.unsupported': [
    HttpStatus.UNSUPPORTED_MEDIA_TYPE,
    'UNSUPPORTED_CHARSET',
    'The request body charset is not supported; send UTF-8',
  ],
  'encoding.unsupported': [
    HttpStatus.UNSUPPORTED_MEDIA_TYPE,
    'UNSUPPORTED_ENCODING',
    'The request body Content-Encoding is not supported',
  ],
};

/**
 * Parses JSON bodies (`application/json`, `application/*+json`; at most BODY_LIMIT) once a
 * route has been found and the other guards have passed: a throttled or unauthorised request
 * is refused before its body is read. Any JSON value is parsed; the route's pipe decides what
 * it accepts.
 *
 * The last global guard rather than an interceptor: it needs the same place in the request
 * (after routing and guards, before pipes), and each global interceptor costs every request an
 * rxjs pipeline and an AsyncResource.bind in Nest's interceptor chain, bodies or not.
 */
@Injectable()
export class JsonBodyGuard implements CanActivate {
  private readonly parse: Parser;
  private readonly limitBytes: number;
  private readonly maxDepth: number;

  constructor(
    config: ConfigService<Env, true>,
    private readonly reflector: Reflector,
  ) {
    this.limitBytes = config.get('BODY_LIMIT', { infer: true });
    this.maxDepth = config.get('MAX_DEPTH', { infer: true });
    this.parse = json({
      limit: this.limitBytes,
      strict: false,
      type: ['application/json', 'application/*+json'],
      verify: (_req, _res, buffer) => {
        // A chunked body that turns out empty is no body (not `{}`).
        if (buffer.length === 0) throw new Error('empty body');
      },
    }) as unknown as Parser;
  }

  /** Always admits: a body it cannot accept is a problem (400, 413, 415), thrown. */
  canActivate(context: ExecutionContext): boolean | Promise<boolean> {
    const http = context.switchToHttp();
    // Express's request is the Node request; Fastify's wraps it as `raw` (as its reply does the
    // response). The body is read from the Node stream and handed to the adapter's request,
    // where @Body() looks for it.
    const request = http.getRequest<AdapterMessage<IncomingMessage>>();
    const req = request.raw ?? (request as IncomingMessage & { body?: unknown });
    if (request.body !== undefined || !hasBody(req)) return true;
    // Routes that read their own body (a backup being restored) get the stream untouched.
    if (this.reflector.get<boolean>(RAW_BODY, context.getHandler()) === true) return true;
    if (!JSON_TYPE.test(req.headers['content-type'] ?? '')) {
      throw new ApiProblemException(
        HttpStatus.UNSUPPORTED_MEDIA_TYPE,
        'UNSUPPORTED_MEDIA_TYPE',
        'Send the body as JSON: Content-Type: application/json (application/merge-patch+json for PATCH)',
      );
    }
    const response = http.getResponse<AdapterMessage<ServerResponse>>();
    const res = response.raw ?? (response as ServerResponse);
    return this.parseBody(req, res).then(() => {
      request.body = req.body;
      return true;
    });
  }

  private parseBody(req: IncomingMessage & { body?: unknown }, res: ServerResponse): Promise<void> {
    return new Promise((resolve, reject) => {
      this.parse(req, res, (error?: unknown) => {
        if (error === undefined || error === null) {
          try {
            assertJsonWithinLimits(req.body, this.maxDepth);
            return resolve();
          } catch (problem) {
            return reject(problem);
          }
        }
        const type = (error as { type?: unknown }).type;
        const known = typeof type === 'string' ? PARSER_PROBLEMS[type] : undefined;
        if (known === undefined) return reject(error);
        const [status, code, detail] = known;
        const suffix =
          status === HttpStatus.PAYLOAD_TOO_LARGE ? ` (${this.limitBytes} bytes, BODY_LIMIT)` : '';
        reject(new ApiProblemException(status, code, detail + suffix));
      });
    });
  }
}
