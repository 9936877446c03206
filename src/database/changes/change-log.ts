import type { Command, Outcome } from '../commands';
import type { StoredRecord } from '../record.types';

/** What a change did to a record, or to a table. */
export type RecordOp = 'insert' | 'update' | 'delete';
export type TableOp = 'create_table' | 'drop_table' | 'create_index' | 'drop_index';

/** One change, as the feed sends it (`event: change` or `event: table`). */
export interface Change {
  /** `"<seq>.<i>"`: the entry's sequence and the change's index within it. */
  readonly pos: string;
  readonly seq: number;
  readonly i: number;
  readonly event: 'change' | 'table';
  readonly table: string;
  readonly op: RecordOp | TableOp;
  /** The record's id (record changes). */
  readonly id?: string;
  /** The record after the change; null for a delete (record changes). */
  readonly record?: StoredRecord | null;
  /** The record before the change, when there was one (for filters: a record leaving). */
  readonly before?: StoredRecord;
  /** The index's field (index changes). */
  readonly field?: string;
  /** The event's data as JSON (without `matches`), made once for every subscriber. */
  readonly data: string;
  /** Its SSE frame, made when first sent, then shared by every subscriber without a filter. */
  frame?: string;
}

/** Why a resume point cannot be served exactly. */
export type ResetReason = 'too_old' | 'ahead' | 'restore';

/** A position in the feed: after change `i` of entry `seq`, or after all of it (i = Infinity). */
export interface Position {
  readonly seq: number;
  readonly i: number;
}

/** What `read` gives: changes after a position, or a reset first when it cannot be exact. */
export interface ChangesRead {
  readonly reset?: { reason: ResetReason; oldest: number; continueFrom: number };
  readonly changes: Change[];
  /** Where the next read goes on from (after the last change given, or the reset point). */
  readonly next: Position;
}

interface Entry {
  readonly seq: number;
  readonly changes: readonly Change[];
  readonly bytes: number;
}

export interface ChangeLogOptions {
  /** Entries kept (CHANGES_RETAIN). */
  readonly retain: number;
  /** Bytes of kept entries, about (CHANGES_RETAIN_MB). */
  readonly retainBytes: number;
}

/** Per-change overhead counted besides its JSON (the object and its strings' headers). */
const CHANGE_OVERHEAD_BYTES = 160;

/**
 * The change feed's memory: the changes of the last CHANGES_RETAIN log entries (and at most
 * CHANGES_RETAIN_MB of them), each at its position, filled as entries are applied (the state
 * machine's outcomes: a command that changed nothing gives no change). Subscribers read from it
 * by position and are told when entries arrive; a restore or a snapshot load makes every
 * earlier position unusable (a reset).
 */
