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
import {
  anyIn,
  keptBytesOf,
  valueAt,
  type OldVersion,
  type ReadSnapshot,
  type Slot,
  type VersionedTable,
  Versions,
} from './versions';

/** A table's parallel arrays: its slots, and each one's current value and its version. */
interface SlotArrays {
  readonly slots: readonly Slot[];
  readonly current: readonly (StoredRecord | null)[];
  readonly sinces: readonly number[];
}

/** Fewest deleted slots that make a compaction worth it. */
const COMPACT_MIN = 1024;

export interface IndexInfo {
  readonly field: string;
  readonly unique: boolean;
}

/**
 * One table: records by id in insertion order, a sequence number per record (its place in
 * that order, for keyset cursors), hash indexes, and the lock that serialises writes.
 * Reads take no lock and see one state: `view(snapshot)` reads the table as it was at the
 * snapshot's version however long the read runs, from the slots' version chains (see
 * Versions). Every write checks all its constraints before it changes anything, so a failed
 * write changes nothing.
 */
export class Table implements VersionedTable {
  /** Slots of the records that exist now, by id. */
  private readonly live = new Map<string, Slot>();
  /**
   * Every slot in sequence order, including deleted ones that an open read may still see, and
   * beside them each slot's current value and its version: a scan reads these two arrays and
   * the records, and touches a slot only when its value changed after the read began (one
   * memory access fewer per record on a cold cache).
   */
  private slots: Slot[] = [];
  private current: (StoredRecord | null)[] = [];
  private sinces: number[] = [];
  /** Slots with old values kept for open reads. */
  private readonly kept = new Set<Slot>();
  /** The sequence number of each kept old value (a record replaced or deleted since a read began). */
  private readonly keptSeqs = new Map<StoredRecord, number>();
  /** Deleted slots still in `slots`, and how many make a compaction worth it. */
  private dead = 0;
  private compactAt = COMPACT_MIN;
  private readonly indexes = new Map<string, HashIndex>();
  private readonly lock: MutexInterface;
  private nextSeq = 0;
  /** Version of the last write to this table's records. */
  private lastWrite = 0;
  /** False until created explicitly or by its first record. */
  private materialised = false;
  /** Set once the table is dropped: writers that waited for its lock must not write to it. */
  dropped = false;
  /**
   * The log sequence of the command that created this table: distinguishes it from a later
   * table of the same name (cursors name it), the same on every server that applied the log.
   */
  created = 0;

  constructor(
    readonly name: string,
    lockTimeoutMs: number,
    private readonly versions: Versions = new Versions(),
  ) {
    this.lock = withTimeout(new Mutex(), lockTimeoutMs, new LockTimeoutError(name, lockTimeoutMs));
  }

  get exists(): boolean {
    return this.materialised && !this.dropped;
  }

  get size(): number {
    return this.live.size;
  }

  get isLocked(): boolean {
    return this.lock.isLocked();
  }

  /** Makes the table visible, created by the command at `seq` (unless it already is). */
  materialise(seq: number): void {
    if (this.materialised) return;
    this.materialised = true;
    this.created = seq;
  }

  /**
   * The records in insertion order, each with its order number (its place among every record
   * ever inserted into this table, which applying the same log always gives), and the next
   * order number: what a snapshot keeps so that cursors hold across a restart.
   */
  dump(): { records: StoredRecord[]; ords: number[]; next: number } {
    const records: StoredRecord[] = [];
    const ords: number[] = [];
    for (const slot of this.slots) {
      if (slot.record === null) continue;
      records.push(slot.record);
      ords.push(slot.seq);
    }
    return { records, ords, next: this.nextSeq };
  }

  /**
   * Stores a snapshot's records with their order numbers (ascending), as dump() gave them.
   * Without them (older snapshots, restored backups) records are numbered from 0.
   */
  load(records: readonly StoredRecord[], ords?: readonly number[], next?: number): void {
    if (ords === undefined) {
      this.restore(records);
      return;
    }
    const version = this.written();
    records.forEach((record, index) => {
      this.nextSeq = ords[index];
      this.add(record, version);
    });
    this.nextSeq = Math.max(next ?? 0, this.nextSeq);
  }

  /**
   * Runs `fn` while holding this table's lock.
   * @throws LockTimeoutError when the lock is not acquired within the timeout.
   */
  withLock<T>(fn: () => T | Promise<T>): Promise<T> {
    return this.lock.runExclusive(fn);
  }

