import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { ChangeLogOptions } from './changes/change-log';
import type { ClusterOptions } from './cluster/nats-log';
import type { PersistenceOptions } from './persistence/persistence-options';
import type { RecordValidator } from './record.types';

/** Options of `DatabaseModule.forRoot` / `forRootAsync`. */
export interface DatabaseModuleOptions {
  /** How long a write waits for its table's lock, or at the write gate. @default 5000 */
  readonly lockTimeoutMs?: number;
  /** Validators for typed tables, by table name. Tables without one accept any JSON object. */
  readonly schemas?: Readonly<Record<string, RecordValidator>>;
  /** Heap budget in bytes: above it writes fail with StorageFullError. Unset: no budget. */
  readonly maxHeapBytes?: number;
  /** Most rows a query may hold at once (sorted pages, join pages). @default 100000 */
  readonly maxResultRows?: number;
  /**
   * Most bytes of superseded record versions kept alive for open reads (SNAPSHOT_MAX_MB); past
   * it the oldest open read is ended. @default 256 MiB
   */
  readonly snapshotMaxBytes?: number;
  /** Keep the data on disk (DATA_DIR); unset: memory only. */
  readonly persistence?: PersistenceOptions;
  /** Cluster mode (NATS_URL): replicas apply one command log on JetStream. Unset: embedded. */
  readonly cluster?: ClusterOptions;
  /**
   * What the change feed keeps in memory: the last `retain` log entries' changes, at most
   * `retainBytes` of them. @default 100000 entries, 64 MiB
   */
  readonly changes?: ChangeLogOptions;
}

export const {
  ConfigurableModuleClass,
  MODULE_OPTIONS_TOKEN: DATABASE_OPTIONS,
  OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<DatabaseModuleOptions>()
  .setClassMethodName('forRoot')
  .setExtras({ isGlobal: true }, (definition, extras) => ({
    ...definition,
    global: extras.isGlobal,
  }))
  .build();
