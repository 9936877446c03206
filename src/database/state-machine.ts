import { type Command, commandProblem, type Outcome } from './commands';
import {
  DatabaseError,
  InvalidNameError,
  PreconditionFailedError,
  RecordValidationError,
  TableExistsError,
  TableNotFoundError,
  type FieldError,
} from './database.errors';
import { applyMergePatch } from './merge-patch';
import { RECORD_ID_PATTERN, RECORD_ID_RULE, assertTableName } from './names';
import { FIELD_PATH_RULE, parseFieldPath, type FieldPath } from './query/field-path';
import { QueryError } from './query/query.errors';
import type { JsonObject, RecordValidator, StoredRecord } from './record.types';
import { matchesVersion, type VersionCondition } from './record-version';
import type { TableData } from './persistence/snapshot';
import { Table, type IndexInfo } from './table';
import { Versions } from './versions';

export interface TableInfo {
  readonly name: string;
  readonly records: number;
  readonly indexes: readonly IndexInfo[];
}

export interface StorageStats {
  readonly tables: number;
  readonly records: number;
}

/**
 * A log entry that cannot be applied at all: a command this server does not know (a newer
 * format), or a bug. The process stops on it; an entry is never skipped, or the servers that
 * applied it and those that did not would differ from then on.
 */
export class UnappliableEntryError extends Error {
  constructor(
    readonly seq: number,
    reason: string,
  ) {
    super(`log entry ${seq} cannot be applied: ${reason}`);
    this.name = 'UnappliableEntryError';
  }
}

/**
 * The database's state (tables, indexes, record versions) and the one way to change it:
 * `apply(seq, command)`, one entry at a time in log order. It reads no clock and no random
 * source, so the same entries give the same state and the same outcomes on any server. Every
 * outcome that depends on state (404, 409, 412, a merged PATCH breaking a typed table's schema)
 * is decided here; a command that fails changes nothing but still takes its sequence number.
 */
export class StateMachine {
  private readonly tables = new Map<string, Table>();
  /** Every entry up to this one is applied (a high-water mark). */
  private applied: number;

  constructor(
    private readonly schemas: ReadonlyMap<string, RecordValidator>,
    readonly versions: Versions,
    private readonly lockTimeoutMs: number,
    startSeq = 0,
  ) {
    this.applied = startSeq;
  }

  get appliedSeq(): number {
    return this.applied;
  }

  /** The validator of a typed table's records, if `table` is one. */
  schemaOf(table: string): RecordValidator | undefined {
    return this.schemas.get(table);
  }

  /**
   * Applies one log entry. @returns its outcome (a failure is an outcome, not an exception)
   * @throws UnappliableEntryError for an entry out of order, of an unknown format, or one
   *   that fails other than by a state-dependent DatabaseError (a bug): stop the process
   */
  apply(seq: number, command: Command): Outcome {
    if (!(seq > this.applied)) {
      throw new UnappliableEntryError(
        seq,
        `entries must be applied in order (${this.applied} is applied)`,
      );
    }
    const problem = commandProblem(command);
    if (problem !== undefined) throw new UnappliableEntryError(seq, problem);
    let outcome: Outcome;
    try {
      outcome = { ok: true, value: this.run(seq, command) };
    } catch (error) {
      if (!(error instanceof DatabaseError)) {
        throw new UnappliableEntryError(
          seq,
          error instanceof Error ? error.message : String(error),
        );
      }
      outcome = { ok: false, error };
    }
    this.applied = seq;
    return outcome;
  }

  /** Moves past a sequence number that was given out but never logged (a failed write). */
  skip(seq: number): void {
    if (seq > this.applied) this.applied = seq;
  }

  private run(seq: number, command: Command): unknown {
    switch (command.op) {
      case 'barrier':
      case 'answer':
        return undefined;
      case 'insert': {
        const table = this.tableForWrite(command.table);
        try {
          table.prepareInsert(command.records, command.bulk)();
          table.materialise(seq);
        } finally {
          this.forgetIfUnused(table);
        }
        return command.records;
      }
      case 'put': {
        const table = this.tableForWrite(command.table);
        table.restore(command.records);
        table.materialise(seq);
        return command.records;
      }
      case 'replace':
      case 'patch': {
        const table = this.existing(command.table);
        checkConditions(table, command.id, command.ifMatch);
        const current = table.getOrThrow(command.id);
        let fields: JsonObject;
        if (command.op === 'replace') {
          fields = command.fields;
        } else {
          fields = applyMergePatch(splitServerFields(current).fields, command.patch) as JsonObject;
          this.validate(command.table, fields);
        }
        const record: StoredRecord = {
          id: command.id,
          ...fields,
          created_at: current.created_at,
          updated_at: nextTimestamp(current.updated_at, command.at),
        };
        table.prepareReplace(record)();
        return record;
      }
      case 'delete': {
        const table = this.existing(command.table);
        checkConditions(table, command.id, command.ifMatch);
        table.prepareDelete(command.id)();
        return undefined;
      }
      case 'createTable': {
        const table = this.tableForWrite(command.table);
        if (table.exists) throw new TableExistsError(command.table);
        table.materialise(seq);
        return infoOf(table);
      }
      case 'dropTable': {
        this.remove(this.existing(command.table));
        return undefined;
      }
      case 'createIndex': {
        const table = this.existing(command.table);
        return table.prepareIndex(command.field, fieldPathOf(command.field), command.unique)();
      }
      case 'dropIndex': {
        this.existing(command.table).prepareDropIndex(command.field)();
        return undefined;
      }
      case 'restore': {
        // Checked by the replica that logged it; built the same way everywhere.
        const built = this.build(command.tables);
        this.swap(built, seq);
        return this.stats();
      }
    }
  }