  get(id: string): StoredRecord | undefined {
    return this.live.get(id)?.record ?? undefined;
  }

  /** @throws RecordNotFoundError */
  getOrThrow(id: string): StoredRecord {
    const record = this.get(id);
    if (record === undefined) throw new RecordNotFoundError(this.name, id);
    return record;
  }

  /**
   * The record with this id as of write version `version` (an open read's), or null. A record
   * deleted since is found among the kept values.
   */
  getAt(id: string, version: number): StoredRecord | null {
    const slot = this.live.get(id);
    const found = slot === undefined ? null : valueAt(slot, version);
    if (found !== null) return found;
    for (const kept of this.kept) {
      const old = valueAt(kept, version);
      if (old !== null && old.id === id) return old;
    }
    return null;
  }

  /** Position in insertion order of a record that exists now; -1 when absent. */
  seqOf(id: string): number {
    return this.live.get(id)?.seq ?? -1;
  }

  /** The records as they are now, in insertion order. */
  *values(): IterableIterator<StoredRecord> {
    for (const record of this.current) if (record !== null) yield record;
  }

  /**
   * The arrays a view reads: replaced (never changed in length) by a compaction, so a view keeps
   * the ones it started with. In those, a value whose version is not after the read's is the
   * read's value; any other is found in the slot's chain.
   */
  get arrays(): SlotArrays {
    return { slots: this.slots, current: this.current, sinces: this.sinces };
  }

  /** The table as of `snapshot`, for a read of any length. O(1). */
  view(snapshot: ReadSnapshot): TableView {
    return new TableView(this, snapshot, this.arrays, this.live.size);
  }

  /** Whether no write has changed a record since `snapshot` (what is live is what it sees). */
  unchangedSince(snapshot: ReadSnapshot): boolean {
    return this.lastWrite <= snapshot.version;
  }

