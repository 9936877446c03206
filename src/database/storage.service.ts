import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { RecordValidationError, TableNotFoundError, type FieldError } from './database.errors';
import { DATABASE_OPTIONS, type DatabaseModuleOptions } from './database.module-definition';
import { hashJoin, type JoinRow, type JoinType } from './hash-join';
import { applyMergePatch } from './merge-patch';
import { RECORD_ID_PATTERN, RECORD_ID_RULE, assertTableName } from './names';
import type { JsonObject, RecordValidator, StoredRecord } from './record.types';
import { Table } from './table';

export interface Page {
  readonly limit: number;
  readonly offset: number;
}

export interface ListResult {
  readonly items: readonly StoredRecord[];
  /** Records in the table. */
  readonly total: number;
}

export interface JoinRequest extends Page {
  readonly left: string;
  readonly right: string;
  readonly leftKey: string;
  readonly rightKey: string;
  readonly type: JoinType;
}

export interface StorageStats {
  readonly tables: number;
  readonly records: number;
}

const DEFAULT_LOCK_TIMEOUT_MS = 5000;

/**
 * The in-memory database: tables by name, each a Map of records by id. Every write runs under
 * its table's lock; reads take none. Records are stored as new objects and never mutated.
 */
@Injectable()
export class StorageService {
  private readonly tables = new Map<string, Table>();
  private readonly schemas: ReadonlyMap<string, RecordValidator>;
  private readonly lockTimeoutMs: number;

  constructor(@Inject(DATABASE_OPTIONS) options: DatabaseModuleOptions) {
    this.lockTimeoutMs = options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
    // A Map, not the options object: table names such as `constructor` must not hit a prototype.
    this.schemas = new Map(Object.entries(options.schemas ?? {}));
  }

  /** True once the store can serve; later, once persisted data has loaded. */
  get ready(): boolean {
    return true;
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

  /** @throws TableNotFoundError, RecordNotFoundError */
  get(table: string, id: string): StoredRecord {
    return this.existingTable(table).getOrThrow(id);
  }

  /** @throws TableNotFoundError */
  list(table: string, { limit, offset }: Page): ListResult {
    const found = this.existingTable(table);
    return { items: found.page(offset, limit), total: found.size };
  }

  /**
   * Stores a new record: the body's fields plus `id` (the body's, or a new UUID v4),
   * `created_at` and `updated_at`. Client timestamps are ignored. Creates the table if needed.
   * @throws InvalidNameError, RecordValidationError, DuplicateRecordError, LockTimeoutError
   */
  async create(table: string, body: JsonObject): Promise<StoredRecord> {
    assertTableName(table);
    const { id: givenId, fields } = splitServerFields(body);
    const id = givenId === undefined ? randomUUID() : checkId(table, givenId);
    this.validate(table, fields);
    const now = new Date().toISOString();
    const record: StoredRecord = { id, ...fields, created_at: now, updated_at: now };
    await this.withTableLock(table, (target) => target.insert(record));
    return record;
  }

  /**
   * Replaces a record's fields, keeping `id` and `created_at` and renewing `updated_at`.
   * @throws TableNotFoundError, RecordNotFoundError, RecordValidationError, LockTimeoutError
   */
  async replace(table: string, id: string, body: JsonObject): Promise<StoredRecord> {
    const { id: givenId, fields } = splitServerFields(body);
    if (givenId !== undefined) checkSameId(table, id, givenId);
    this.validate(table, fields);
    return this.update(table, id, () => fields);
  }

  /**
   * Applies an RFC 7396 merge patch to a record's fields (`null` removes a field).
   * @throws TableNotFoundError, RecordNotFoundError, RecordValidationError, LockTimeoutError
   */
  async patch(table: string, id: string, patch: JsonObject): Promise<StoredRecord> {
    const { id: givenId, fields: patchFields } = splitServerFields(patch);
    if (givenId !== undefined) checkSameId(table, id, givenId);
    return this.update(table, id, (current) => {
      const merged = applyMergePatch(splitServerFields(current).fields, patchFields) as JsonObject;
      this.validate(table, merged);
      return merged;
    });
  }

  /** @throws TableNotFoundError, RecordNotFoundError, LockTimeoutError */
  async delete(table: string, id: string): Promise<void> {
    const found = this.existingTable(table);
    await found.withLock(() => found.delete(id));
  }

  /**
   * One page of the hash join of two tables, in left order.
   * @throws TableNotFoundError
   */
  join({
    left,
    right,
    leftKey,
    rightKey,
    type,
    limit,
    offset,
  }: JoinRequest): JoinRow<StoredRecord, StoredRecord>[] {
    const leftTable = this.existingTable(left);
    const rightTable = this.existingTable(right);
    const rows: JoinRow<StoredRecord, StoredRecord>[] = [];
    if (limit <= 0) return rows;
    let skipped = 0;
    for (const row of hashJoin(leftTable, rightTable, { leftKey, rightKey, type })) {
      if (skipped < offset) {
        skipped++;
        continue;
      }
      rows.push(row);
      if (rows.length === limit) break;
    }
    return rows;
  }

  private async update(
    table: string,
    id: string,
    nextFields: (current: StoredRecord) => JsonObject,
  ): Promise<StoredRecord> {
    const found = this.existingTable(table);
    return found.withLock(() => {
      const current = found.getOrThrow(id);
      const record: StoredRecord = {
        id,
        ...nextFields(current),
        created_at: current.created_at,
        updated_at: nextTimestamp(current.updated_at),
      };
      found.replace(record);
      return record;
    });
  }

  /** Runs a write under the table's lock, creating the (not yet visible) table if needed. */
  private async withTableLock<T>(name: string, write: (table: Table) => T): Promise<T> {
    let table = this.tables.get(name);
    if (table === undefined) {
      table = new Table(name, this.lockTimeoutMs);
      this.tables.set(name, table);
    }
    const target = table;
    try {
      return await target.withLock(() => write(target));
    } finally {
      // A failed first write leaves no table behind.
      if (!target.exists && !target.isLocked && this.tables.get(name) === target) {
        this.tables.delete(name);
      }
    }
  }

  private existingTable(name: string): Table {
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

function splitServerFields(body: Readonly<JsonObject>): { id: unknown; fields: JsonObject } {
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  const { id, created_at, updated_at, ...fields } = body;
  return { id, fields };
}

function checkId(table: string, id: unknown): string {
  if (typeof id === 'string' && RECORD_ID_PATTERN.test(id)) return id;
  const error: FieldError = { field: 'id', message: `id must be a string of ${RECORD_ID_RULE}` };
  throw new RecordValidationError(table, [error]);
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
