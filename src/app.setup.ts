import type { INestApplication, NestApplicationOptions } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import cors from 'cors';
import type { FastifyInstance } from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { answerClientErrors } from './common/http/client-error';
import { securityHeaders, setHeaders } from './common/http/security-headers';
import { requestContextMiddleware } from './common/middleware/request-context.middleware';
import { RequestLogger } from './common/logging/request-logger';
import type { Env } from './config/env.validation';
import { setupOpenApi } from './docs/openapi';

/**
 * Helmet's defaults, loosened only as far as Swagger UI (/docs) and ReDoc (/redoc) need:
 * their inline styles, data: images and fonts, and ReDoc's blob: worker. Scripts stay 'self'.
 */
const CONTENT_SECURITY_POLICY = {
  defaultSrc: ["'self'"],
  scriptSrc: ["'self'"],
  styleSrc: ["'self'", "'unsafe-inline'"],
  imgSrc: ["'self'", 'data:'],
  fontSrc: ["'self'", 'data:'],
  workerSrc: ["'self'", 'blob:'],
  connectSrc: ["'self'"],
  objectSrc: ["'none'"],
  frameAncestors: ["'none'"],
  // memdb speaks plain HTTP unless a proxy terminates TLS: upgrading would break /docs on any
  // host but localhost.
  upgradeInsecureRequests: null,
};

/** Response headers a cross-origin client may read. */
const EXPOSED_HEADERS = [
  'X-Total-Count',
  'Link',
  'ETag',
  'Location',
  'X-Request-Id',
  'X-Query-Plan',
  'Retry-After',
  'X-Memdb-Seq',
  'Idempotency-Replayed',
];

/** Nest's own body parsers are off: memdb parses JSON only, after routing and the other guards (JsonBodyGuard). */
export const APP_OPTIONS: NestApplicationOptions = { bodyParser: false, abortOnError: false };

/**
 * What the HTTP server needs beyond AppModule's providers, shared by main.ts and the e2e
 * tests so both serve the same app: request ids and logging first, then the OpenAPI routes.
 * The same on both adapters (plain Node handlers); what differs is set where each adapter is
 * created (src/http-adapter.ts).
 */
export function configureApp<T extends INestApplication>(app: T): T {
  const config = app.get<ConfigService<Env, true>>(ConfigService);
  const headers = securityHeaders({
    contentSecurityPolicy: { directives: CONTENT_SECURITY_POLICY },
  });
  const context = requestContextMiddleware(
    new RequestLogger(config.get('LOG_FORMAT', { infer: true })),
  );
  // First for every request: security headers (helmet's, worked out once), then its id and log
  // line. On Fastify as an onRequest hook on the raw request: middleware would go through
  // @fastify/middie, which copies ip, hostname, query and more onto every request first.
  const first = (req: IncomingMessage, res: ServerResponse, next: () => void): void => {
    setHeaders(res, headers);
    context(req, res, next);
  };
  const adapter = app.getHttpAdapter();
  if (adapter.getType() === 'fastify') {
    (adapter.getInstance() as FastifyInstance).addHook('onRequest', (request, reply, done) =>
      first(request.raw, reply.raw, done),
    );
  } else {
    app.use(first);
  }
  const origins = config.get('CORS_ORIGINS', { infer: true });
  if (origins !== undefined) {
    // The `cors` middleware that Express's enableCors() adds, on both adapters: Fastify's
    // enableCors() (@fastify/cors) differs in default methods, preflight checks and header format.
    app.use(
      cors({
        origin: origins.includes('*') ? true : origins,
        exposedHeaders: EXPOSED_HEADERS,
        maxAge: 600,
      }),
    );
  }
  // Fastify takes this handler as an option when it is created (src/http-adapter.ts).
  if (adapter.getType() === 'express') answerClientErrors(app.getHttpServer());
  if (config.get('DOCS_ENABLED', { infer: true })) setupOpenApi(app);
  return app;
}
