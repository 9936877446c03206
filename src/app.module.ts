import { Module } from '@nestjs/common';
import { hostname } from 'node:os';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { APP_FILTER, APP_GUARD, APP_PIPE } from '@nestjs/core';
import { ThrottlerGuard, ThrottlerModule } from '@nestjs/throttler';
import { ProblemDetailsFilter } from './common/filters/problem-details.filter';
import { AdminModule } from './admin/admin.module';
import { ApiKeyGuard } from './common/guards/api-key.guard';
import type { ClusterOptions } from './database/cluster/nats-log';
import type { DatabaseModuleOptions } from './database/database.module-definition';
import type { PersistenceOptions } from './database/persistence/persistence-options';
import { RateLimitModule, RateLimitStorage } from './common/throttling/rate-limit.module';
import { JsonBodyGuard } from './common/guards/json-body.guard';
import { MinSeqGuard } from './common/guards/min-seq.guard';
import { RequestLogGuard } from './common/guards/request-log.guard';
import { createValidationPipe } from './common/validation/validation.pipe';
import { validateEnv, type Env } from './config/env.validation';
import { heapBudgetBytes } from './config/heap-budget';
import { DatabaseModule } from './database/database.module';
import { DocsModule } from './docs/docs.module';
import { HealthModule } from './health/health.module';
import { IdempotencyModule } from './idempotency/idempotency.module';
import { JoinModule } from './join/join.module';
import { RecordsModule } from './records/records.module';
import { TYPED_TABLE_SCHEMAS } from './records/typed-tables';
import { TablesModule } from './tables/tables.module';
import { ClusterModule } from './cluster/cluster.module';

/** DATA_DIR and its companions, or nothing: memory only. */
function persistenceOptions(config: ConfigService<Env, true>): PersistenceOptions | undefined {
  const dataDir = config.get('DATA_DIR', { infer: true });
  if (dataDir === undefined) return undefined;
  return {
    dataDir,
    fsync: config.get('FSYNC', { infer: true }),
    repair: config.get('DATA_REPAIR', { infer: true }),
    compactRatio: config.get('COMPACT_RATIO', { infer: true }),
    compactMinBytes: config.get('COMPACT_MIN_BYTES', { infer: true }),
  };
}

/** The store's options from the validated environment. */
export function databaseOptions(config: ConfigService<Env, true>): DatabaseModuleOptions {
  return {
    lockTimeoutMs: config.get('LOCK_TIMEOUT_MS', { infer: true }),
    schemas: TYPED_TABLE_SCHEMAS,
    maxHeapBytes: heapBudgetBytes(config.get('MAX_MEMORY_MB', { infer: true })),
    maxResultRows: config.get('MAX_RESULT_ROWS', { infer: true }),
    snapshotMaxBytes: config.get('SNAPSHOT_MAX_MB', { infer: true }) * 1024 * 1024,
    persistence: persistenceOptions(config),
    cluster: clusterOptions(config),
  };
}

/** NATS_URL and its companions, or nothing: the embedded store. */
function clusterOptions(config: ConfigService<Env, true>): ClusterOptions | undefined {
  const servers = config.get('NATS_URL', { infer: true });
  if (servers === undefined) return undefined;
  return {
    servers,
    stream: config.get('NATS_STREAM', { infer: true }),
    replicas: config.get('NATS_REPLICAS', { infer: true }),
    writeTimeoutMs: config.get('WRITE_TIMEOUT_MS', { infer: true }),
    duplicateWindowMs: config.get('IDEMPOTENCY_TTL_MS', { infer: true }),
    replicaName: config.get('REPLICA_NAME', { infer: true }) ?? `${hostname()}-${process.pid}`,
    maxLag: config.get('MAX_LAG', { infer: true }),
    snapshotEvery: config.get('SNAPSHOT_EVERY', { infer: true }),
    retain: config.get('NATS_RETAIN', { infer: true }),
  };
}

@Module({
  imports: [
    ConfigModule.forRoot({
      isGlobal: true,
      cache: true,
      ignoreEnvFile: true,
      validate: validateEnv,
      // Only validated values: an empty variable counts as unset, never as the raw ''.
      skipProcessEnv: true,
    }),
    ThrottlerModule.forRootAsync({
      imports: [RateLimitModule],
      inject: [ConfigService, RateLimitStorage],
      useFactory: (config: ConfigService<Env, true>, storage: RateLimitStorage) => {
        const limit = config.get('THROTTLE_LIMIT', { infer: true });
        return {
          throttlers: [{ limit, ttl: config.get('THROTTLE_TTL_MS', { infer: true }) }],
          storage,
          // THROTTLE_LIMIT=0 turns throttling off.
          skipIf: () => limit === 0,
          // One budget per client across all routes (the default keys by route as well).
          generateKey: (_context, tracker, throttler) => `${throttler}:${tracker}`,
        };
      },
    }),
    DatabaseModule.forRootAsync({ inject: [ConfigService], useFactory: databaseOptions }),
    IdempotencyModule,
    RecordsModule,
    TablesModule,
    ClusterModule,
    JoinModule,
    HealthModule,
    DocsModule,
    AdminModule,
  ],
  providers: [
    { provide: APP_PIPE, useFactory: createValidationPipe },
    // Guards run in this order. No global interceptor: one would put every request through
    // Nest's interceptor chain (see RequestLogGuard for what that costs).
    // First: names the handler in the log line, also of requests the throttler refuses.
    { provide: APP_GUARD, useClass: RequestLogGuard },
    // Throttling before keys: it also limits how fast one client can guess them.
    { provide: APP_GUARD, useClass: ThrottlerGuard },
    { provide: APP_GUARD, useClass: ApiKeyGuard },
    // X-Memdb-Min-Seq: waits for a log position, for clients that may ask, before any body is read.
    { provide: APP_GUARD, useClass: MinSeqGuard },
    // Last: bodies are read only for requests the guards above admit.
    { provide: APP_GUARD, useClass: JsonBodyGuard },
    { provide: APP_FILTER, useClass: ProblemDetailsFilter },
  ],
})
export class AppModule {}