export class ChangeLog {
  private readonly entries: Entry[] = [];
  /** Index of the oldest live entry in `entries` (removed in batches, not one shift each). */
  private head = 0;
  private bytes = 0;
  /**
   * Every position at or before this is gone: trimmed, or before a restore or a snapshot load.
   * A resume point there gets a reset.
   */
  private floor: { seq: number; reason: ResetReason };
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly options: ChangeLogOptions,
    /** The log's applied sequence (entries that changed nothing move it too). */
    private readonly appliedSeq: () => number,
  ) {
    this.floor = { seq: appliedSeq(), reason: 'too_old' };
  }

  private get applied(): number {
    return this.appliedSeq();
  }

  get subscribers(): number {
    return this.listeners.size;
  }

  /** Calls `listener` (without arguments) after each entry is recorded, until unsubscribed. */
  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * The record a command is about before it is applied (replace, patch, delete), for filters
   * that must see a record leave. `lookup` reads the live state.
   */
  static subjectOf(
    command: Command,
    lookup: (table: string, id: string) => StoredRecord | undefined,
  ): StoredRecord | undefined {
    switch (command.op) {
      case 'replace':
      case 'patch':
      case 'delete':
        return lookup(command.table, command.id);
      default:
        return undefined;
    }
  }

  /** Records the changes of an applied entry (nothing for a failed command, but its seq counts). */
  record(seq: number, command: Command, outcome: Outcome, before: StoredRecord | undefined): void {
    const changes = outcome.ok ? changesOf(seq, command, outcome.value, before) : [];
    if (command.op === 'restore' && outcome.ok) {
      // Nothing before a restore can be resumed exactly: the data was replaced.
      this.clear(seq, 'restore');
    } else if (changes.length > 0) {
      let bytes = 0;
      for (const change of changes) bytes += change.data.length + CHANGE_OVERHEAD_BYTES;
      this.entries.push({ seq, changes, bytes });
      this.bytes += bytes;
      this.trim();
    }
    this.notify();
  }

  /** Moves past `seq` with every earlier position gone (a restore's swap, a snapshot load). */
  reset(seq: number, reason: ResetReason): void {
    this.clear(seq, reason);
    this.notify();
  }

  /**
   * Up to `limit` changes after `from`, in order, that pass `accept`. A `from` older than what
   * is kept, before a restore, or ahead of the log gives a reset first, and the changes from
   * where the feed goes on. `next` is where the following read goes on from.
   */
  read(
    from: Position,
    limit: number,
    accept: (change: Change) => boolean = () => true,
  ): ChangesRead {
    let reset: ChangesRead['reset'];
    let after = from;
    const floor = this.floor;
    if (from.seq > this.applied) {
      reset = { reason: 'ahead', oldest: floor.seq, continueFrom: this.applied };
      after = { seq: this.applied, i: Infinity };
    } else if (from.seq < floor.seq || (from.seq === floor.seq && from.i !== Infinity)) {
      reset = { reason: floor.reason, oldest: floor.seq, continueFrom: floor.seq };
      after = { seq: floor.seq, i: Infinity };
    }
    const changes: Change[] = [];
    let next: Position = after;
    for (let k = this.firstFrom(after.seq); k < this.entries.length; k++) {
      const entry = this.entries[k];
      for (const change of entry.changes) {
        if (entry.seq === after.seq && change.i <= after.i) continue;
        if (changes.length >= limit) return { reset, changes, next };
        next = { seq: entry.seq, i: change.i };
        if (accept(change)) changes.push(change);
      }
      next = { seq: entry.seq, i: Infinity };
    }
    // Every kept entry read: entries since then changed nothing.
    if (this.applied > next.seq) next = { seq: this.applied, i: Infinity };
    return { reset, changes, next };
  }

  /** The oldest position a feed can start from exactly (since=0). */
  get oldest(): Position {
    return { seq: this.floor.seq, i: Infinity };
  }

  /** Index of the first kept entry whose sequence is `seq` or later. */
  private firstFrom(seq: number): number {
    let low = this.head;
    let high = this.entries.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.entries[middle].seq < seq) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  private trim(): void {
    const { retain, retainBytes } = this.options;
    while (
      this.entries.length - this.head > 0 &&
      (this.entries.length - this.head > retain || this.bytes > retainBytes)
    ) {
      const gone = this.entries[this.head++];
      this.bytes -= gone.bytes;
      this.floor = { seq: gone.seq, reason: 'too_old' };
    }
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries.splice(0, this.head);
      this.head = 0;
    }
  }

  private clear(seq: number, reason: ResetReason): void {
    this.entries.length = 0;
    this.head = 0;
    this.bytes = 0;
    this.floor = { seq, reason };
  }

  private notify(): void {
    for (const listener of this.listeners) listener();
  }
}

/** The changes an applied command made, at positions `<seq>.0`, `<seq>.1`... */
function changesOf(
  seq: number,
  command: Command,
  value: unknown,
  before: StoredRecord | undefined,
): Change[] {
  switch (command.op) {
    case 'insert':
    case 'put':
      return command.records.map((record, i) =>
        recordChange(seq, i, command.table, 'insert', record.id, record),
      );
    case 'replace':
    case 'patch':
      return [
        recordChange(seq, 0, command.table, 'update', command.id, value as StoredRecord, before),
      ];
    case 'delete':
      return [recordChange(seq, 0, command.table, 'delete', command.id, null, before)];
    case 'createTable':
      return [tableChange(seq, command.table, 'create_table')];
    case 'dropTable':
      return [tableChange(seq, command.table, 'drop_table')];
    case 'createIndex':
      return [tableChange(seq, command.table, 'create_index', command.field)];
    case 'dropIndex':
      return [tableChange(seq, command.table, 'drop_index', command.field)];
    default:
      return [];
  }
}

function recordChange(
  seq: number,
  i: number,
  table: string,
  op: RecordOp,
  id: string,
  record: StoredRecord | null,
  before?: StoredRecord,
): Change {
  const pos = `${seq}.${i}`;
  const data = JSON.stringify({ pos, seq, table, op, id, record });
  return { pos, seq, i, event: 'change', table, op, id, record, before, data };
}

function tableChange(seq: number, table: string, op: TableOp, field?: string): Change {
  const pos = `${seq}.0`;
  const data = JSON.stringify({ pos, seq, table, op, field });
  return { pos, seq, i: 0, event: 'table', table, op, field, data };
}
