import type { NestApplicationOptions } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { answerClientErrors } from './common/http/client-error';
import { requestContextMiddleware } from './common/middleware/request-context.middleware';
import { RequestLogger } from './common/logging/request-logger';
import type { Env } from './config/env.validation';
import { setupOpenApi } from './docs/openapi';

/** Nest's own body parsers are off: memdb parses JSON only, after routing and guards (JsonBodyInterceptor). */
export const APP_OPTIONS: NestApplicationOptions = { bodyParser: false, abortOnError: false };

/**
 * What the HTTP server needs beyond AppModule's providers, shared by main.ts and the e2e
 * tests so both serve the same app: request ids and logging first, then the OpenAPI routes.
 */
export function configureApp(app: NestExpressApplication): NestExpressApplication {
  const config = app.get<ConfigService<Env, true>>(ConfigService);
  app.disable('x-powered-by');
  // Single-record responses carry memdb's own strong ETag; hashing every other body for a weak
  // one would only cost time on every request.
  app.set('etag', false);
  app.use(requestContextMiddleware(new RequestLogger(config.get('LOG_FORMAT', { infer: true }))));
  answerClientErrors(app.getHttpServer());
  setupOpenApi(app);
  return app;
}
