import { BadRequestException, type INestApplication, NotFoundException } from '@nestjs/common';
import type { AbstractHttpAdapter } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import type { Express } from 'express';
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify';
import type { IncomingMessage } from 'node:http';
import { answerClientError } from './common/http/client-error';
import type { Env } from './config/env.validation';
import { SWAGGER_UI_PATH } from './docs/openapi';

/** Node's own server timeouts, which Express keeps and Fastify would replace with its own. */
const NODE_KEEP_ALIVE_TIMEOUT_MS = 5_000;
const NODE_REQUEST_TIMEOUT_MS = 300_000;
/** Methods whose bodies Fastify would parse itself; memdb reads them (JsonBodyGuard). */
const BODY_METHODS = ['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

/**
 * The HTTP server under Nest (HTTP_ADAPTER), set up so that both adapters answer every request
 * alike: main.ts and the e2e tests build the app on it. What an adapter only takes when it is
 * created (Fastify's trustProxy, router and server options) is set here; what both share
 * (middleware, CORS, docs) is in configureApp.
 */
export function createHttpAdapter(
  env: Pick<Env, 'HTTP_ADAPTER' | 'TRUST_PROXY'>,
): AbstractHttpAdapter {
  return env.HTTP_ADAPTER === 'fastify' ? fastifyAdapter(env) : expressAdapter(env);
}

function expressAdapter({ TRUST_PROXY }: Pick<Env, 'TRUST_PROXY'>): ExpressAdapter {
  const adapter = new ExpressAdapter();
  const app = adapter.getInstance<Express>();
  app.disable('x-powered-by');
  if (TRUST_PROXY !== undefined) app.set('trust proxy', TRUST_PROXY);
  // Single-record responses carry memdb's own strong ETag; hashing every other body for a weak
  // one would only cost time on every request.
  app.set('etag', false);
  return adapter;
}

function fastifyAdapter({ TRUST_PROXY }: Pick<Env, 'TRUST_PROXY'>): FastifyAdapter {
  return new MemdbFastifyAdapter({
    // The same proxy-addr rules as Express's 'trust proxy' (hop count, addresses, true/false).
    trustProxy: TRUST_PROXY ?? false,
    // Express's routing: case-insensitive, an optional trailing slash, and path parameters of
    // any length (find-my-way answers its own 414 past maxParamLength; Node refuses a request
    // line over 16 KiB first, and memdb a URL over MAX_URL_LENGTH with its own 414).
    routerOptions: { caseSensitive: false, ignoreTrailingSlash: true, maxParamLength: 65_536 },
    keepAliveTimeout: NODE_KEEP_ALIVE_TIMEOUT_MS,
    requestTimeout: NODE_REQUEST_TIMEOUT_MS,
    // Requests Node cannot parse get the same problem answer as on Express.
    clientErrorHandler: answerClientError,
    rewriteUrl: escapeMalformedPath,
  });
}

const MALFORMED_URL = Symbol('memdb.malformedUrl');
type MaybeMalformed = IncomingMessage & { [MALFORMED_URL]?: string; originalUrl?: string };

/**
 * A path with a malformed percent-encoding (`/api/v1/data/t/%zz`) would stop find-my-way before
 * any hook runs, with Fastify's own JSON 400 (and middie after it). It is routed and passed
 * through middleware with its `%` escaped instead, then answered as Express answers it (see
 * the preHandler hook): the request id, security headers and log line of any request, and 400
 * "Failed to decode param" where a route matched, 404 where none did.
 */
function escapeMalformedPath(request: { url?: string }): string {
  const req = request as MaybeMalformed;
  const url = req.url ?? '/';
  if (!url.includes('%')) return url;
  const path = pathOf(url);
  try {
    decodeURI(path);
    return url;
  } catch {
    req[MALFORMED_URL] = url;
    return path.replaceAll('%', '%25') + url.slice(path.length);
  }
}

function pathOf(url: string): string {
  const end = url.search(/[?#]/);
  return end === -1 ? url : url.slice(0, end);
}

/** Whether a percent-encoding stands where the matched route has a fixed segment. */
function encodesStaticSegment(request: FastifyRequest): boolean {
  const route = request.routeOptions.url?.split('/') ?? [];
  const path = pathOf(request.raw.url ?? '').split('/');
  return route.some((segment, i) => !segment.startsWith(':') && path[i]?.includes('%'));
}

/** The first path segment that does not decode: Express reports the parameter it failed on. */
function malformedSegment(path: string): string {
  return (
    path.split('/').find((segment) => {
      try {
        decodeURIComponent(segment);
        return false;
      } catch {
        return true;
      }
    }) ?? path
  );
}

type ErrorHandler = (error: unknown, request: FastifyRequest, reply: FastifyReply) => unknown;

/** Nest's FastifyAdapter, made to answer as the ExpressAdapter does (see fastifyAdapter). */
class MemdbFastifyAdapter extends FastifyAdapter {
  private nestErrorHandler?: ErrorHandler;

  constructor(options: FastifyServerOptions) {
    super(options);
    const fastify = this.getInstance<FastifyInstance>();
    // Fastify would parse bodies before Nest's guards run and answer an unknown or malformed
    // Content-Type with its own 415. Declared bodyless, these methods reach the handler with the
    // body unread, as on Express with Nest's body parser off: JsonBodyGuard reads `raw`
    // after the guards, with the same limits and problems on both adapters.
    for (const method of BODY_METHODS) {
      fastify.addHttpMethod(method, { hasBody: false, overrideExisting: true });
    }
    // A route keeps the error handler in force when it was added: Swagger's routes, added before
    // Nest sets its own at init, would answer errors with Fastify's JSON. One handler for all
    // routes hands every error to Nest's (its exception filters), as Express does.
    fastify.setErrorHandler((error, request, reply) =>
      this.nestErrorHandler ? this.nestErrorHandler(error, request, reply) : reply.send(error),
    );
    // After middleware, before Nest's guards, as Express fails in its router: the client's URL
    // back for the log line and the problem's `instance`, and 400 where a route matched.
    fastify.addHook('preHandler', (request, _reply, done) => {
      const raw = request.raw as MaybeMalformed;
      const url = raw[MALFORMED_URL];
      if (url === undefined) {
        // find-my-way decodes the path before matching; Express matches the encoded path, so
        // `/api/v1/d%61ta/t` is no route there.
        if (!request.is404 && raw.url?.includes('%') && encodesStaticSegment(request))
          return done(new NotFoundException(`Cannot ${raw.method} ${raw.originalUrl ?? raw.url}`));
        return done();
      }
      raw.url = raw.originalUrl = url;
      if (request.is404) return done();
      done(new BadRequestException(`Failed to decode param '${malformedSegment(pathOf(url))}'`));
    });
    // Express's send() declares UTF-8 on the text it sends; Swagger UI's routes (added on the
    // adapter, not through Nest) send text/html, text/yaml and JavaScript with a bare type.
    fastify.addHook('onRoute', (route) => {
      if (route.url.startsWith(`/${SWAGGER_UI_PATH}`))
        route.onSend = [...[route.onSend ?? []].flat(), declareUtf8];
    });
  }

  /** Nest's exception layer, called by the handler set in the constructor. */
  override setErrorHandler(handler: Parameters<FastifyInstance['setErrorHandler']>[0]) {
    this.nestErrorHandler = handler as ErrorHandler;
    return this.getInstance<FastifyInstance>();
  }
}

const TEXT_WITHOUT_CHARSET = /^(text\/[^;]+|application\/javascript)$/;

function declareUtf8(
  _request: FastifyRequest,
  reply: FastifyReply,
  payload: unknown,
  done: (error: null, payload: unknown) => void,
): void {
  const type = reply.getHeader('content-type');
  if (typeof type === 'string' && TEXT_WITHOUT_CHARSET.test(type))
    reply.header('content-type', `${type}; charset=utf-8`);
  done(null, payload);
}

/** Initialises the app; Fastify also loads its plugins, which listen() would do in main.ts. */
export async function initApp<T extends INestApplication>(app: T): Promise<T> {
  await app.init();
  const adapter = app.getHttpAdapter();
  if (adapter.getType() === 'fastify') await (adapter.getInstance() as FastifyInstance).ready();
  return app;
}
