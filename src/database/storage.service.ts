import { randomUUID } from 'node:crypto';
import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { NatsLog, type NatsState } from './cluster/nats-log';
import type { Command } from './commands';
import { DatabaseCore } from './database-core';
import {
  LockTimeoutError,
  RecordValidationError,
  StorageFullError,
  TableNotFoundError,
  type DatabaseError,
  type FieldError,
} from './database.errors';
import { RECORD_ID_PATTERN, RECORD_ID_RULE, assertTableName } from './names';
import {
  executeJoin,
  executeList,
  streamJoin,
  streamList,
  type QueryLimits,
  type QueryResult,
  type QueryStream,
} from './query-executor';
import type { FieldPath } from './query/field-path';
import type { JoinQuery, ListQuery } from './query/query-params';
import type { JsonObject, StoredRecord } from './record.types';
import type { VersionCondition } from './record-version';
import {
  fieldPathOf,
  splitServerFields,
  type StateMachine,
  type StorageStats,
  type TableInfo,
} from './state-machine';
import type { Table, IndexInfo } from './table';
import { type PAUSE, type LazyRows } from './query/yielder';
import type { ReadSnapshot, Versions } from './versions';

export type { StorageStats, TableInfo } from './state-machine';

export interface JoinTables {
  readonly left: string;
  readonly right: string;
  readonly leftKey: FieldPath;
  readonly rightKey: FieldPath;
}

/** Conditions on a write (If-Match). */
export interface WriteConditions {
  readonly ifMatch?: VersionCondition;
}

/**
 * Filled in by a read or write: `seq`, a log sequence number at which this server's state
 * includes the write's outcome, or which the read's snapshot reflects (X-Memdb-Seq).
 */
export interface Receipt {
  seq?: number;
  /**
   * The request's Idempotency-Key, digested with its scope and request: in cluster mode the
   * command's message id, so the stream drops a repeat published through any replica.
   */
  readonly idempotencyId?: string;
}

/** GET /api/v1/cluster. */
export interface ClusterStatus {
  readonly mode: 'embedded' | 'nats';
  readonly replica: string;
  readonly applied_seq: number;
  readonly last_seq: number;
  readonly lag: number;
  readonly nats: NatsState | null;
  readonly stream: { readonly name: string; readonly replicas: number } | null;
}

const DEFAULT_MAX_RESULT_ROWS = 100_000;
/** Most field errors reported for one bulk write. */
const BULK_ERRORS_MAX = 100;
const RETRY = Symbol('retry');

/**
 * The database's API: reads on snapshots of the state machine, and the write path. A write is
 * checked against the request alone (names, ids, typed tables' schemas), then against this
 * server's resources (memory budget, the write gate, its table's lock), all before it is
 * logged; then it becomes a command (its ids and times decided here), which is logged, applied
 * (StateMachine.apply decides every outcome that depends on state) and answered.
 */
@Injectable()
export class StorageService implements OnModuleInit, OnModuleDestroy {
  private readonly machine: StateMachine;
  private readonly versions: Versions;
  private readonly limits: QueryLimits;

  constructor(@Inject(DatabaseCore) private readonly core: DatabaseCore) {
    this.machine = core.machine;
    this.versions = core.machine.versions;
    this.limits = { maxResultRows: core.options.maxResultRows ?? DEFAULT_MAX_RESULT_ROWS };
  }

  /** A store of its own, outside Nest (tests, benchmarks). */
  static standalone(options: ConstructorParameters<typeof DatabaseCore>[0] = {}): StorageService {
    return new StorageService(new DatabaseCore(options));
  }

  onModuleInit(): void {
    this.core.memory?.start();
  }

  onModuleDestroy(): void {
    this.core.memory?.stop();
  }

  /** True once the store can serve: at once in memory, once its files loaded with DATA_DIR. */
  get ready(): boolean {
    return this.core.notReadyReason === undefined;
  }

  /** Why reads and writes are refused right now (loading, shutting down), if they are. */
  get notReadyReason(): string | undefined {
    return this.core.notReadyReason;
  }

  /** Every log entry up to this sequence number is applied. */
  get appliedSeq(): number {
    return this.machine.appliedSeq;
  }

