import { SnapshotTooOldError } from './database.errors';
import type { StoredRecord } from './record.types';

/**
 * An older value of a slot, kept while an open read may still see it: the value the slot held
 * from version `since` until the next newer one (the slot's own, or the entry above this one).
 */
export interface OldVersion {
  readonly record: StoredRecord | null;
  readonly since: number;
  /** Estimated heap bytes of `record`, counted against SNAPSHOT_MAX_MB while kept. */
  readonly bytes: number;
  prev: OldVersion | undefined;
}

/**
 * A record's place in its table: its sequence number (insertion order, for cursors), its
 * current value (null once deleted) since write version `since`, and the older values that
 * open reads may still need, newest first. A slot never moves to another id or sequence.
 */
export interface Slot {
  readonly seq: number;
  record: StoredRecord | null;
  since: number;
  prev: OldVersion | undefined;
  /** Its index in its table's current arrays (which also hold `record` and `since`). */
  pos: number;
}

/** The value `slot` held at write version `version`; null when it did not exist then. */
export function valueAt(slot: Slot, version: number): StoredRecord | null {
  if (slot.since <= version) return slot.record;
  for (let old = slot.prev; old !== undefined; old = old.prev)
    if (old.since <= version) return old.record;
  return null;
}

/** A read's view of the data: every write up to `version`, none after. */
export class ReadSnapshot {
  /** Why the read was ended early, once it was. */
  ended: SnapshotTooOldError | undefined;
  /** Neighbours in the list of open snapshots (by version), kept by Versions. */
  older: ReadSnapshot | undefined;
  newer: ReadSnapshot | undefined;
  isOpen = true;

  constructor(readonly version: number) {}

  /** @throws SnapshotTooOldError once the read was ended to bound memory */
  check(): void {
    if (this.ended !== undefined) throw this.ended;
  }
}

/** What versions asks of a table that keeps old values: forget what no open read can see. */
export interface VersionedTable {
  /** Drops kept values that no read at these versions (ascending) sees; returns the bytes freed. */
  prune(open: readonly number[]): number;
}

/**
 * Write versions and open reads (multi-version concurrency control, for reads only). Every
 * applied write takes the next version; a read opens a snapshot of the current version in O(1)
 * and sees exactly the writes up to it, however long it runs. Writers replace values as
 * before, and keep the old value in the slot's chain only when an open snapshot can still see
 * it. Kept values count against `maxBytes`: past it, the oldest open read is ended
 * (SnapshotTooOldError) and what only it needed is dropped.
 */
export class Versions {
  private current = 0;
  /**
   * Open snapshots, a list from the oldest to the newest (versions only grow, so opening order
   * is version order): opening, closing and finding either end cost O(1) and allocate nothing.
   */
  private oldest: ReadSnapshot | undefined;
  private newest: ReadSnapshot | undefined;
  private count = 0;
  private kept = 0;
  private keptAfterPrune = 0;
  private readonly holders = new Set<VersionedTable>();

  constructor(readonly maxBytes: number = Number.POSITIVE_INFINITY) {}

  /** Estimated bytes of old values kept for open reads. */
  get keptBytes(): number {
    return this.kept;
  }

  get openReads(): number {
    return this.count;
  }

  /** A snapshot of the current state, until `close`. O(1). */
  openSnapshot(): ReadSnapshot {
    const snapshot = new ReadSnapshot(this.current);
    snapshot.older = this.newest;
    if (this.newest === undefined) this.oldest = snapshot;
    else this.newest.newer = snapshot;
    this.newest = snapshot;
    this.count++;
    return snapshot;
  }

  /** Ends a read (idempotent); what only it could see is dropped. */
  close(snapshot: ReadSnapshot): void {
    if (!snapshot.isOpen) return;
    snapshot.isOpen = false;
    const wasOldest = snapshot === this.oldest;
    if (snapshot.older === undefined) this.oldest = snapshot.newer;
    else snapshot.older.newer = snapshot.newer;
    if (snapshot.newer === undefined) this.newest = snapshot.older;
    else snapshot.newer.older = snapshot.older;
    snapshot.older = snapshot.newer = undefined;
    this.count--;
    // Values kept for this read alone are dropped when the oldest read ends (then most are), or
    // when the budget is reached: a pass over every kept value on each read's end would cost
    // more than it frees.
    if (wasOldest && this.holders.size > 0) this.prune();
  }

  /** The version of a write being applied now. */
  next(): number {
    return ++this.current;
  }

  /** Whether a value current since `since` is visible to an open snapshot, so must be kept. */
  mustKeep(since: number): boolean {
    return this.newest !== undefined && this.newest.version >= since;
  }

  /**
   * Records that `table` keeps `bytes` more of old values. Past the budget, first drops what no
   * open read needs any more (values kept for reads that closed since), then ends the oldest
   * open reads until the kept values fit.
   */
  keep(table: VersionedTable, bytes: number): void {
    this.holders.add(table);
    this.kept += bytes;
    if (this.kept <= this.maxBytes) return;
    // A full pass costs O(kept values): only when enough was kept since the last one.
    if (this.kept - this.keptAfterPrune >= this.maxBytes / 8) this.prune();
    while (this.kept > this.maxBytes && this.oldest !== undefined) {
      const oldest = this.oldest;
      oldest.ended = new SnapshotTooOldError(this.maxBytes);
      this.close(oldest);
    }
  }

  /** Drops every kept value that no open read can see. */
  private prune(): void {
    if (this.holders.size === 0) return;
    const open: number[] = [];
    for (let snapshot = this.oldest; snapshot !== undefined; snapshot = snapshot.newer)
      open.push(snapshot.version);
    for (const table of this.holders) {
      this.kept -= table.prune(open);
      if (open.length === 0) this.holders.delete(table);
    }
    this.keptAfterPrune = this.kept;
  }
}

/** Whether one of `open` (ascending) lies in [from, until). */
export function anyIn(open: readonly number[], from: number, until: number): boolean {
  let low = 0;
  let high = open.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (open[middle] < from) low = middle + 1;
    else high = middle;
  }
  return low < open.length && open[low] < until;
}

/**
 * What keeping an old value costs: the record, the chain entry and the map entry that finds
 * its sequence number.
 */
export function keptBytesOf(record: StoredRecord): number {
  return estimateBytes(record) + 80;
}

/**
 * A rough estimate of a record's heap size (strings, numbers, containers), for the snapshot
 * budget: close enough to bound memory, with no serialization and no allocation.
 */
function estimateBytes(value: unknown): number {
  switch (typeof value) {
    case 'string':
      return 16 + value.length;
    case 'number':
      return 16;
    case 'boolean':
      return 8;
    case 'object': {
      if (value === null) return 8;
      let bytes = 32;
      if (Array.isArray(value)) {
        for (const item of value) bytes += 8 + estimateBytes(item);
      } else {
        for (const key in value)
          bytes += 16 + estimateBytes((value as Record<string, unknown>)[key]);
      }
      return bytes;
    }
    default:
      return 8;
  }
}
