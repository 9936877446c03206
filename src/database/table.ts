import { randomUUID } from 'node:crypto';
import { Mutex, type MutexInterface, withTimeout } from 'async-mutex';
import {
  DuplicateRecordError,
  IndexExistsError,
  IndexNotFoundError,
  LockTimeoutError,
  RecordNotFoundError,
  UniqueViolationError,
} from './database.errors';
import { HashIndex, type Scalar } from './hash-index';
import type { FieldPath } from './query/field-path';
import type { StoredRecord } from './record.types';

export interface IndexInfo {
  readonly field: string;
  readonly unique: boolean;
}

/**
 * One table: records by id in insertion order, a sequence number per record (its place in
 * that order, for keyset cursors), hash indexes, and the lock that serialises writes.
 * Reads take no lock: a write replaces whole records, so a reader sees a record before or
 * after a write, never half of one. Every write checks all its constraints before it changes
 * anything, so a failed write changes nothing.
 */
export class Table {
  private readonly records = new Map<string, StoredRecord>();
  private readonly seqs = new Map<string, number>();
  private readonly indexes = new Map<string, HashIndex>();
  private readonly lock: MutexInterface;
  private nextSeq = 0;
  /** False until created explicitly or by its first record. */
  private materialised = false;
  /** Set once the table is dropped: writers that waited for its lock must not write to it. */
  dropped = false;
  /** Distinguishes this table from a later one of the same name (cursors name it). */
  readonly epoch = randomUUID();

  constructor(
    readonly name: string,
    lockTimeoutMs: number,
  ) {
    this.lock = withTimeout(new Mutex(), lockTimeoutMs, new LockTimeoutError(name, lockTimeoutMs));
  }

  get exists(): boolean {
    return this.materialised && !this.dropped;
  }

  get size(): number {
    return this.records.size;
  }

  get isLocked(): boolean {
    return this.lock.isLocked();
  }

  /** Makes an empty table visible (explicit creation). */
  materialise(): void {
    this.materialised = true;
  }

  /**
   * Runs `fn` while holding this table's lock.
   * @throws LockTimeoutError when the lock is not acquired within the timeout.
   */
  withLock<T>(fn: () => T | Promise<T>): Promise<T> {
    return this.lock.runExclusive(fn);
  }

  get(id: string): StoredRecord | undefined {
    return this.records.get(id);
  }

  /** @throws RecordNotFoundError */
  getOrThrow(id: string): StoredRecord {
    const record = this.records.get(id);
    if (record === undefined) throw new RecordNotFoundError(this.name, id);
    return record;
  }

  /** Position in insertion order; -1 when absent. */
  seqOf(id: string): number {
    return this.seqs.get(id) ?? -1;
  }

  values(): IterableIterator<StoredRecord> {
    return this.records.values();
  }

  /** @throws DuplicateRecordError, UniqueViolationError */
  insert(record: StoredRecord): void {
    this.insertAll([record], false);
  }

  /**
   * Inserts all records or none. `bulk` makes errors name the failing record's index.
   * @throws DuplicateRecordError, UniqueViolationError
   */
  insertAll(records: readonly StoredRecord[], bulk = true): void {
    this.prepareInsert(records, bulk)();
  }

  /**
   * Checks that all records can be inserted and returns the step that inserts them, to run
   * while the lock is still held (a write is logged between the check and the change).
   * @throws DuplicateRecordError, UniqueViolationError
   */
  prepareInsert(records: readonly StoredRecord[], bulk = true): () => void {
    const batchIds = new Set<string>();
    const duplicates: number[] = [];
    records.forEach((record, index) => {
      if (this.records.has(record.id) || batchIds.has(record.id)) duplicates.push(index);
      batchIds.add(record.id);
    });
    if (duplicates.length > 0) {
      throw new DuplicateRecordError(
        this.name,
        records[duplicates[0]].id,
        bulk ? duplicates : undefined,
      );
    }
    for (const index of this.indexes.values()) {
      if (!index.unique) continue;
      const batchKeys = new Set<Scalar>();
      const clashes: number[] = [];
      records.forEach((record, position) => {
        const key = index.keyOf(record);
        if (key === undefined) return;
        if (index.lookup(key) !== undefined || batchKeys.has(key)) clashes.push(position);
        batchKeys.add(key);
      });
      if (clashes.length > 0) {
        const key = index.keyOf(records[clashes[0]]);
        throw new UniqueViolationError(this.name, index.field, key, bulk ? clashes : undefined);
      }
    }
    return () => {
      for (const record of records) this.add(record);
      this.materialised = true;
    };
  }