  /**
   * Resolves true once entry `seq` is applied (X-Memdb-Min-Seq), false after `timeoutMs` or
   * once `cancel` aborts.
   */
  waitForSeq(seq: number, timeoutMs: number, cancel?: AbortSignal): Promise<boolean> {
    return this.core.log.waitFor(seq, timeoutMs, cancel);
  }

  /**
   * A strong read's barrier: in cluster mode, resolves once this replica has applied a no-op
   * published now (so it has seen every write acknowledged before); embedded, at once.
   * @throws StorageUnavailableError (NATS unreachable), WriteUnconfirmedError
   */
  async barrier(): Promise<void> {
    const log = this.core.log;
    if (log instanceof NatsLog) await log.barrier();
  }

  /** Where this server stands in the log, for GET /api/v1/cluster. */
  clusterStatus(replica: string): ClusterStatus {
    const log = this.core.log;
    const applied = this.machine.appliedSeq;
    if (!(log instanceof NatsLog)) {
      return {
        mode: 'embedded',
        replica,
        applied_seq: applied,
        last_seq: applied,
        lag: 0,
        nats: null,
        stream: null,
      };
    }
    const last = log.streamLastSeq;
    return {
      mode: 'nats',
      replica: log.options.replicaName,
      applied_seq: applied,
      last_seq: last,
      lag: Math.max(0, last - applied),
      nats: log.state,
      stream: { name: log.options.stream, replicas: log.options.replicas },
    };
  }

  /** Cluster mode: entries of the stream not applied yet, and the most readiness allows. */
  get lag(): { readonly behind: number; readonly max: number } | undefined {
    const log = this.core.log;
    if (!(log instanceof NatsLog)) return undefined;
    return {
      behind: Math.max(0, log.streamLastSeq - this.machine.appliedSeq),
      max: log.options.maxLag,
    };
  }

  /** Whether writes are refused because the heap is over its budget. */
  get overMemoryBudget(): boolean {
    return this.core.memory?.exceeded ?? false;
  }

  stats(): StorageStats {
    return this.machine.stats();
  }

  /** Open reads and the old record versions kept for them (for health and tests). */
  get snapshots(): { readonly open: number; readonly keptBytes: number } {
    return { open: this.versions.openReads, keptBytes: this.versions.keptBytes };
  }

  // --- tables and indexes ---

  /** Tables by name, with record counts and indexes. @throws StorageUnavailableError while loading */
  listTables(receipt?: Receipt): TableInfo[] {
    this.core.assertServing();
    if (receipt) receipt.seq = this.machine.appliedSeq;
    return this.machine.list();
  }

  /** @throws TableNotFoundError */
  tableInfo(name: string, receipt?: Receipt): TableInfo {
    const table = this.existingTable(name);
    if (receipt) receipt.seq = this.machine.appliedSeq;
    return { name: table.name, records: table.size, indexes: table.listIndexes() };
  }

  /** Creates an empty table. @throws InvalidNameError, TableExistsError */
  async createTable(name: string, receipt?: Receipt): Promise<TableInfo> {
    assertTableName(name);
    return this.write(name, receipt, () => ({ v: 1, op: 'createTable', table: name }));
  }

  /** Drops a table and its records. @throws TableNotFoundError */
  async dropTable(name: string, receipt?: Receipt): Promise<void> {
    await this.write(name, receipt, () => ({ v: 1, op: 'dropTable', table: name }));
  }

  /** @throws TableNotFoundError, IndexExistsError, UniqueViolationError, InvalidNameError (bad field) */
  async createIndex(
    name: string,
    field: string,
    unique: boolean,
    receipt?: Receipt,
  ): Promise<IndexInfo> {
    const indexField = fieldPathOf(field).join('.');
    return this.write(name, receipt, () => ({
      v: 1,
      op: 'createIndex',
      table: name,
      field: indexField,
      unique,
    }));
  }

  /** @throws TableNotFoundError */
  listIndexes(name: string, receipt?: Receipt): IndexInfo[] {
    const table = this.existingTable(name);
    if (receipt) receipt.seq = this.machine.appliedSeq;
    return table.listIndexes();
  }

