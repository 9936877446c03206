import { writeSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { basename } from 'node:path';
import { DiskFullError, StorageUnavailableError, type DatabaseError } from '../database.errors';
import type { LogEntry } from '../commands';
import type { Journal, JournalHeader } from './change';
import type { KeptAnswerEntry } from './kept-answers';
import { encodeEntry } from './log-format';

/** When appended entries reach the disk itself (FSYNC). */
export const FSYNC_MODES = ['always', 'everysec', 'no'] as const;
export type FsyncMode = (typeof FSYNC_MODES)[number];

/** The file operations the journal needs: a seam for tests that inject disk failures. */
export interface JournalFile {
  write(buffer: Buffer, offset: number, length: number): Promise<{ bytesWritten: number }>;
  /**
   * The same, synchronously, when the file offers it: a write to the kernel's cache takes
   * microseconds, less than a trip through the thread pool (Redis writes its AOF the same way).
   */
  writeSync?(buffer: Buffer, offset: number, length: number): number;
  datasync(): Promise<void>;
  truncate(length: number): Promise<void>;
  stat(): Promise<{ size: number }>;
  close(): Promise<void>;
}

export type OpenJournalFile = (path: string) => Promise<JournalFile>;

/** Opens for appending (O_APPEND | O_CREAT): every write lands at the end. */
export const openAppendFile: OpenJournalFile = async (path) => {
  const handle: FileHandle = await open(path, 'a');
  return {
    write: (buffer, offset, length) => handle.write(buffer, offset, length, null),
    writeSync: (buffer, offset, length) => writeSync(handle.fd, buffer, offset, length),
    datasync: () => handle.datasync(),
    truncate: (length) => handle.truncate(length),
    stat: () => handle.stat(),
    close: () => handle.close(),
  };
};

interface Pending {
  readonly bytes: Buffer;
  readonly resolve: () => void;
  readonly reject: (error: DatabaseError) => void;
}

/**
 * One journal file and how much of it is known to be on disk. Syncs belong to their file: one
 * still running on a file being retired never counts for the file that replaced it.
 */
export class JournalSegment {
  /** Bytes of whole entries in the file. */
  size: number;
  private syncedSize: number;
  private syncing: Promise<void> | undefined;
  private nextSync: Promise<void> | undefined;

  constructor(
    readonly path: string,
    readonly file: JournalFile,
    size: number,
  ) {
    this.size = size;
    this.syncedSize = size;
  }

  get unsynced(): boolean {
    return this.syncedSize < this.size;
  }

  /** Syncs what was written so far; concurrent callers share a datasync. @throws its error */
  sync(): Promise<void> {
    if (this.syncing === undefined) {
      this.syncing = this.runSync();
      return this.syncing;
    }
    // One is running, perhaps started before the caller's bytes were written: wait for the next.
    this.nextSync ??= this.syncing.then(
      () => this.startNext(),
      () => this.startNext(),
    );
    return this.nextSync;
  }

  /** Waits until no sync runs (before the file is closed under it). */
  async idle(): Promise<void> {
    while (this.syncing !== undefined || this.nextSync !== undefined) {
      await (this.nextSync ?? this.syncing)?.catch(() => undefined);
    }
  }

  private startNext(): Promise<void> {
    this.nextSync = undefined;
    return this.sync();
  }

  private async runSync(): Promise<void> {
    const target = this.size;
    try {
      await this.file.datasync();
      this.syncedSize = Math.max(this.syncedSize, target);
    } finally {
      this.syncing = undefined;
    }
  }
}

/**
 * The append-only log. Appends are queued and written in order, many per write(2) when they
 * arrive together; an append resolves once its bytes are in the file (the kernel's cache), and
 * `durable()` once they are on disk as far as the mode promises:
 * - `always`: fsync before `durable()` resolves; concurrent writers share one fsync;
 * - `everysec`: fsync once a second in the background (a power loss may lose about a second;
 *   a process crash loses nothing, the kernel has the bytes);
 * - `no`: the kernel decides.
 * A failed write is cut back off the file (no partial entry stays behind) and rejected, so
 * the caller does not apply it; the next append tries again.
 */
export class FileJournal implements Journal {
  private queue: Pending[] = [];
  private writing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;
  /**
   * The files switched away from, synced and closed in the background, the latest last: its
   * entries precede the current file's, so they reach the disk first.
   */
  private retiring: Promise<void> | undefined;
  /** A file switched away from could not be synced: nothing after it is durable. */
  private retireFailure: StorageUnavailableError | undefined;
  /** A failed write may have left part of a line that could not be cut off yet. */
  private partial = false;
  /** Why the last write or sync failed, until one succeeds (readiness reports it). */
  failure: Error | undefined;

  private constructor(
    private current: JournalSegment,
    private readonly mode: FsyncMode,
  ) {
    if (mode === 'everysec') {
      this.timer = setInterval(() => {
        if (this.current.unsynced) this.sync().catch(() => undefined);
      }, 1000);
      this.timer.unref();
    }
  }

  static async open(
    path: string,
    mode: FsyncMode,
    openFile: OpenJournalFile = openAppendFile,
  ): Promise<FileJournal> {
    return new FileJournal(await FileJournal.openSegment(path, openFile), mode);
  }

  /**
   * Opens (creating it if needed) a file to continue the journal in, for `switchTo`: the I/O
   * of a switch, done while writes still go to the current file.
   */
  static async openSegment(
    path: string,
    openFile: OpenJournalFile = openAppendFile,
  ): Promise<JournalSegment> {
    const file = await openFile(path);
    try {
      const { size } = await file.stat();
      return new JournalSegment(path, file, size);
    } catch (error) {
      await file.close().catch(() => undefined);
      throw error;
    }
  }

  /** Whether appends are being written (switchTo must wait: see settled). */
  get busy(): boolean {
    return this.writing !== undefined;
  }

  /** Resolves once the appends being written are (appends that need no gate, such as kept answers). */
  async settled(): Promise<void> {
    while (this.writing !== undefined) await this.writing;
  }

  /** Bytes of whole entries in the current file. */
  get bytes(): number {
    return this.current.size;
  }

  append(entry: LogEntry | JournalHeader | KeptAnswerEntry): Promise<void> {
    if (this.closed) {
      return Promise.reject(new StorageUnavailableError('the journal is closed (shutting down)'));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ bytes: encodeEntry(entry), resolve, reject });
      // Appends made in the same turn are written together.
      this.writing ??= Promise.resolve().then(() => this.drain());
    });
  }

  async durable(): Promise<void> {
    if (this.mode !== 'always') return;
    await this.sync();
  }

  /** Puts what was written so far on disk now, whatever the mode. @throws when the sync fails */
  flush(): Promise<void> {
    return this.sync();
  }

  /**
   * Waits for queued appends and retired files, syncs and closes the file; later appends are
   * refused. Every call returns the same promise.
   * @throws StorageUnavailableError when a sync failed (the file is closed anyway)
   */
  close(): Promise<void> {
    this.closing ??= this.closeOnce();
    return this.closing;
  }

  private async closeOnce(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    while (this.writing) await this.writing;
    let failed: unknown;
    await this.retired().catch((error: unknown) => (failed = error));
    try {
      if (this.current.unsynced) await this.sync();
    } finally {
      await this.current.idle();
      await this.current.file.close();
    }
    if (failed !== undefined) throw failed;
  }

  /**
   * Continues the journal in `next` (compaction, restore). No I/O: call it with no append in
   * flight (writes held), and it switches at once. The previous file is then retired in the
   * background: a partial line cut off, synced, closed. `durable()` waits for that first, so
   * with FSYNC=always an entry still goes unacknowledged until its own file is synced.
   * @returns the retirement; it rejects (StorageUnavailableError) when the old file's sync failed
   */
  switchTo(next: JournalSegment): Promise<void> {
    if (this.closed) throw new StorageUnavailableError('the journal is closed (shutting down)');
    if (this.writing !== undefined) throw new Error('switchTo() with appends in flight');
    const previous = this.current;
    const partial = this.partial;
    this.current = next;
    this.partial = false;
    const retiring = this.retire(previous, partial, this.retiring);
    this.retiring = retiring;
    const settled = () => {
      if (this.retiring === retiring) this.retiring = undefined;
    };
    retiring.then(settled, settled);
    return retiring;
  }

  private async retire(
    previous: JournalSegment,
    partial: boolean,
    before: Promise<void> | undefined,
  ): Promise<void> {
    // Files are synced in order: a later one is never durable without the earlier ones.
    const earlier = await before?.then(
      () => undefined,
      (error: unknown) => error,
    );
    try {
      // A journal that is no longer the last must end in a whole entry, or it would not load.
      if (partial) await previous.file.truncate(previous.size);
      await previous.idle();
      if (previous.unsynced) await previous.sync();
    } catch (error) {
      this.failure = error as Error;
      // Until a snapshot covers that file, no later entry may be acknowledged as durable: it
      // would survive a crash that lost the entries before it.
      this.retireFailure = new StorageUnavailableError(
        `the previous journal could not be synced (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
      );
      throw this.retireFailure;
    } finally {
      await previous.file.close();
    }
    if (earlier !== undefined) throw earlier;
  }

  /**
   * Once a snapshot holds everything logged before the current file (compaction, restore): waits
   * for the files switched away from to be retired, and forgets a failure to sync them.
   */
  async coveredBySnapshot(): Promise<void> {
    await this.retired().catch(() => undefined);
    this.retireFailure = undefined;
  }

  /** Until every file switched away from is synced and closed. @throws if one failed */
  private async retired(): Promise<void> {
    while (this.retiring !== undefined) await this.retiring;
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      const bytes = batch.length === 1 ? batch[0].bytes : Buffer.concat(batch.map((p) => p.bytes));
      const segment = this.current;
      try {
        // A partial line left by a failed write must go before anything follows it.
        if (this.partial && !(await this.cutBack())) throw this.failure;
        let written = 0;
        while (written < bytes.length) {
          const rest = bytes.length - written;
          written +=
            segment.file.writeSync !== undefined
              ? segment.file.writeSync(bytes, written, rest)
              : (await segment.file.write(bytes, written, rest)).bytesWritten;
        }
        segment.size += bytes.length;
        this.failure = undefined;
        for (const pending of batch) pending.resolve();
      } catch (error) {
        const problem = await this.undo(error as NodeJS.ErrnoException);
        for (const pending of batch) pending.reject(problem);
      }
    }
    this.writing = undefined;
  }

  /** Cuts a failed write's partial bytes off the file, so the next entry starts clean. */
  private async undo(error: NodeJS.ErrnoException): Promise<DatabaseError> {
    this.failure = error;
    await this.cutBack();
    return error.code === 'ENOSPC'
      ? new DiskFullError(basename(this.current.path))
      : new StorageUnavailableError(
          `the journal could not be written (${error.code ?? error.message})`,
        );
  }

  /** Truncates the file to its whole entries; remembers when that failed. */
  private async cutBack(): Promise<boolean> {
    try {
      await this.current.file.truncate(this.current.size);
      this.partial = false;
    } catch (error) {
      this.partial = true;
      this.failure = error as Error;
    }
    return !this.partial;
  }

  /** Syncs the current file, once the files before it are synced (their entries come first). */
  private async sync(): Promise<void> {
    if (this.retireFailure !== undefined) throw this.retireFailure;
    const segment = this.current;
    await this.retired();
    // Switched away while waiting: this file is being retired, and its retirement syncs it.
    if (segment !== this.current) {
      await this.retired();
      if (this.retireFailure !== undefined) throw this.retireFailure;
      return;
    }
    if (!segment.unsynced) return;
    try {
      await segment.sync();
    } catch (error) {
      this.failure = error as Error;
      throw new StorageUnavailableError(
        `the journal could not be synced to disk (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
      );
    }
  }
}
