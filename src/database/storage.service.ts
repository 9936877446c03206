import { randomUUID } from 'node:crypto';
import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import {
  InvalidNameError,
  LockTimeoutError,
  PreconditionFailedError,
  RecordValidationError,
  StorageFullError,
  StorageUnavailableError,
  TableExistsError,
  TableNotFoundError,
  type FieldError,
} from './database.errors';
import { DATABASE_OPTIONS, type DatabaseModuleOptions } from './database.module-definition';
import { MemoryBudget } from './memory-budget';
import { applyMergePatch } from './merge-patch';
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
import { FIELD_PATH_RULE, parseFieldPath, type FieldPath } from './query/field-path';
import { QueryError } from './query/query.errors';
import type { JoinQuery, ListQuery } from './query/query-params';
import type { JsonObject, RecordValidator, StoredRecord } from './record.types';
import { matchesVersion, type VersionCondition } from './record-version';
import type { Change, Journal } from './persistence/change';
import type { TableData } from './persistence/snapshot';
import { WriteGate } from './persistence/write-gate';
import { Table, type IndexInfo } from './table';
import { type PAUSE, type LazyRows } from './query/yielder';
import { Versions, type ReadSnapshot } from './versions';

export interface TableInfo {
  readonly name: string;
  readonly records: number;
  readonly indexes: readonly IndexInfo[];
}

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

export interface StorageStats {
  readonly tables: number;
  readonly records: number;
}

const DEFAULT_LOCK_TIMEOUT_MS = 5000;
const DEFAULT_MAX_RESULT_ROWS = 100_000;
const DEFAULT_SNAPSHOT_MAX_BYTES = 256 * 1024 * 1024;
/** Most field errors reported for one bulk write. */
const BULK_ERRORS_MAX = 100;
const RETRY = Symbol('retry');

/**
 * The in-memory database: tables by name, each a Map of records by id. Every write runs under
 * its table's lock and checks everything before it changes anything; reads take no lock.
 * Records are stored as new objects and never mutated.
 */
@Injectable()
export class StorageService implements OnModuleInit, OnModuleDestroy {
  private readonly tables = new Map<string, Table>();
  private readonly schemas: ReadonlyMap<string, RecordValidator>;
  private readonly lockTimeoutMs: number;
  private readonly memory: MemoryBudget | undefined;
  private readonly limits: QueryLimits;
  /** Where writes are logged before they are applied; none without DATA_DIR. */
  private journal: Journal | undefined;
  private readonly gate: WriteGate;
  /** Write versions and open reads: every read sees the state as of its start. */
  private readonly versions: Versions;

  constructor(@Inject(DATABASE_OPTIONS) options: DatabaseModuleOptions) {
    this.lockTimeoutMs = options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
    this.gate = new WriteGate(this.lockTimeoutMs);
    // A Map, not the options object: table names such as `constructor` must not hit a prototype.
    this.schemas = new Map(Object.entries(options.schemas ?? {}));
    this.memory =
      options.maxHeapBytes === undefined ? undefined : new MemoryBudget(options.maxHeapBytes);
    this.limits = { maxResultRows: options.maxResultRows ?? DEFAULT_MAX_RESULT_ROWS };
    this.versions = new Versions(options.snapshotMaxBytes ?? DEFAULT_SNAPSHOT_MAX_BYTES);
  }

  onModuleInit(): void {
    this.memory?.start();
  }

  onModuleDestroy(): void {
    this.memory?.stop();
  }

  /** True once the store can serve: at once in memory, once its files loaded with DATA_DIR. */
  get ready(): boolean {
    return this.loading === undefined;
  }

  /** Why data cannot be served yet (loading from DATA_DIR), if it cannot. */
  private loading: string | undefined;

  // --- persistence (see PersistenceService) ---

  /** Refuses reads and writes (503) until `finishLoading`. */
  beginLoading(reason: string): void {
    this.loading = reason;
  }

  /**
   * Serves again (unless shutdown began meanwhile); from now on every write is logged to
   * `journal` before it is applied.
   */
  finishLoading(journal: Journal | undefined): void {
    this.journal = journal;
    if (!this.shuttingDown) this.loading = undefined;
  }

  private shuttingDown = false;