  /** @throws TableNotFoundError, IndexNotFoundError */
  async dropIndex(name: string, field: string, receipt?: Receipt): Promise<void> {
    await this.write(name, receipt, () => ({ v: 1, op: 'dropIndex', table: name, field }));
  }

  // --- records ---

  /** @throws TableNotFoundError, RecordNotFoundError */
  get(table: string, id: string, receipt?: Receipt): StoredRecord {
    const found = this.existingTable(table);
    if (receipt) receipt.seq = this.machine.appliedSeq;
    return found.getOrThrow(id);
  }

  /**
   * A page of records: filtered, sorted, paged, projected, as of the moment it was asked for.
   * @throws TableNotFoundError, QueryError, ResultTooLargeError, SnapshotTooOldError
   */
  async list(table: string, query: ListQuery, receipt?: Receipt): Promise<QueryResult<unknown>> {
    const found = this.existingTable(table);
    return this.reading(receipt, (snapshot) =>
      executeList(found.view(snapshot), query, this.limits),
    );
  }

  /**
   * The whole list (`limit=all`), its rows read as they are consumed, all from the state of the
   * moment it was asked for. The caller must `close` the stream if it stops reading early.
   * @throws as list
   */
  async listAll(table: string, query: ListQuery, receipt?: Receipt): Promise<QueryStream<unknown>> {
    const found = this.existingTable(table);
    return this.streaming(receipt, (snapshot) =>
      streamList(found.view(snapshot), query, this.limits),
    );
  }

  /**
   * Stores a new record: the body's fields plus `id` (the body's, or a new UUID v4),
   * `created_at` and `updated_at`. Client timestamps are ignored. Creates the table if needed.
   * @throws InvalidNameError, RecordValidationError, DuplicateRecordError, UniqueViolationError, LockTimeoutError
   */
  async create(table: string, body: JsonObject, receipt?: Receipt): Promise<StoredRecord> {
    const [record] = await this.insert(table, [body], false, receipt);
    return record;
  }

  /**
   * Stores all records or none; errors name the failing record's index.
   * @throws as create
   */
  async createMany(
    table: string,
    bodies: readonly JsonObject[],
    receipt?: Receipt,
  ): Promise<StoredRecord[]> {
    return this.insert(table, bodies, true, receipt);
  }

  /**
   * Replaces a record's fields, keeping `id` and `created_at` and renewing `updated_at`.
   * @throws TableNotFoundError, RecordNotFoundError, RecordValidationError, UniqueViolationError,
   *   PreconditionFailedError, LockTimeoutError
   */
  async replace(
    table: string,
    id: string,
    body: JsonObject,
    conditions: WriteConditions = {},
    receipt?: Receipt,
  ): Promise<StoredRecord> {
    const { id: givenId, fields } = splitServerFields(body);
    if (givenId !== undefined) checkSameId(table, id, givenId);
    this.validate(table, fields);
    return this.write(table, receipt, () => ({
      v: 1,
      op: 'replace',
      table,
      id,
      fields,
      at: new Date().toISOString(),
      ...ifMatchOf(conditions),
    }));
  }

  /**
   * Applies an RFC 7396 merge patch to a record's fields (`null` removes a field).
   * @throws as replace
   */
  async patch(
    table: string,
    id: string,
    patch: JsonObject,
    conditions: WriteConditions = {},
    receipt?: Receipt,
  ): Promise<StoredRecord> {
    const { id: givenId, fields } = splitServerFields(patch);
    if (givenId !== undefined) checkSameId(table, id, givenId);
    return this.write(table, receipt, () => ({
      v: 1,
      op: 'patch',
      table,
      id,
      patch: fields,
      at: new Date().toISOString(),
      ...ifMatchOf(conditions),
    }));
  }

  /** @throws TableNotFoundError, RecordNotFoundError, PreconditionFailedError, LockTimeoutError */
  async delete(
    table: string,
    id: string,
    conditions: WriteConditions = {},
    receipt?: Receipt,
  ): Promise<void> {
    await this.write(table, receipt, () => ({
      v: 1,
      op: 'delete',
      table,
      id,
      ...ifMatchOf(conditions),
    }));
  }

