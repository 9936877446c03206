import { ChangeLog } from './changes/change-log';
import { NatsLog } from './cluster/nats-log';
import { CommandLog } from './command-log';
import { StorageUnavailableError } from './database.errors';
import type { DatabaseModuleOptions } from './database.module-definition';
import { MemoryBudget } from './memory-budget';
import type { Journal } from './persistence/change';
import { WriteGate } from './persistence/write-gate';
import { StateMachine } from './state-machine';
import { Versions } from './versions';

const DEFAULT_LOCK_TIMEOUT_MS = 5000;
const DEFAULT_SNAPSHOT_MAX_BYTES = 256 * 1024 * 1024;
const DEFAULT_CHANGES = { retain: 100_000, retainBytes: 64 * 1024 * 1024 };

/**
 * Where a log without DATA_DIR starts: the clock in microseconds, so sequence numbers stay
 * above any earlier run's (a run would need a million writes a second to catch up with it).
 */
export function clockSeq(): number {
  return Date.now() * 1000;
}

/**
 * What StorageService (the API) and PersistenceService (recovery) share, and what only they
 * reach: DatabaseModule provides it without exporting it, so no feature module can swap
 * tables or apply commands. Holds the state machine, the log, the write gate and whether the
 * store serves (loading, shutting down).
 */
export class DatabaseCore {
  readonly lockTimeoutMs: number;
  readonly machine: StateMachine;
  readonly log: CommandLog;
  readonly gate: WriteGate;
  readonly memory: MemoryBudget | undefined;
  /** The change feed's memory (GET /api/v1/changes), filled as entries are applied. */
  readonly changes: ChangeLog;
  /** Where commands are written before they are applied; none without DATA_DIR. */
  journal: Journal | undefined;
  /** Why data cannot be served yet (loading from DATA_DIR, shutting down), if it cannot. */
  private loading: string | undefined;
  private shuttingDown = false;

  constructor(readonly options: DatabaseModuleOptions) {
    this.lockTimeoutMs = options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
    this.gate = new WriteGate(this.lockTimeoutMs);
    this.memory =
      options.maxHeapBytes === undefined ? undefined : new MemoryBudget(options.maxHeapBytes);
    const versions = new Versions(options.snapshotMaxBytes ?? DEFAULT_SNAPSHOT_MAX_BYTES);
    // A Map, not the options object: table names such as `constructor` must not hit a prototype.
    const schemas = new Map(Object.entries(options.schemas ?? {}));
    // With DATA_DIR the log continues from the files (PersistenceService loads them); in
    // cluster mode the stream's sequence numbers are the log's.
    const start =
      options.persistence === undefined && options.cluster === undefined ? clockSeq() : 0;
    this.machine = new StateMachine(schemas, versions, this.lockTimeoutMs, start);
    this.log =
      options.cluster === undefined
        ? new CommandLog(this.machine)
        : new NatsLog(this.machine, options.cluster);
    this.changes = new ChangeLog(options.changes ?? DEFAULT_CHANGES, () => this.machine.appliedSeq);
    this.log.changes = this.changes;
  }

  /** Why reads and writes are refused right now, if they are. */
  get notReadyReason(): string | undefined {
    if (this.log.stopped !== undefined) return `stopped: ${this.log.stopped.message}`;
    return this.loading;
  }

  /** @throws StorageUnavailableError while loading, shutting down or stopped */
  assertServing(): void {
    const reason = this.notReadyReason;
    if (reason !== undefined) throw new StorageUnavailableError(reason);
  }

  /** Refuses reads and writes (503) until `finishLoading`. */
  beginLoading(reason: string): void {
    this.loading = reason;
  }

  /** Serves again (unless shutdown began meanwhile), logging every command to `journal`. */
  finishLoading(journal: Journal | undefined): void {
    this.journal = journal;
    this.log.attach(journal);
    if (!this.shuttingDown) this.loading = undefined;
  }

  /** Shutting down: readiness fails and new reads and writes are refused (503) at once. */
  beginShutdown(): void {
    this.shuttingDown = true;
    this.loading = 'the service is shutting down';
  }

  /** Runs `step` with no write in flight and none starting (restore, snapshots). */
  exclusive<T>(step: () => T | Promise<T>): Promise<T> {
    return this.gate.exclusive(step);
  }
}
