import 'reflect-metadata';
import { type INestApplication, Logger } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module';
import { PersistenceService } from './database/persistence/persistence.service';
import { APP_OPTIONS, configureApp } from './app.setup';
import { createAppLogger } from './common/logging/app-logger';
import { API_KEY_RECOMMENDED_LENGTH } from './config/api-keys';
import { APP_INFO } from './config/app-info';
import { validateEnv, type Env } from './config/env.validation';
import { createHttpAdapter } from './http-adapter';

async function bootstrap(): Promise<void> {
  // Fail fast, before Nest logs anything, with only the configuration's own message.
  const env = validateEnv(process.env);
  const app = await NestFactory.create(AppModule, createHttpAdapter(env), {
    ...APP_OPTIONS,
    bufferLogs: true,
  });
  const config = app.get<ConfigService<Env, true>>(ConfigService);
  app.useLogger(
    createAppLogger(
      config.get('LOG_LEVEL', { infer: true }),
      config.get('LOG_FORMAT', { infer: true }),
    ),
  );
  configureApp(app);
  stopGracefully(app, config.get('SHUTDOWN_TIMEOUT_MS', { infer: true }));
  const port = config.get('PORT', { infer: true });
  const host = config.get('HOST', { infer: true });
  await (host === undefined ? app.listen(port) : app.listen(port, host));
  const logger = new Logger('Bootstrap');
  logger.log(
    `${APP_INFO.name} ${APP_INFO.version} listening on ${host ?? '*'}:${port} (${env.HTTP_ADAPTER})`,
  );
  const keys = config.get('API_KEYS', { infer: true });
  if (keys?.some(({ key }) => key.length < API_KEY_RECOMMENDED_LENGTH)) {
    logger.warn(
      `Some API keys are shorter than ${API_KEY_RECOMMENDED_LENGTH} characters: they can be guessed`,
    );
  }
  if (keys === undefined) {
    logger.warn(
      'API_KEYS is not set: anyone who can reach this port can read and write all data (see SECURITY.md)',
    );
  }
  // With DATA_DIR: load the snapshot and replay the journal while liveness already answers and
  // readiness says 503; a damaged file stops the process (exit 1) with its name and offset.
  await app.get(PersistenceService).start();
  // A logged entry that cannot be applied (a bug) is never skipped: stop, saving the journal,
  // with exit code 1; a restart stops at the same entry until a fixed memdb applies it.
  app.get(PersistenceService).onLogStopped(() => {
    process.exitCode = 1;
    process.kill(process.pid, 'SIGTERM');
  });
}

/**
 * On SIGTERM or SIGINT: readiness fails and new requests to data are refused (503) at once,
 * requests in flight finish, the server closes, the journal is flushed and synced (Nest's
 * shutdown hooks), and the process exits 0. Requests still running at 90% of
 * SHUTDOWN_TIMEOUT_MS are cut off: the journal is flushed and synced anyway and the process
 * exits 0 in time. Only if even that fails or hangs does it exit 1 at the deadline.
 */
function stopGracefully(app: INestApplication, timeoutMs: number): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    const logger = new Logger('Shutdown');
    logger.log(`${signal}: finishing requests in flight, then saving and exiting`);
    app.get(PersistenceService).beginShutdown();
    const exitAfterSaving = (why: string) => {
      app
        .get(PersistenceService)
        .onApplicationShutdown()
        .then(
          () => process.exit(exitCode()),
          (error: unknown) => {
            logger.error(`${why}, and the journal could not be saved: ${String(error)}`);
            process.exit(1);
          },
        );
    };
    setTimeout(
      () => {
        logger.warn(
          `Requests still in flight after ${Math.floor(timeoutMs * 0.9)} ms (SHUTDOWN_TIMEOUT_MS): cutting them off`,
        );
        exitAfterSaving('Shutdown cut requests off');
      },
      Math.floor(timeoutMs * 0.9),
    ).unref();
    setTimeout(() => {
      logger.error(`Shutdown took longer than ${timeoutMs} ms (SHUTDOWN_TIMEOUT_MS): exiting`);
      process.exit(1);
    }, timeoutMs).unref();
    app.close().then(
      () => process.exit(exitCode()),
      (error: unknown) => {
        logger.error(`Shutdown failed: ${String(error)}`);
        exitAfterSaving('Shutdown failed');
      },
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

/** 0 after a clean stop; 1 when something asked for it first (a log that stopped). */
function exitCode(): number {
  return Number(process.exitCode ?? 0);
}

bootstrap().catch((error: unknown) => {
  // Configuration errors carry their own clear message; a stack trace would only hide it.
  process.stderr.write(
    `memdb failed to start: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exit(1);
});