  /**
   * A page of the join of two tables, both as of the moment it was asked for.
   * @throws TableNotFoundError, QueryError, ResultTooLargeError, SnapshotTooOldError
   */
  async join(
    tables: JoinTables,
    query: JoinQuery,
    receipt?: Receipt,
  ): Promise<QueryResult<unknown>> {
    const left = this.existingTable(tables.left);
    const right = this.existingTable(tables.right);
    const keys = { leftKey: tables.leftKey, rightKey: tables.rightKey };
    return this.reading(receipt, (snapshot) =>
      executeJoin(left.view(snapshot), right.view(snapshot), keys, query, this.limits),
    );
  }

  /** The whole join (`limit=all`), read as it is consumed; see listAll. @throws as join */
  async joinAll(
    tables: JoinTables,
    query: JoinQuery,
    receipt?: Receipt,
  ): Promise<QueryStream<unknown>> {
    const left = this.existingTable(tables.left);
    const right = this.existingTable(tables.right);
    const keys = { leftKey: tables.leftKey, rightKey: tables.rightKey };
    return this.streaming(receipt, (snapshot) =>
      streamJoin(left.view(snapshot), right.view(snapshot), keys, query, this.limits),
    );
  }

  // --- internals ---

  /** Runs a read on a snapshot taken now, closed when the read ends. */
  private reading<T>(
    receipt: Receipt | undefined,
    read: (snapshot: ReadSnapshot) => Promise<T>,
  ): Promise<T> {
    const snapshot = this.versions.openSnapshot();
    if (receipt) receipt.seq = this.machine.appliedSeq;
    const close = () => this.versions.close(snapshot);
    let pending: Promise<T>;
    try {
      pending = read(snapshot);
    } catch (error) {
      close();
      throw error;
    }
    // Registered before the caller's own reaction, so the snapshot is closed first.
    pending.then(close, close);
    return pending;
  }

  /**
   * Prepares a streamed read on a snapshot taken now, which stays open until its rows are
   * read to the end or the stream is closed; a read ended to bound memory throws
   * SnapshotTooOldError from its rows.
   */
  private async streaming<T>(
    receipt: Receipt | undefined,
    prepare: (snapshot: ReadSnapshot) => Promise<QueryStream<T>>,
  ): Promise<QueryStream<T>> {
    const snapshot = this.versions.openSnapshot();
    if (receipt) receipt.seq = this.machine.appliedSeq;
    const close = () => this.versions.close(snapshot);
    try {
      const stream = await prepare(snapshot);
      return { ...stream, rows: checkedRows(stream.rows, snapshot, close), close };
    } catch (error) {
      close();
      throw error;
    }
  }

  private async insert(
    table: string,
    bodies: readonly JsonObject[],
    bulk: boolean,
    receipt: Receipt | undefined,
  ): Promise<StoredRecord[]> {
    assertTableName(table);
    const validator = this.core.machine.schemaOf(table);
    const errors: FieldError[] = [];
    const checked = bodies.map((body, index) => {
      const { id: givenId, fields } = splitServerFields(body);
      const problems: FieldError[] = [];
      let id: string | undefined;
      if (givenId === undefined) {
        id = undefined;
      } else if (typeof givenId === 'string' && RECORD_ID_PATTERN.test(givenId)) {
        id = givenId;
      } else {
        problems.push({ field: 'id', message: `id must be a string of ${RECORD_ID_RULE}` });
      }
      if (validator !== undefined) problems.push(...validator(fields));
      for (const problem of problems) {
        if (errors.length < BULK_ERRORS_MAX) {
          errors.push(
            bulk
              ? { field: `[${index}].${problem.field}`, message: problem.message, index }
              : problem,
          );
        }
      }
      return { id, fields };
    });
    if (errors.length > 0) throw new RecordValidationError(table, errors);
    return this.write(table, receipt, () => {
      // Ids and times are decided here, once: the log holds them, not the means to make them.
      const now = new Date().toISOString();
      const records = checked.map(({ id, fields }): StoredRecord => ({
        id: id ?? flatten(randomUUID()),
        ...fields,
        created_at: now,
        updated_at: now,
      }));
      return { v: 1, op: 'insert', table, records, bulk };
    });
  }

