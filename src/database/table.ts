import { Mutex, MutexInterface, withTimeout } from 'async-mutex';
import { DuplicateRecordError, LockTimeoutError, RecordNotFoundError } from './database.errors';
import type { StoredRecord } from './record.types';

/**
 * One table: records by id in insertion order, and the lock that serialises its writes.
 * Reads take no lock: a write replaces whole records, so a reader sees a record before or
 * after a write, never half of one.
 */
export class Table {
  private readonly records = new Map<string, StoredRecord>();
  private readonly lock: MutexInterface;
  /** False until the first record is committed: a table comes into being with its first record. */
  private materialised = false;

  constructor(
    readonly name: string,
    lockTimeoutMs: number,
  ) {
    this.lock = withTimeout(new Mutex(), lockTimeoutMs, new LockTimeoutError(name, lockTimeoutMs));
  }

  get exists(): boolean {
    return this.materialised;
  }

  get size(): number {
    return this.records.size;
  }

  get isLocked(): boolean {
    return this.lock.isLocked();
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

  /** @throws DuplicateRecordError when the id is taken. */
  insert(record: StoredRecord): void {
    if (this.records.has(record.id)) throw new DuplicateRecordError(this.name, record.id);
    this.records.set(record.id, record);
    this.materialised = true;
  }

  /** Replaces an existing record, keeping its position. */
  replace(record: StoredRecord): void {
    this.records.set(record.id, record);
  }

  /** @throws RecordNotFoundError */
  delete(id: string): void {
    if (!this.records.delete(id)) throw new RecordNotFoundError(this.name, id);
  }

  values(): IterableIterator<StoredRecord> {
    return this.records.values();
  }

  /** Records `offset` to `offset + limit` in insertion order. */
  page(offset: number, limit: number): StoredRecord[] {
    const out: StoredRecord[] = [];
    if (limit <= 0 || offset >= this.records.size) return out;
    let index = 0;
    for (const record of this.records.values()) {
      if (index++ < offset) continue;
      out.push(record);
      if (out.length === limit) break;
    }
    return out;
  }
}
