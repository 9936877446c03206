import {
  Inject,
  Injectable,
  Logger,
  Optional,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import { mkdir, open, readdir, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { DATABASE_OPTIONS, type DatabaseModuleOptions } from '../database.module-definition';
import { type Command, type LogEntry } from '../commands';
import { NatsLog } from '../cluster/nats-log';
import { DatabaseCore } from '../database-core';
import { dataOf, UnappliableEntryError, type StorageStats } from '../state-machine';
import type { Table } from '../table';
import type { Receipt } from '../storage.service';
import type { Change, JournalHeader } from './change';
import { isKeptAnswerEntry, KEPT_ANSWERS, type KeptAnswers } from './kept-answers';
import type { PersistenceOptions } from './persistence-options';
import { FileJournal, type JournalSegment, openAppendFile } from './file-journal';
import { DamagedFileError, readEntries, readEntriesPaced } from './log-format';
import {
  parseSnapshotData,
  snapshotLines,
  syncDirectory,
  TEMPORARY_SUFFIX,
  writeSnapshotFile,
  type TableData,
} from './snapshot';
import { Readable } from 'node:stream';
import { Mutex } from 'async-mutex';
import { DiskFullError, StorageUnavailableError } from '../database.errors';

export interface LoadReport {
  readonly tables: number;
  readonly records: number;
  readonly entries: number;
  readonly ms: number;
}

const SNAPSHOT = /^snapshot-(\d{8})\.jsonl$/;
const JOURNAL = /^journal-(\d{8})\.log$/;
const generationName = (kind: 'snapshot' | 'journal', generation: number) =>
  `${kind}-${String(generation).padStart(8, '0')}.${kind === 'snapshot' ? 'jsonl' : 'log'}`;

/** Cuts a file to `size` and syncs it, so the cut survives a power loss. */
async function truncateAndSync(path: string, size: number): Promise<void> {
  const file = await open(path, 'r+');
  try {
    await file.truncate(size);
    await file.datasync();
  } finally {
    await file.close();
  }
}

/** How many whole, valid entries follow the (damaged) line at `offset`: what a repair drops. */
function readableAfter(bytes: Buffer, offset: number): number {
  let count = 0;
  let start = bytes.indexOf(0x0a, offset);
  while (start !== -1 && start + 1 < bytes.length) {
    const end = bytes.indexOf(0x0a, start + 1);
    if (end === -1) break;
    if (readEntries(bytes.subarray(start + 1, end + 1)).entries.length === 1) count++;
    start = end;
  }
  return count;
}

/** A command as the log holds it (memdb 0.2 on). */
function isLogEntry(value: unknown): value is LogEntry {
  const entry = value as Partial<Record<string, unknown>> | null;
  return (
    typeof entry === 'object' &&
    entry !== null &&
    Number.isSafeInteger(entry.seq) &&
    typeof entry.command === 'object'
  );
}

/** The first line of a journal continued by a compaction or restore. */
function isJournalHeader(value: unknown): value is JournalHeader {
  const entry = value as Partial<Record<string, unknown>> | null;
  return (
    typeof entry === 'object' &&
    entry !== null &&
    Number.isSafeInteger(entry.after) &&
    entry.t === 'journal'
  );
}

/** The highest sequence number a journal's entries and header gave out (0 for none). */
function lastNumberIn(entries: readonly unknown[]): number {
  let last = 0;
  for (const entry of entries) {
    if (isLogEntry(entry)) last = Math.max(last, entry.seq);
    else if (isJournalHeader(entry)) last = Math.max(last, entry.after);
  }
  return last;
}

/** An entry of a journal written before commands (memdb 0.1), as the command it stands for. */
function commandOf(change: Change): Command {
  return change.op === 'put'
    ? { v: 1, op: 'put', table: change.table, records: change.records }
    : ({ v: 1, ...change } as Command);
}

/** Journal entries that are not a change memdb 0.1 wrote. */
function isChange(value: unknown): value is Change {
  const change = value as Partial<Record<string, unknown>> | null;
  if (typeof change !== 'object' || change === null || typeof change.table !== 'string')
    return false;
  switch (change.op) {
    case 'put':
      return Array.isArray(change.records);
    case 'delete':
      return typeof change.id === 'string';
    case 'createTable':
    case 'dropTable':
      return true;
    case 'createIndex':
      return typeof change.field === 'string' && typeof change.unique === 'boolean';
    case 'dropIndex':
      return typeof change.field === 'string';
    default:
      return false;
  }
}

/**
 * Keeps the store on disk when DATA_DIR is set, in the manner of Redis's AOF with RDB
 * snapshots: a snapshot (`snapshot-N.jsonl`) and the journal of every write since
 * (`journal-N.log`). At start the newest snapshot is loaded and the journals from its
 * generation on are replayed; compaction starts journal N+1, writes snapshot N+1 of that
 * instant, then removes generation N. A crash at any step leaves files that load.
 */
@Injectable()
export class PersistenceService implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('Persistence');
  private readonly options: PersistenceOptions | undefined;
  private journal: FileJournal | undefined;
  private generation = 1;
  private snapshotBytes = 0;
  private compacting: Promise<void> | undefined;
  /** One compaction or restore at a time: each picks the next generation. */
  private readonly maintenance = new Mutex();
  private timer: NodeJS.Timeout | undefined;
  /** The shutdown under way, once one has begun. */
  private stopping: Promise<void> | undefined;

  constructor(
    @Inject(DatabaseCore) private readonly core: DatabaseCore,
    @Inject(DATABASE_OPTIONS) options: DatabaseModuleOptions,
    @Optional() @Inject(KEPT_ANSWERS) private readonly answers?: KeptAnswers,
  ) {
    this.options = options.persistence;
  }

  onModuleInit(): void {
    // Not ready from the first request on, until start() has loaded the files.
    if (this.options) this.core.beginLoading('the data is still loading from DATA_DIR');
    if (this.core.log instanceof NatsLog)
      this.core.beginLoading('the replica is still applying the command stream');
  }

  /**
   * Calls `listener` if a logged entry cannot be applied while serving (only a bug can cause
   * it): the log stops there, and the process should stop too.
   */
  onLogStopped(listener: (error: Error) => void): void {
    this.core.log.onStopped = listener;
  }

  /** Shutting down: readiness fails and new reads and writes are refused (503) at once. */
  beginShutdown(): void {
    this.core.beginShutdown();
  }

  /** Why writes fail right now (disk full, I/O error), for readiness. */
  get failure(): Error | undefined {
    return this.journal?.failure;
  }

  /**
   * Loads the snapshot and replays the journals, then serves. Without DATA_DIR, does nothing.
   * @throws DamagedFileError for a damaged snapshot, or a damaged journal without DATA_REPAIR
   */
  async start(): Promise<LoadReport | undefined> {
    const log = this.core.log;
    if (log instanceof NatsLog) {
      // Cluster mode: the stream is the log; the replica serves once it has applied what the
      // stream held when it started.
      // Answers kept for Idempotency-Key travel on the stream and in its snapshots: every
      // replica keeps them all.
      const answers = this.answers;
      if (answers !== undefined) {
        log.answers = answers;
        answers.onStored = (answer: unknown) => log.publishAnswer(answer);
      }
      await log.start();
      this.core.finishLoading(undefined);
      return undefined;
    }
    const options = this.options;
    if (options === undefined) return undefined;
    const started = performance.now();
    const dir = options.dataDir;
    await mkdir(dir, { recursive: true });
    const names = await readdir(dir);
    for (const name of names.filter((n) => n.endsWith(TEMPORARY_SUFFIX))) {
      this.logger.warn(`Removing ${name}, left by an interrupted write`);
      await unlink(join(dir, name));
    }
    const generations = (pattern: RegExp) =>
      names
        .map((name) => pattern.exec(name)?.[1])
        .filter((n): n is string => n !== undefined)
        .map(Number)
        .sort((a, b) => a - b);
    const snapshots = generations(SNAPSHOT);
    const base = snapshots.at(-1) ?? 0;
    if (base > 0) {
      const file = generationName('snapshot', base);
      const bytes = await readFile(join(dir, file));
      const { tables, seq, answers } = await parseSnapshotData(bytes, file);
      this.core.machine.load(tables, seq ?? 0);
      this.core.log.continueAfter(seq ?? 0);
      if (answers !== undefined) this.answers?.import(answers);
      this.snapshotBytes = bytes.length;
    }
    const journals = generations(JOURNAL).filter((generation) => generation >= base);
    // A compaction or restore creates the next journal while writes still go to the current
    // one: a crash then leaves it empty after a journal that may end in a write cut short,
    // which is that journal's last entry as much as if it were the last file.
    const sizes = await Promise.all(
      journals.map(async (g) => (await stat(join(dir, generationName('journal', g)))).size),
    );
    const lastWritten = Math.max(
      0,
      sizes.findLastIndex((size) => size > 0),
    );
    let entries = 0;
    let cutShort: string | undefined;
    for (const [position, generation] of journals.entries()) {
      const file = generationName('journal', generation);
      if (cutShort !== undefined) {
        // Written while the journal before it was still being synced, so none of these entries
        // was acknowledged under FSYNC=always; kept, they would follow a gap.
        if (sizes[position] > 0) {
          await truncateAndSync(join(dir, file), 0);
          this.logger.warn(
            `${file}: dropped, as it follows ${cutShort}, which ended in a write cut short`,
          );
        }
        continue;
      }
      const { applied, torn } = await this.replay(generation);
      entries += applied;
      if (torn && position < lastWritten) cutShort = file;
    }
    // Older generations are superseded by the snapshot (a crash before their removal), but a
    // restore's snapshot comes before numbers given out while it ran: those are in the older
    // journal, and numbering goes on above them.
    for (const generation of generations(JOURNAL).filter((g) => g < base)) {
      const bytes = await readFile(join(dir, generationName('journal', generation)));
      this.core.log.continueAfter(lastNumberIn(readEntries(bytes).entries));
    }
    for (const generation of [...snapshots, ...generations(JOURNAL)].filter((g) => g < base)) {
      for (const kind of ['snapshot', 'journal'] as const) {
        await unlink(join(dir, generationName(kind, generation))).catch(() => undefined);
      }
    }
    this.generation = journals.at(-1) ?? Math.max(base, 1);
    this.journal = await FileJournal.open(
      join(dir, generationName('journal', this.generation)),
      options.fsync,
      options.openJournalFile ?? openAppendFile,
    );
    // A journal just created must survive a power loss as a name in the directory, too.
    await syncDirectory(dir);
    this.core.finishLoading(this.journal);
    // Answers kept for Idempotency-Key go to the journal as they are stored (they change no
    // data, and a failed write of one only means a repeat runs again after a restart).
    if (this.answers !== undefined) {
      const journal = this.journal;
      this.answers.onStored = (answer: unknown) =>
        void journal.append({ t: 'answer', answer }).catch(() => undefined);
    }
    // Shut down while loading: stop() found no journal to close.
    if (this.stopping !== undefined) {
      await this.journal.close();
      return undefined;
    }
    const { tables, records } = this.core.machine.stats();
    const report = { tables, records, entries, ms: Math.round(performance.now() - started) };
    this.logger.log(
      `Loaded ${tables} tables, ${records} records (${entries} journal entries replayed, log at ${this.core.machine.appliedSeq}) from ${dir} in ${report.ms} ms; FSYNC=${options.fsync}`,
    );
    this.timer = setInterval(() => void this.compactIfDue(), 1000);
    this.timer.unref();
    return report;
  }

  /**
   * Replays one journal; returns how many entries it applied, and whether it ended in an entry
   * cut short (cut off: the last write before a crash, never acknowledged under FSYNC=always).
   */
  private async replay(generation: number): Promise<{ applied: number; torn: boolean }> {
    const options = this.options!;
    const file = generationName('journal', generation);
    const path = join(options.dataDir, file);
    const bytes = await readFile(path);
    const read = await readEntriesPaced(bytes);
    let applied = 0;
    let damage = read.corruption;
    const log = this.core.log;
    for (const [index, entry] of read.entries.entries()) {
      if (isKeptAnswerEntry(entry)) {
        this.answers?.import([entry.answer]);
        continue;
      }
      if (isJournalHeader(entry)) {
        // Numbers given out before this journal began, whether or not an entry used them.
        this.core.machine.skip(entry.after);
        log.continueAfter(entry.after);
        continue;
      }
      let seq: number;
      let command: Command;
      if (isLogEntry(entry)) {
        ({ seq, command } = entry);
        if (seq <= this.core.machine.appliedSeq) {
          damage = { offset: read.offsets[index], reason: `entry ${seq} is out of order` };
          break;
        }
      } else if (isChange(entry)) {
        // Written before commands had numbers: numbered in the order they were written.
        seq = this.core.machine.appliedSeq + 1;
        command = commandOf(entry);
      } else {
        damage = { offset: read.offsets[index], reason: 'not a memdb log entry' };
        break;
      }
      try {
        log.replay(seq, command);
      } catch (error) {
        if (error instanceof UnappliableEntryError) {
          throw new UnappliableEntryError(
            seq,
            `${file} at byte ${read.offsets[index]}: ${error.message}`,
          );
        }
        throw error;
      }
      // Long replays give the event loop back now and then: liveness keeps answering.
      if (++applied % 5000 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    if (damage !== undefined) {
      if (!options.repair) throw new DamagedFileError(file, damage.offset, damage.reason);
      const dropped = bytes.length - damage.offset;
      const droppedEntries = read.entries.length - applied + readableAfter(bytes, damage.offset);
      await truncateAndSync(path, damage.offset);
      this.logger.warn(
        `DATA_REPAIR: cut ${file} at byte ${damage.offset} (${damage.reason}): dropped ${dropped} bytes, the damaged entry and ${droppedEntries} readable entries after it`,
      );
    } else if (read.truncatedTail !== undefined) {
      await truncateAndSync(path, read.validBytes);
      this.logger.warn(
        `${file} ended in a partial entry (${read.truncatedTail.reason}), from a write cut short: loaded without it`,
      );
      return { applied, torn: true };
    }
    return { applied, torn: false };
  }

  /**
   * Writes a snapshot of this instant and starts a fresh journal; writes continue meanwhile.
   * The receipt gets the sequence applied once it is done, as every answer under /api/v1
   * says where the log stands.
   */
  async compact(receipt?: Receipt): Promise<void> {
    this.core.assertServing();
    this.compacting ??= this.maintenance
      .runExclusive(() => this.runCompaction())
      .finally(() => (this.compacting = undefined));
    await this.compacting;
    if (receipt) receipt.seq = this.core.machine.appliedSeq;
  }

  private async compactIfDue(): Promise<void> {
    const options = this.options;
    const journal = this.journal;
    if (options === undefined || journal === undefined || this.compacting) return;
    if (this.core.notReadyReason !== undefined) return;
    const limit = Math.max(options.compactMinBytes, options.compactRatio * this.snapshotBytes);
    if (journal.bytes <= limit) return;
    await this.compact().catch((error: unknown) =>
      this.logger.error(`Compaction failed: ${String(error)}`),
    );
  }

  /*
   * Compaction and restore hold writes (the WriteGate) only to switch the journal's file
   * descriptor and take table references, or swap tables: no I/O. Why a crash at any point
   * still loads to the state before or after (start() loads the newest snapshot, then replays
   * the journals of its generation and later ones; N is the live generation):
   * - journal N+1 is created and its name fsynced before the switch: a crash leaves it empty
   *   beside journal N, which loads as before (a torn tail in N is then the last entry
   *   written, cut off as in the last journal);
   * - writes before the switch are all in journal N, those after it all in N+1 (the gate drains
   *   writes in flight first). With FSYNC=always a write is acknowledged only once its own file
   *   is fsynced, and journal N is fsynced (retired) before N+1's fsync counts, so no
   *   acknowledged write is lost and none survives without the writes before it;
   * - compaction's snapshot N+1 holds the state at the switch (all of N): it is written after
   *   the switch and renamed into place atomically, and generation N is removed only after;
   * - a restore's snapshot N+1 (the restored data, which no live write touches) is renamed into
   *   place before the switch, so the first post-restore write can only reach journal N+1
   *   once it exists: never post-restore writes on pre-restore data, and journal N (pre-restore
   *   writes) is older than the snapshot, never replayed on it. A crash between its rename and
   *   the switch loads the restored data: the restore took effect, after the writes before it.
   */

  /** Opens the next generation's journal and makes its name durable, while writes go on. */
  private async openNextJournal(): Promise<{ next: number; segment: JournalSegment }> {
    const options = this.options!;
    const next = this.generation + 1;
    const segment = await FileJournal.openSegment(
      join(options.dataDir, generationName('journal', next)),
      options.openJournalFile,
    );
    try {
      await syncDirectory(options.dataDir);
    } catch (error) {
      await segment.file.close().catch(() => undefined);
      throw error;
    }
    return { next, segment };
  }

  /**
   * With writes held for an instant, continues the journal in `segment` (the generation
   * advances then, so a later failure never makes two steps use one number) and runs `during`.
   * Returns its value, the old journal's retirement (its last fsync and close), and whether the
   * new journal's first line (where numbering stands) was written.
   */
  private async switchJournal<T>(
    next: number,
    segment: JournalSegment,
    during: () => T,
  ): Promise<{ value: T; retired: Promise<void>; numbered: boolean }> {
    let retired: Promise<void> | undefined;
    let numbered = false;
    try {
      const value = await this.core.exclusive(async () => {
        const journal = this.journal!;
        // No write is in flight, but a kept answer may be: checked and switched in one turn.
        while (journal.busy) await journal.settled();
        retired = journal.switchTo(segment);
        this.generation = next;
        const value = during();
        // The new journal says where numbering stands, even if no entry follows before a
        // restart (a write of a few bytes to the kernel's cache, done before writes resume).
        numbered = await journal.append({ t: 'journal', after: this.core.log.lastGiven }).then(
          () => true,
          () => false,
        );
        return value;
      });
      return { value, retired: retired!, numbered };
    } finally {
      if (retired === undefined) await segment.file.close().catch(() => undefined);
    }
  }

  private async runCompaction(): Promise<void> {
    // Queued behind a restore while shutdown began: the journal may be closing.
    this.core.assertServing();
    if (this.options === undefined || this.journal === undefined) return;
    const started = performance.now();
    const { next, segment } = await this.openNextJournal();
    const {
      value: copy,
      retired,
      numbered,
    } = await this.switchJournal(next, segment, () => ({
      tables: this.core.machine.copyTables(),
      seq: this.core.machine.appliedSeq,
      answers: this.answers?.export(),
    }));
    const { tables } = copy;
    // The snapshot holds everything logged before the switch, so it stands in for the old
    // journal whether or not that journal's last sync worked.
    await retired.catch(() => undefined);
    this.snapshotBytes = await writeSnapshotFile(
      join(this.options.dataDir, generationName('snapshot', next)),
      tables,
      copy.seq,
      copy.answers,
    );
    await this.journal?.coveredBySnapshot();
    await this.removeOnceNumbered(next - 1, numbered);
    this.logger.log(
      `Compacted: snapshot ${next} (${tables.length} tables, ${this.snapshotBytes} bytes) in ${Math.round(performance.now() - started)} ms`,
    );
  }

  /**
   * A consistent point-in-time snapshot of every table, in the snapshot format, read as it is
   * sent; writes are held only while table references are copied.
   */
  async backup(receipt?: Receipt): Promise<Readable> {
    this.core.assertServing();
    const { tables, seq } = await this.core.exclusive(() => ({
      tables: this.core.machine.copyTables(),
      seq: this.core.machine.appliedSeq,
    }));
    if (receipt) receipt.seq = seq;
    return Readable.from(snapshotLines(tables, seq), { objectMode: false });
  }

  /**
   * Replaces all data with a backup's, all or nothing. The data is checked and built aside
   * first (nothing live changes if it is refused); with DATA_DIR the built tables are then
   * written as the next snapshot, while writes go on; then, with writes held for an instant,
   * the journal continues in a fresh file and the built tables are swapped in.
   * @throws DatabaseError when the data breaks a rule a write would have to keep
   */
  async restore(
    data: readonly TableData[],
    receipt?: Receipt,
  ): Promise<{ tables: number; records: number }> {
    this.core.assertServing();
    const built = this.core.machine.build(data);
    if (this.core.log instanceof NatsLog) return this.restoreThroughStream(data, receipt);
    const log = this.core.log;
    await this.maintenance.runExclusive(async () => {
      this.core.assertServing();
      if (this.options === undefined || this.journal === undefined) {
        await this.core.exclusive(() => this.swapIn(built));
        return;
      }
      const dir = this.options.dataDir;
      const { next, segment } = await this.openNextJournal();
      const snapshot = generationName('snapshot', next);
      let bytes: number;
      try {
        // From the tables as built (what is served), not from the upload. The restore takes
        // its number now: its tables are created at it, in the snapshot and once swapped in
        // (their cursors hold across a restart), and the journal that follows it says where
        // numbering went on meanwhile.
        const seq = log.reserve();
        for (const table of built.values()) table.materialise(seq);
        // Answers kept for Idempotency-Key are about requests, not data: they stay.
        bytes = await writeSnapshotFile(
          join(dir, snapshot),
          [...built.values()].map(dataOf),
          seq,
          this.answers?.export(),
        );
      } catch (error) {
        await segment.file.close().catch(() => undefined);
        const code = (error as NodeJS.ErrnoException).code;
        throw code === 'ENOSPC'
          ? new DiskFullError(snapshot)
          : new StorageUnavailableError(
              `the restored data could not be saved (${code ?? String(error)})`,
            );
      }
      let retired: Promise<void>;
      let numbered: boolean;
      try {
        ({ retired, numbered } = await this.switchJournal(next, segment, () => this.swapIn(built)));
      } catch (error) {
        // Not switched, not swapped: the snapshot must not bring the refused restore back.
        await unlink(join(dir, snapshot)).then(() => syncDirectory(dir));
        throw error;
      }
      this.snapshotBytes = bytes;
      // The restore is saved; the old journal's writes are superseded, whether its sync worked.
      await retired.catch(() => undefined);
      await this.journal.coveredBySnapshot();
      await this.removeOnceNumbered(next - 1, numbered);
    });
    const { tables, records } = this.core.machine.stats();
    if (receipt) receipt.seq = this.core.machine.appliedSeq;
    this.logger.log(`Restored a backup: ${tables} tables, ${records} records`);
    return { tables, records };
  }

  /**
   * Cluster mode: the backup (checked already) goes on the stream as one command (through the
   * object store when it is larger than a message), and every replica swaps at that entry.
   */
  private async restoreThroughStream(
    data: readonly TableData[],
    receipt?: Receipt,
  ): Promise<{ tables: number; records: number }> {
    const tables = data.map(({ name, indexes, records }) => ({ name, indexes, records }));
    const { seq, outcome } = await this.core.log.submit({ v: 1, op: 'restore', tables });
    if (receipt) receipt.seq = seq;
    if (!outcome.ok) throw outcome.error;
    const stats = outcome.value as StorageStats;
    this.logger.log(`Restored a backup: ${stats.tables} tables, ${stats.records} records`);
    return stats;
  }

  /**
   * Puts restored tables in place at a sequence of their own (call within `exclusive`), and
   * wakes requests waiting for it.
   */
  private swapIn(built: ReadonlyMap<string, Table>): void {
    const seq = this.core.log.reserve();
    this.core.machine.swap(built, seq);
    this.core.log.advanceTo(seq);
  }

  /**
   * Removes the generations the new snapshot replaces, once the new journal's first line (where
   * numbering stands, past the numbers a restore gave out while it ran) is on disk: until then
   * the old journal is what tells a restart where numbering went. Kept otherwise, until the next
   * compaction; a start reads it for that alone.
   */
  private async removeOnceNumbered(from: number, numbered: boolean): Promise<void> {
    const saved =
      numbered &&
      (await this.journal!.flush().then(
        () => true,
        () => false,
      ));
    if (saved) await this.removeGenerationsFrom(from);
  }

  /** Removes generation `from` and older ones, then syncs the directory. */
  private async removeGenerationsFrom(from: number): Promise<void> {
    const dir = this.options!.dataDir;
    for (let generation = from; generation >= 1; generation--) {
      let removed = false;
      for (const kind of ['snapshot', 'journal'] as const) {
        removed =
          (await unlink(join(dir, generationName(kind, generation))).then(
            () => true,
            () => false,
          )) || removed;
      }
      if (!removed) break;
    }
    await syncDirectory(dir);
  }

  /**
   * Stops logging, then flushes, syncs and closes the journal. Every call (Nest's shutdown
   * hook, then main.ts's deadline) returns the same promise, so none resolves (and lets the
   * process exit) before the journal's last fsync.
   */
  onApplicationShutdown(): Promise<void> {
    this.stopping ??= this.stop();
    return this.stopping;
  }

  private async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    // New writes, compactions and restores are refused from now on; a write already past that
    // check reaches the closed journal, which refuses it too: nothing applied goes unlogged.
    this.core.beginShutdown();
    // A compaction or restore under way may be switching journals: it finishes first.
    await this.maintenance.waitForUnlock();
    await this.journal?.close();
    if (this.core.log instanceof NatsLog) await this.core.log.stop();
  }
}