  /**
   * The write path after the request's own checks: this server's resources (memory budget;
   * the gate a snapshot can hold writes at; the table's lock, each with the lock timeout),
   * then the command is built, logged and applied, and the answer waits until its log entry
   * is durable (FSYNC=always). A command that fails in apply still took its sequence number.
   * @throws the apply's DatabaseError (with its `seq`), StorageFullError, LockTimeoutError,
   *   StorageUnavailableError, DiskFullError
   */
  private async write<T>(
    table: string,
    receipt: Receipt | undefined,
    build: () => Command,
  ): Promise<T> {
    this.core.assertServing();
    const memory = this.core.memory;
    if (memory?.exceeded) throw new StorageFullError(memory.used, memory.limitBytes);
    const submit = () => this.core.log.submit(build(), receipt?.idempotencyId);
    const { seq, outcome } = await this.core.gate.run(
      // Cluster mode: the stream orders writes and apply decides every outcome, so a write
      // waiting for its entry (a round trip; seconds in a failover) holds no table lock, and
      // writes to one table are published concurrently instead of one at a time.
      this.core.log.sequencesItself
        ? async () => submit()
        : () => this.withTableLock(table, submit),
      () => new LockTimeoutError(table, this.core.lockTimeoutMs),
    );
    if (this.core.journal !== undefined) await this.core.journal.durable();
    if (receipt) receipt.seq = seq;
    if (!outcome.ok) {
      (outcome.error as DatabaseError & { seq?: number }).seq = seq;
      throw outcome.error;
    }
    return outcome.value as T;
  }

  /**
   * Runs a write under the table's lock, creating the (not yet visible) table if needed. A
   * writer that waited while the table was dropped starts over on the table now of that name.
   */
  private async withTableLock<T>(name: string, write: () => T | Promise<T>): Promise<T> {
    for (;;) {
      const target = this.machine.tableForWrite(name);
      try {
        const result = await target.withLock(() => (target.dropped ? RETRY : write()));
        if (result !== RETRY) return result;
      } finally {
        // A failed first write leaves no table behind.
        this.machine.forgetIfUnused(target);
      }
    }
  }

  private existingTable(name: string): Table {
    this.core.assertServing();
    const table = this.machine.table(name);
    if (table === undefined) throw new TableNotFoundError(name);
    return table;
  }

  private validate(table: string, fields: JsonObject): void {
    const validator = this.machine.schemaOf(table);
    if (validator === undefined) return;
    const errors = validator(fields);
    if (errors.length > 0) throw new RecordValidationError(table, errors);
  }
}

function ifMatchOf({ ifMatch }: WriteConditions): { ifMatch?: VersionCondition } {
  return ifMatch === undefined ? {} : { ifMatch };
}

function checkSameId(table: string, id: string, givenId: unknown): void {
  if (givenId === id) return;
  const error: FieldError = {
    field: 'id',
    message: `id cannot change: the body's id must be '${id}' or absent`,
  };
  throw new RecordValidationError(table, [error]);
}

/**
 * A stream's rows, stopped as soon as its snapshot is ended (even between rows already
 * gathered), and its snapshot closed once they are read through or abandoned. A plain iterator,
 * not a generator: a generator's suspend and resume on every row cost more than the check.
 */
function checkedRows<T>(rows: LazyRows<T>, snapshot: ReadSnapshot, close: () => void): LazyRows<T> {
  return {
    [Symbol.iterator](): Iterator<T | typeof PAUSE> {
      const inner = rows[Symbol.iterator]();
      return {
        next(): IteratorResult<T | typeof PAUSE> {
          try {
            snapshot.check();
            const step = inner.next();
            if (step.done === true) close();
            return step;
          } catch (error) {
            close();
            throw error;
          }
        },
        return(value?: unknown): IteratorResult<T | typeof PAUSE> {
          close();
          inner.return?.();
          return { done: true, value };
        },
      };
    },
  };
}

/** Keeps the conversion in flatten() observable, so the optimiser cannot drop it. */
let _flattenSink = 0;

/**
 * randomUUID() builds its string by concatenation, and V8 keeps such a string as a rope of its
 * pieces: about 400 B more per record (bench/memory.ts). A numeric conversion makes V8 flatten
 * it in place; its result only feeds a sink.
 */
function flatten(text: string): string {
  _flattenSink ^= (text as unknown as number) | 0;
  return text;
}