  /** Why reads and writes are refused right now (loading, shutting down), if they are. */
  get notReadyReason(): string | undefined {
    return this.loading;
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

  /**
   * Builds tables from snapshot data (a backup being restored), checking everything a write
   * would: names, ids (present, well formed, unique), typed tables' schemas and unique indexes.
   * Nothing live changes. @throws InvalidNameError, RecordValidationError, DuplicateRecordError,
   * UniqueViolationError, IndexExistsError
   */
  buildTables(data: readonly TableData[]): Map<string, Table> {
    const built = new Map<string, Table>();
    for (const { name, indexes, records } of data) {
      assertTableName(name);
      if (built.has(name)) throw new TableExistsError(name);
      const table = new Table(name, this.lockTimeoutMs, this.versions);
      const validator = this.schemas.get(name);
      records.forEach((record, index) => {
        const problems: FieldError[] = [];
        if (typeof record !== 'object' || record === null || Array.isArray(record)) {
          throw new RecordValidationError(name, [
            { field: `[${index}]`, message: 'a record must be a JSON object', index },
          ]);
        }
        if (typeof record.id !== 'string' || !RECORD_ID_PATTERN.test(record.id))
          problems.push({ field: 'id', message: `id must be a string of ${RECORD_ID_RULE}` });
        for (const stamp of ['created_at', 'updated_at'] as const) {
          if (!isTimestamp(record[stamp]))
            problems.push({ field: stamp, message: `${stamp} must be an ISO 8601 timestamp` });
        }
        if (validator !== undefined) problems.push(...validator(splitServerFields(record).fields));
        if (problems.length > 0) {
          throw new RecordValidationError(
            name,
            problems.map((problem) => ({
              ...problem,
              field: `[${index}].${problem.field}`,
              index,
            })),
          );
        }
      });
      table.insertAll(records, true);
      for (const index of indexes as unknown[]) {
        const { field, unique } = (index ?? {}) as { field?: unknown; unique?: unknown };
        if (typeof field !== 'string' || typeof unique !== 'boolean') {
          throw new RecordValidationError(name, [
            { field: 'indexes', message: 'each index must be { field: string, unique: boolean }' },
          ]);
        }
        const path = fieldPathOf(field);
        table.createIndex(path.join('.'), path, unique);
      }
      built.set(name, table);
    }
    return built;
  }

  /** Puts built tables in place of all current ones (call within `exclusive`). */
  swapTables(tables: ReadonlyMap<string, Table>): void {
    for (const table of this.tables.values()) table.dropped = true;
    this.tables.clear();
    for (const [name, table] of tables) this.tables.set(name, table);
  }

  /** Replaces all tables with `data` (a snapshot being loaded), without logging. */
  loadTables(data: readonly TableData[]): void {
    this.tables.clear();
    for (const { name, indexes, records } of data) {
      const table = new Table(name, this.lockTimeoutMs, this.versions);
      for (const { field, unique } of indexes)
        table.createIndex(field, parseFieldPath(field, 'field'), unique);
      table.restore(records);
      table.materialise();
      this.tables.set(name, table);
    }
  }

  /** Applies a logged change as it was logged (replaying the journal), without checks. */
  applyLogged(change: Change): void {
    const existing = this.tables.get(change.table);
    switch (change.op) {
      case 'put':
      case 'createTable': {
        let table = existing;
        if (table === undefined) {
          table = new Table(change.table, this.lockTimeoutMs, this.versions);
          this.tables.set(change.table, table);
        }
        if (change.op === 'put') table.restore(change.records);
        table.materialise();
        return;
      }
      case 'delete':
        if (existing?.get(change.id) !== undefined) existing.delete(change.id);
        return;
      case 'dropTable':
        if (existing !== undefined) this.removeTable(existing);
        return;
      case 'createIndex':
        if (existing !== undefined && existing.index(change.field) === undefined)
          existing.createIndex(change.field, parseFieldPath(change.field, 'field'), change.unique);
        return;
      case 'dropIndex':
        if (existing?.index(change.field) !== undefined) existing.dropIndex(change.field);
        return;
    }
  }

  /**
   * Every table as it is at one instant, with writes stopped only for that instant. Records are
   * immutable, so the copy holds references, not copies. (To do more in that same instant, call
   * `copyTables()` inside `exclusive()`.)
   */
  async pointInTime(): Promise<TableData[]> {
    return this.gate.exclusive(() => this.copyTables());
  }

  /** The tables as they are now (call within `exclusive` for a consistent copy). */
  copyTables(): TableData[] {
    return [...this.tables.values()].filter((table) => table.exists).map(dataOf);
  }

  /** Whether writes are refused because the heap is over its budget. */
  get overMemoryBudget(): boolean {
    return this.memory?.exceeded ?? false;
  }

  stats(): StorageStats {
    let tables = 0;
    let records = 0;
    for (const table of this.tables.values()) {
      if (!table.exists) continue;
      tables++;
      records += table.size;
    }
    return { tables, records };
  }

  // --- tables and indexes ---

  /**
   * Tables by name, with record counts and indexes.
   * @throws StorageUnavailableError while loading (a replay half done would list a partial set)
   */
  listTables(): TableInfo[] {
    if (this.loading !== undefined) throw new StorageUnavailableError(this.loading);
    return [...this.tables.values()]
      .filter((table) => table.exists)
      .map(infoOf)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** @throws TableNotFoundError */
  tableInfo(name: string): TableInfo {
    return infoOf(this.existingTable(name));
  }

  /** Creates an empty table. @throws InvalidNameError, TableExistsError */
  async createTable(name: string): Promise<TableInfo> {
    assertTableName(name);
    this.assertWritable();
    return this.write(name, () =>
      this.withTableLock(name, (table) => {
        if (table.exists) throw new TableExistsError(name);
        return this.commit({ op: 'createTable', table: name }, () => {
          table.materialise();
          return infoOf(table);
        });
      }),
    );
  }

  /** Drops a table and its records; writers waiting for it see it gone. @throws TableNotFoundError */
  async dropTable(name: string): Promise<void> {
    await this.write(name, () =>
      this.withExistingTable(name, (table) =>
        this.commit({ op: 'dropTable', table: name }, () => this.removeTable(table)),
      ),
    );
  }

  /** @throws TableNotFoundError, IndexExistsError, UniqueViolationError, QueryError (bad field) */
  async createIndex(name: string, field: string, unique: boolean): Promise<IndexInfo> {
    const path = fieldPathOf(field);
    this.assertWritable();
    const indexField = path.join('.');
    return this.write(name, () =>
      this.withExistingTable(name, (table) =>
        this.commit(
          { op: 'createIndex', table: name, field: indexField, unique },
          table.prepareIndex(indexField, path, unique),
        ),
      ),
    );
  }

  /** @throws TableNotFoundError */
  listIndexes(name: string): IndexInfo[] {
    return this.existingTable(name).listIndexes();
  }

  /** @throws TableNotFoundError, IndexNotFoundError */
  async dropIndex(name: string, field: string): Promise<void> {
    await this.write(name, () =>
      this.withExistingTable(name, (table) =>
        this.commit({ op: 'dropIndex', table: name, field }, table.prepareDropIndex(field)),
      ),
    );
  }

  // --- records ---

  /** @throws TableNotFoundError, RecordNotFoundError */
  get(table: string, id: string): StoredRecord {
    return this.existingTable(table).getOrThrow(id);
  }

  /**
   * A page of records: filtered, sorted, paged, projected, as of the moment it was asked for.
   * @throws TableNotFoundError, QueryError, ResultTooLargeError, SnapshotTooOldError
   */
  async list(table: string, query: ListQuery): Promise<QueryResult<unknown>> {
    const found = this.existingTable(table);
    return this.reading((snapshot) => executeList(found.view(snapshot), query, this.limits));
  }

  /**
   * The whole list (`limit=all`), its rows read as they are consumed, all from the state of the
   * moment it was asked for. The caller must `close` the stream if it stops reading early.
   * @throws as list
   */
  async listAll(table: string, query: ListQuery): Promise<QueryStream<unknown>> {
    const found = this.existingTable(table);
    return this.streaming((snapshot) => streamList(found.view(snapshot), query, this.limits));
  }

  /**
   * Stores a new record: the body's fields plus `id` (the body's, or a new UUID v4),
   * `created_at` and `updated_at`. Client timestamps are ignored. Creates the table if needed.
   * @throws InvalidNameError, RecordValidationError, DuplicateRecordError, UniqueViolationError, LockTimeoutError
   */
  async create(table: string, body: JsonObject): Promise<StoredRecord> {
    const [record] = await this.insert(table, [body], false);
    return record;
  }

  /**
   * Stores all records or none; errors name the failing record's index.
   * @throws as create
   */
  createMany(table: string, bodies: readonly JsonObject[]): Promise<StoredRecord[]> {
    return this.insert(table, bodies, true);
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
  ): Promise<StoredRecord> {
    const { id: givenId, fields } = splitServerFields(body);
    if (givenId !== undefined) checkSameId(table, id, givenId);
    this.validate(table, fields);
    return this.update(table, id, conditions, () => fields);
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
  ): Promise<StoredRecord> {
    const { id: givenId, fields: patchFields } = splitServerFields(patch);
    if (givenId !== undefined) checkSameId(table, id, givenId);
    return this.update(table, id, conditions, (current) => {
      const merged = applyMergePatch(splitServerFields(current).fields, patchFields) as JsonObject;
      this.validate(table, merged);
      return merged;
    });
  }

  /** @throws TableNotFoundError, RecordNotFoundError, PreconditionFailedError, LockTimeoutError */
  async delete(table: string, id: string, conditions: WriteConditions = {}): Promise<void> {
    await this.write(table, () =>
      this.withExistingTable(table, (found) => {
        checkConditions(found, id, conditions);
        return this.commit({ op: 'delete', table, id }, found.prepareDelete(id));
      }),
    );
  }

  /**
   * A page of the join of two tables, both as of the moment it was asked for.
   * @throws TableNotFoundError, QueryError, ResultTooLargeError, SnapshotTooOldError
   */
  async join(tables: JoinTables, query: JoinQuery): Promise<QueryResult<unknown>> {
    const left = this.existingTable(tables.left);
    const right = this.existingTable(tables.right);
    const keys = { leftKey: tables.leftKey, rightKey: tables.rightKey };
    return this.reading((snapshot) =>
      executeJoin(left.view(snapshot), right.view(snapshot), keys, query, this.limits),
    );
  }

  /** The whole join (`limit=all`), read as it is consumed; see listAll. @throws as join */
  async joinAll(tables: JoinTables, query: JoinQuery): Promise<QueryStream<unknown>> {
    const left = this.existingTable(tables.left);
    const right = this.existingTable(tables.right);
    const keys = { leftKey: tables.leftKey, rightKey: tables.rightKey };
    return this.streaming((snapshot) =>
      streamJoin(left.view(snapshot), right.view(snapshot), keys, query, this.limits),
    );
  }

  /** Open reads and the old record versions kept for them (for health and tests). */
  get snapshots(): { readonly open: number; readonly keptBytes: number } {
    return { open: this.versions.openReads, keptBytes: this.versions.keptBytes };
  }

  // --- internals ---

  /** Runs a read on a snapshot taken now, closed when the read ends. */
  private reading<T>(read: (snapshot: ReadSnapshot) => Promise<T>): Promise<T> {
    const snapshot = this.versions.openSnapshot();
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
    prepare: (snapshot: ReadSnapshot) => Promise<QueryStream<T>>,
  ): Promise<QueryStream<T>> {
    const snapshot = this.versions.openSnapshot();
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
  ): Promise<StoredRecord[]> {
    assertTableName(table);
    this.assertWritable();
    const now = new Date().toISOString();
    const errors: FieldError[] = [];
    const records = bodies.map((body, index): StoredRecord => {
      const { id: givenId, fields } = splitServerFields(body);
      const problems: FieldError[] = [];
      let id: string;
      if (givenId === undefined) {
        id = flatten(randomUUID());
      } else if (typeof givenId === 'string' && RECORD_ID_PATTERN.test(givenId)) {
        id = givenId;
      } else {
        id = '';
        problems.push({ field: 'id', message: `id must be a string of ${RECORD_ID_RULE}` });
      }
      const validator = this.schemas.get(table);
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
      return { id, ...fields, created_at: now, updated_at: now };
    });
    if (errors.length > 0) throw new RecordValidationError(table, errors);
    await this.write(table, () =>
      this.withTableLock(table, (target) =>
        this.commit({ op: 'put', table, records }, target.prepareInsert(records, bulk)),
      ),
    );
    return records;
  }

  private async update(
    table: string,
    id: string,
    conditions: WriteConditions,
    nextFields: (current: StoredRecord) => JsonObject,
  ): Promise<StoredRecord> {
    this.assertWritable();
    return this.write(table, () =>
      this.withExistingTable(table, async (found) => {
        checkConditions(found, id, conditions);
        const current = found.getOrThrow(id);
        const record: StoredRecord = {
          id,
          ...nextFields(current),
          created_at: current.created_at,
          updated_at: nextTimestamp(current.updated_at),
        };
        await this.commit({ op: 'put', table, records: [record] }, found.prepareReplace(record));
        return record;
      }),
    );
  }

  /**
   * Runs a write to `table` through the gate (a snapshot can stop writes for an instant), and
   * once it is applied waits until its log entry is durable (FSYNC=always) before the caller
   * answers. @throws LockTimeoutError when held at the gate longer than the lock timeout
   */
  private async write<T>(table: string, run: () => Promise<T>): Promise<T> {
    if (this.loading !== undefined) throw new StorageUnavailableError(this.loading);
    const result = await this.gate.run(run, () => new LockTimeoutError(table, this.lockTimeoutMs));
    if (this.journal !== undefined) await this.journal.durable();
    return result;
  }

  /**
   * Logs `change`, then applies it: under the table's lock, after every check has passed. A
   * change that cannot be logged is not applied. Without a journal, applies it at once.
   */
  private commit<T>(change: Change, apply: () => T): T | Promise<T> {
    if (this.journal === undefined) return apply();
    return this.journal.append(change).then(apply);
  }

  private removeTable(table: Table): void {
    table.dropped = true;
    if (this.tables.get(table.name) === table) this.tables.delete(table.name);
  }

  /**
   * Runs a write under the table's lock, creating the (not yet visible) table if needed. A
   * writer that waited while the table was dropped starts over on a fresh table.
   */
  private async withTableLock<T>(
    name: string,
    write: (table: Table) => T | Promise<T>,
  ): Promise<T> {
    for (;;) {
      let table = this.tables.get(name);
      if (table === undefined) {
        table = new Table(name, this.lockTimeoutMs, this.versions);
        this.tables.set(name, table);
      }
      const target = table;
      try {
        const result = await target.withLock(() => (target.dropped ? RETRY : write(target)));
        if (result !== RETRY) return result;
      } finally {
        // A failed first write leaves no table behind.
        if (!target.exists && !target.isLocked && this.tables.get(name) === target)
          this.tables.delete(name);
      }
    }
  }

  /** Runs a write under the lock of a table that exists, and still exists once locked. */
  private async withExistingTable<T>(
    name: string,
    write: (table: Table) => T | Promise<T>,
  ): Promise<T> {
    const table = this.existingTable(name);
    return table.withLock(() => {
      if (table.dropped) throw new TableNotFoundError(name);
      return write(table);
    });
  }

  /** @throws StorageFullError when the heap is over its budget. */
  private assertWritable(): void {
    if (this.memory?.exceeded) throw new StorageFullError(this.memory.used, this.memory.limitBytes);
  }

  private existingTable(name: string): Table {
    if (this.loading !== undefined) throw new StorageUnavailableError(this.loading);
    const table = this.tables.get(name);
    if (table === undefined || !table.exists) throw new TableNotFoundError(name);
    return table;
  }

  private validate(table: string, fields: JsonObject): void {
    const validator = this.schemas.get(table);
    if (validator === undefined) return;
    const errors = validator(fields);
    if (errors.length > 0) throw new RecordValidationError(table, errors);
  }
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

/** An ISO 8601 date-time, as memdb writes them (`2026-11-25T20:00:00.000Z`). */
function isTimestamp(value: unknown): boolean {
  return (
    typeof value === 'string' &&
    /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(value) &&
    !Number.isNaN(Date.parse(value))
  );
}

/** A table as snapshots hold it: its indexes and its records' references, in order. */
export function dataOf(table: Table): TableData {
  return { name: table.name, indexes: table.listIndexes(), records: [...table.values()] };
}

function infoOf(table: Table): TableInfo {
  return { name: table.name, records: table.size, indexes: table.listIndexes() };
}

function fieldPathOf(field: string): FieldPath {
  try {
    return parseFieldPath(field, 'field');
  } catch (error) {
    if (error instanceof QueryError) throw new InvalidNameError('field', field, FIELD_PATH_RULE);
    throw error;
  }
}

function checkConditions(table: Table, id: string, { ifMatch }: WriteConditions): void {
  if (ifMatch !== undefined && !matchesVersion(table.get(id), ifMatch)) {
    throw new PreconditionFailedError(table.name, id);
  }
}

function splitServerFields(body: Readonly<JsonObject>): { id: unknown; fields: JsonObject } {
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  const { id, created_at, updated_at, ...fields } = body;
  return { id, fields };
}

function checkSameId(table: string, id: string, givenId: unknown): void {
  if (givenId === id) return;
  const error: FieldError = {
    field: 'id',
    message: `id cannot change: the body's id must be '${id}' or absent`,
  };
  throw new RecordValidationError(table, [error]);
}

/** Now, but always later than `previous`, so every update visibly renews `updated_at`. */
function nextTimestamp(previous: string): string {
  return new Date(Math.max(Date.now(), Date.parse(previous) + 1)).toISOString();
}