  // --- reads ---

  /** The table if it exists. */
  table(name: string): Table | undefined {
    const table = this.tables.get(name);
    return table?.exists === true ? table : undefined;
  }

  /** @throws TableNotFoundError */
  existing(name: string): Table {
    const table = this.table(name);
    if (table === undefined) throw new TableNotFoundError(name);
    return table;
  }

  /** The table a write to `name` goes to: a new, not yet visible one if there is none. */
  tableForWrite(name: string): Table {
    let table = this.tables.get(name);
    if (table === undefined) {
      table = new Table(name, this.lockTimeoutMs, this.versions);
      this.tables.set(name, table);
    }
    return table;
  }

  /** Forgets a table that no write made visible and none waits for (a failed first write). */
  forgetIfUnused(table: Table): void {
    if (!table.exists && !table.isLocked && this.tables.get(table.name) === table)
      this.tables.delete(table.name);
  }

  list(): TableInfo[] {
    return [...this.tables.values()]
      .filter((table) => table.exists)
      .map(infoOf)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
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

  /** The tables as they are now (a consistent copy when no write is in flight). */
  copyTables(): TableData[] {
    return [...this.tables.values()].filter((table) => table.exists).map(dataOf);
  }

  // --- recovery ---

  /** Replaces all state with a snapshot's, taken when entry `seq` was applied. */
  load(data: readonly TableData[], seq: number): void {
    for (const table of this.tables.values()) table.dropped = true;
    this.tables.clear();
    for (const { name, indexes, records, created, ords, next } of data) {
      const table = new Table(name, this.lockTimeoutMs, this.versions);
      for (const { field, unique } of indexes)
        table.createIndex(field, parseFieldPath(field, 'field'), unique);
      table.load(records, ords, next);
      table.materialise(created ?? 0);
      this.tables.set(name, table);
    }
    this.applied = seq;
  }

  /**
   * Builds tables from snapshot data (a backup being restored), checking everything a write
   * would: names, ids (present, well formed, unique), typed tables' schemas and unique indexes.
   * Nothing live changes. @throws InvalidNameError, RecordValidationError, DuplicateRecordError,
   * UniqueViolationError, IndexExistsError
   */
  build(data: readonly Pick<TableData, 'name' | 'indexes' | 'records'>[]): Map<string, Table> {
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

  /**
   * Puts built tables in place of all current ones, as entry `seq` (a restore; call with no
   * write in flight): every table is new, so cursors of the old ones are refused.
   */
  swap(tables: ReadonlyMap<string, Table>, seq: number): void {
    for (const table of this.tables.values()) table.dropped = true;
    this.tables.clear();
    for (const [name, table] of tables) {
      table.materialise(seq);
      this.tables.set(name, table);
    }
    this.skip(seq);
  }

  private remove(table: Table): void {
    table.dropped = true;
    if (this.tables.get(table.name) === table) this.tables.delete(table.name);
  }

  private validate(table: string, fields: JsonObject): void {
    const validator = this.schemas.get(table);
    if (validator === undefined) return;
    const errors = validator(fields);
    if (errors.length > 0) throw new RecordValidationError(table, errors);
  }
}

/** A table as snapshots hold it: its indexes, its records' references in order, their order numbers. */
export function dataOf(table: Table): TableData {
  const { records, ords, next } = table.dump();
  return {
    name: table.name,
    indexes: table.listIndexes(),
    records,
    created: table.created,
    ords,
    next,
  };
}

export function infoOf(table: Table): TableInfo {
  return { name: table.name, records: table.size, indexes: table.listIndexes() };
}

/** @throws InvalidNameError for a field that is not a dot path */
export function fieldPathOf(field: string): FieldPath {
  try {
    return parseFieldPath(field, 'field');
  } catch (error) {
    if (error instanceof QueryError) throw new InvalidNameError('field', field, FIELD_PATH_RULE);
    throw error;
  }
}

export function splitServerFields(body: Readonly<JsonObject>): { id: unknown; fields: JsonObject } {
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  const { id, created_at, updated_at, ...fields } = body;
  return { id, fields };
}

function checkConditions(table: Table, id: string, ifMatch: VersionCondition | undefined): void {
  if (ifMatch !== undefined && !matchesVersion(table.get(id), ifMatch)) {
    throw new PreconditionFailedError(table.name, id);
  }
}

/**
 * A record's next updated_at: the command's time, but always later than `previous`, so every
 * update visibly renews it (max(command time, previous + 1 ms)), on every server alike.
 */
function nextTimestamp(previous: string, at: string): string {
  return new Date(Math.max(Date.parse(at), Date.parse(previous) + 1)).toISOString();
}

/** An ISO 8601 date-time, as memdb writes them (`2026-11-25T20:00:00.000Z`). */
function isTimestamp(value: unknown): boolean {
  return (
    typeof value === 'string' &&
    /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(value) &&
    !Number.isNaN(Date.parse(value))
  );
}