  private add(record: StoredRecord): void {
    this.records.set(record.id, record);
    this.seqs.set(record.id, this.nextSeq++);
    for (const index of this.indexes.values()) index.add(record);
  }

  /**
   * Stores records as they were logged, without checks (replaying the journal): a known id is
   * replaced in place, a new one appended.
   */
  restore(records: readonly StoredRecord[]): void {
    for (const record of records) {
      const previous = this.records.get(record.id);
      if (previous === undefined) {
        this.add(record);
      } else {
        for (const index of this.indexes.values()) {
          index.remove(previous);
          index.add(record);
        }
        this.records.set(record.id, record);
      }
    }
    this.materialised = true;
  }

  /**
   * Replaces an existing record, keeping its position.
   * @throws UniqueViolationError
   */
  replace(record: StoredRecord): void {
    this.prepareReplace(record)();
  }

  /** Checks a replacement and returns the step that makes it. @throws as replace */
  prepareReplace(record: StoredRecord): () => void {
    const previous = this.getOrThrow(record.id);
    for (const index of this.indexes.values()) {
      const key = index.conflict(record);
      if (key !== undefined) throw new UniqueViolationError(this.name, index.field, key);
    }
    return () => {
      for (const index of this.indexes.values()) {
        index.remove(previous);
        index.add(record);
      }
      this.records.set(record.id, record);
    };
  }

  /** @throws RecordNotFoundError */
  delete(id: string): void {
    this.prepareDelete(id)();
  }

  /** Checks a deletion and returns the step that makes it. @throws RecordNotFoundError */
  prepareDelete(id: string): () => void {
    const previous = this.getOrThrow(id);
    return () => {
      for (const index of this.indexes.values()) index.remove(previous);
      this.records.delete(id);
      this.seqs.delete(id);
    };
  }

  listIndexes(): IndexInfo[] {
    return [...this.indexes.values()].map(({ field, unique }) => ({ field, unique }));
  }

  index(field: string): HashIndex | undefined {
    return this.indexes.get(field);
  }

  /**
   * Builds and attaches an index; a unique index over duplicate values is refused whole.
   * @throws IndexExistsError, UniqueViolationError
   */
  createIndex(field: string, path: FieldPath, unique: boolean): IndexInfo {
    return this.prepareIndex(field, path, unique)();
  }

  /**
   * Builds an index over the records and returns the step that attaches it (a write between
   * the two would be missed: the caller holds the lock). @throws as createIndex
   */
  prepareIndex(field: string, path: FieldPath, unique: boolean): () => IndexInfo {
    if (this.indexes.has(field) || field === 'id') throw new IndexExistsError(this.name, field);
    const index = new HashIndex(field, path, unique);
    for (const record of this.records.values()) {
      const key = index.conflict(record);
      if (key !== undefined) throw new UniqueViolationError(this.name, field, key);
      index.add(record);
    }
    return () => {
      this.indexes.set(field, index);
      return { field, unique };
    };
  }

  /** @throws IndexNotFoundError */
  dropIndex(field: string): void {
    this.prepareDropIndex(field)();
  }

  /** @throws IndexNotFoundError */
  prepareDropIndex(field: string): () => void {
    if (!this.indexes.has(field)) throw new IndexNotFoundError(this.name, field);
    return () => {
      this.indexes.delete(field);
    };
  }
}
