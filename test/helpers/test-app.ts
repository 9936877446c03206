import type { INestApplication, LoggerService } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { Test } from '@nestjs/testing';
import { AppModule, databaseOptions } from '../../src/app.module';
import { DATABASE_OPTIONS } from '../../src/database/database.module-definition';
import type { OpenJournalFile } from '../../src/database/persistence/file-journal';
import { APP_OPTIONS, configureApp } from '../../src/app.setup';
import { validateEnv, type Env } from '../../src/config/env.validation';
import { PersistenceService } from '../../src/database/persistence/persistence.service';
import { createHttpAdapter, initApp } from '../../src/http-adapter';

/**
 * The adapter every app of this run is served on: jest.config.js runs the e2e suite once per
 * adapter (projects e2e and e2e-fastify), setting TEST_HTTP_ADAPTER. A test's own env wins.
 */
export const TEST_HTTP_ADAPTER = process.env.TEST_HTTP_ADAPTER ?? 'express';

export interface TestAppOptions {
  /** Environment for this app, validated as at start. Throttling is off unless set here. */
  readonly env?: Record<string, string>;
  /** Opens the journal's file (DATA_DIR): a seam to inject disk failures. */
  readonly openJournalFile?: OpenJournalFile;
  /** Load DATA_DIR as main.ts does (default); false leaves the app loading (readiness 503). */
  readonly start?: boolean;
  /** Receives the app's logs; silent by default. */
  readonly logger?: LoggerService;
}

/** The real AppModule, served exactly as main.ts serves it, with its config overridden. */
export async function createTestApp({
  env = {},
  logger,
  openJournalFile,
  start = true,
}: TestAppOptions = {}): Promise<INestApplication> {
  const validated = validateEnv({ THROTTLE_LIMIT: '0', HTTP_ADAPTER: TEST_HTTP_ADAPTER, ...env });
  const config = new ConfigService<Env, true>(validated);
  let builder = Test.createTestingModule({ imports: [AppModule] })
    .overrideProvider(ConfigService)
    .useValue(config);
  if (openJournalFile !== undefined) {
    const options = databaseOptions(config);
    builder = builder.overrideProvider(DATABASE_OPTIONS).useValue({
      ...options,
      persistence: options.persistence && { ...options.persistence, openJournalFile },
    });
  }
  const moduleRef = await builder.compile();
  const app = moduleRef.createNestApplication(createHttpAdapter(validated), {
    ...APP_OPTIONS,
    logger: logger ?? false,
  });
  configureApp(app);
  await initApp(app);
  // Loads DATA_DIR when the env sets it (nothing otherwise), as main.ts does after listen().
  if (start) await app.get(PersistenceService).start();
  return app;
}

/** Collects log lines written through Nest's Logger. */
export class CapturingLogger implements LoggerService {
  readonly lines: { level: string; message: unknown; context?: string }[] = [];

  log(message: unknown, context?: string): void {
    this.lines.push({ level: 'log', message, context });
  }
  error(message: unknown, ...rest: unknown[]): void {
    this.lines.push({ level: 'error', message, context: rest.at(-1) as string | undefined });
  }
  warn(message: unknown, context?: string): void {
    this.lines.push({ level: 'warn', message, context });
  }
  debug(message: unknown, context?: string): void {
    this.lines.push({ level: 'debug', message, context });
  }
  verbose(message: unknown, context?: string): void {
    this.lines.push({ level: 'verbose', message, context });
  }
}

export const PROBLEM_JSON = /^application\/problem\+json$/;

/** The URL of the next page from a response's `Link: <…>; rel="next"`, if any. */
export function nextPageUrl(res: { headers: Record<string, unknown> }): string | undefined {
  const link = res.headers.link;
  return typeof link === 'string' ? /^<([^>]+)>; rel="next"$/.exec(link)?.[1] : undefined;
}

/** Checks a rate limiter's refusal whole: a 429 problem, Retry-After 1 to `maxRetryAfter` s. */
export function expectTooManyRequests(
  res: { status: number; headers: Record<string, string>; body: unknown },
  instance: string,
  maxRetryAfter: number,
): void {
  expect(res.status).toBe(429);
  expect(res.headers['content-type']).toMatch(PROBLEM_JSON);
  expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
  expect(Number(res.headers['retry-after'])).toBeLessThanOrEqual(maxRetryAfter);
  expect(res.body).toEqual({
    type: 'urn:memdb:problem:too-many-requests',
    title: 'Too Many Requests',
    status: 429,
    detail: expect.stringContaining('Retry-After'),
    code: 'TOO_MANY_REQUESTS',
    instance,
  });
}
