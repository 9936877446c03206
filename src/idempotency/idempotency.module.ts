import { Global, Module } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { Env } from '../config/env.validation';
import { KEPT_ANSWERS } from '../database/persistence/kept-answers';
import { IdempotencyStore } from './idempotency.store';

/**
 * The store of answers kept for `Idempotency-Key` (IDEMPOTENCY_TTL_MS, IDEMPOTENCY_MAX_MB).
 * Global, so @Idempotent() routes and persistence (export/import/onStored) reach the one store.
 */
@Global()
@Module({
  providers: [
    {
      provide: IdempotencyStore,
      inject: [ConfigService],
      useFactory: (config: ConfigService<Env, true>) =>
        new IdempotencyStore({
          ttlMs: config.get('IDEMPOTENCY_TTL_MS', { infer: true }),
          maxBytes: config.get('IDEMPOTENCY_MAX_MB', { infer: true }) * 1024 * 1024,
        }),
    },
    // How persistence (DatabaseModule) saves and loads the answers without knowing this module.
    { provide: KEPT_ANSWERS, useExisting: IdempotencyStore },
  ],
  exports: [IdempotencyStore, KEPT_ANSWERS],
})
export class IdempotencyModule {}