  /**
   * The sequence number of a record that is or was in this table (a snapshot's); -1 when it is
   * neither current nor among the old values kept for open reads.
   */
  seqHolding(record: StoredRecord): number {
    const slot = this.live.get(record.id);
    if (slot !== undefined && slot.record === record) return slot.seq;
    return this.keptSeqs.get(record) ?? -1;
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
      if (this.live.has(record.id) || batchIds.has(record.id)) duplicates.push(index);
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
      const version = this.written();
      for (const record of records) this.add(record, version);
    };
  }

  /**
   * Stores records as they were logged, without checks (replaying the journal): a known id is
   * replaced in place, a new one appended.
   */
  restore(records: readonly StoredRecord[]): void {
    const version = this.written();
    for (const record of records) {
      const slot = this.live.get(record.id);
      if (slot === undefined) {
        this.add(record, version);
      } else {
        for (const index of this.indexes.values()) {
          index.remove(slot.record!);
          index.add(record);
        }
        this.supersede(slot, record, version);
      }
    }
  }

  /**
   * Checks the replacement of an existing record (it keeps its position) and returns the step
   * that makes it. @throws RecordNotFoundError, UniqueViolationError
   */
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
      this.supersede(this.live.get(record.id)!, record, this.written());
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
      const slot = this.live.get(id)!;
      this.live.delete(id);
      this.dead++;
      this.supersede(slot, null, this.written());
      if (this.dead > this.compactAt) this.compact();
    };
  }

  /** Drops old values that no read at these versions (ascending) sees; returns the bytes freed. */
  prune(open: readonly number[]): number {
    let freed = 0;
    for (const slot of this.kept) {
      // An old value is seen by reads from its `since` until the `since` of the next newer one.
      let newer: Slot | OldVersion = slot;
      let until = slot.since;
      for (let old = slot.prev; old !== undefined; old = old.prev) {
        if (anyIn(open, old.since, until)) {
          newer = old;
        } else {
          newer.prev = old.prev;
          freed += old.bytes;
          if (old.record !== null) this.keptSeqs.delete(old.record);
        }
        until = old.since;
      }
      if (slot.prev === undefined) this.kept.delete(slot);
    }
    if (this.dead > this.compactAt) this.compact();
    return freed;
  }

  private written(): number {
    this.lastWrite = this.versions.next();
    return this.lastWrite;
  }

  private add(record: StoredRecord, version: number): void {
    const pos = this.slots.length;
    const slot: Slot = { seq: this.nextSeq++, record, since: version, prev: undefined, pos };
    this.live.set(record.id, slot);
    this.slots.push(slot);
    this.current.push(record);
    this.sinces.push(version);
    for (const index of this.indexes.values()) index.add(record);
  }

  /** Gives `slot` its next value, keeping the old one while an open read can see it. */
  private supersede(slot: Slot, next: StoredRecord | null, version: number): void {
    const old = slot.record;
    let bytes = 0;
    if (old !== null && this.versions.mustKeep(slot.since)) {
      bytes = keptBytesOf(old);
      slot.prev = { record: old, since: slot.since, bytes, prev: slot.prev };
      this.kept.add(slot);
      this.keptSeqs.set(old, slot.seq);
    }
    slot.record = next;
    slot.since = version;
    this.current[slot.pos] = next;
    this.sinces[slot.pos] = version;
    if (bytes > 0) this.versions.keep(this, bytes);
  }

  /**
   * Removes deleted slots that no open read can see, those with no old value left (a new
   * array: reads in progress keep the one they started on). Runs once deletions since the last
   * one reach half the table, so its cost is O(1) per deletion, amortised.
   */
  private compact(): void {
    const slots: Slot[] = [];
    const current: (StoredRecord | null)[] = [];
    const sinces: number[] = [];
    let dead = 0;
    for (const slot of this.slots) {
      if (slot.record === null) {
        if (slot.prev === undefined) continue;
        dead++;
      }
      slot.pos = slots.length;
      slots.push(slot);
      current.push(slot.record);
      sinces.push(slot.since);
    }
    this.slots = slots;
    this.current = current;
    this.sinces = sinces;
    this.dead = dead;
    this.compactAt = dead + Math.max(COMPACT_MIN, this.live.size >>> 1);
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
    for (const record of this.values()) {
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

/**
 * A table as one read sees it: the records of its snapshot, in insertion order, however the
 * table changes meanwhile. Iterating it checks that the read has not been ended.
 */
export class TableView implements Iterable<StoredRecord> {
  private readonly length: number;

  constructor(
    readonly table: Table,
    readonly snapshot: ReadSnapshot,
    private readonly arrays: SlotArrays,
    /** Records in the snapshot. */
    readonly size: number,
  ) {
    this.length = arrays.slots.length;
  }

  [Symbol.iterator](): Iterator<StoredRecord> {
    return new SlotScan(this.arrays, this.length, this.snapshot);
  }

  /** The records of the snapshot, in insertion order (a join's relation). */
  values(): Iterable<StoredRecord> {
    return this;
  }

  /** The record with this id in the snapshot, if any. @throws SnapshotTooOldError */
  get(id: string): StoredRecord | undefined {
    this.snapshot.check();
    return this.table.getAt(id, this.snapshot.version) ?? undefined;
  }

  /** Whether the table's records are as the snapshot sees them (live lookups are exact). */
  get unchanged(): boolean {
    return this.table.unchangedSince(this.snapshot);
  }

  /** The sequence number of a record of this snapshot (its cursor key). @throws SnapshotTooOldError */
  seqOf(record: StoredRecord): number {
    this.snapshot.check();
    return this.table.seqHolding(record);
  }
}

/**
 * Iterates a snapshot's slots: one comparison per unchanged record, a walk down the version
 * chain for the few changed since. The result object is reused (for-of reads it at once).
 */
class SlotScan implements Iterator<StoredRecord> {
  private position = 0;
  private readonly result = { done: false, value: undefined } as {
    done: boolean;
    value: StoredRecord | undefined;
  };
  private readonly version: number;
  private readonly slots: readonly Slot[];
  private readonly current: readonly (StoredRecord | null)[];
  private readonly sinces: readonly number[];

  constructor(
    { slots, current, sinces }: SlotArrays,
    private readonly length: number,
    private readonly snapshot: ReadSnapshot,
  ) {
    this.version = snapshot.version;
    this.slots = slots;
    this.current = current;
    this.sinces = sinces;
  }

  next(): IteratorResult<StoredRecord> {
    if (this.snapshot.ended !== undefined) throw this.snapshot.ended;
    const { current, sinces, length, version, result } = this;
    while (this.position < length) {
      const at = this.position++;
      const record = sinces[at] <= version ? current[at] : valueAt(this.slots[at], version);
      if (record !== null) {
        result.value = record;
        return result as IteratorResult<StoredRecord>;
      }
    }
    result.done = true;
    result.value = undefined;
    return result as IteratorResult<StoredRecord>;
  }
}
