import 'reflect-metadata';
import { Logger } from '@nestjs/common';
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
  app.enableShutdownHooks();
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
}

bootstrap().catch((error: unknown) => {
  // Configuration errors carry their own clear message; a stack trace would only hide it.
  process.stderr.write(
    `memdb failed to start: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exit(1);
});
