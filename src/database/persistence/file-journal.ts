import { writeSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { basename } from 'node:path';
import { DiskFullError, StorageUnavailableError, type DatabaseError } from '../database.errors';
import type { Change, Journal } from './change';
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
  private syncing: Promise<void> | undefined;
  private nextSync: Promise<void> | undefined;
  private syncedSize: number;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;
  /** The old file's last sync and close, while rotate() retires it. */
  private retiring: Promise<void> | undefined;
  /** A failed write may have left part of a line that could not be cut off yet. */
  private partial = false;
  /** Why the last write or sync failed, until one succeeds (readiness reports it). */
  failure: Error | undefined;

  private constructor(
    private path: string,
    private file: JournalFile,
    private size: number,
    private readonly mode: FsyncMode,
  ) {
    this.syncedSize = size;
    if (mode === 'everysec') {
      this.timer = setInterval(() => {
        if (this.syncedSize < this.size) this.sync().catch(() => undefined);
      }, 1000);
      this.timer.unref();
    }
  }

  static async open(
    path: string,
    mode: FsyncMode,
    openFile: OpenJournalFile = openAppendFile,
  ): Promise<FileJournal> {
    const file = await openFile(path);
    const { size } = await file.stat();
    return new FileJournal(path, file, size, mode);
  }

  /** Bytes of whole entries in the file. */
  get bytes(): number {
    return this.size;
  }

  append(change: Change): Promise<void> {
    if (this.closed) {
      return Promise.reject(new StorageUnavailableError('the journal is closed (shutting down)'));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ bytes: encodeEntry(change), resolve, reject });
      // Appends made in the same turn are written together.
      this.writing ??= Promise.resolve().then(() => this.drain());
    });
  }

  async durable(): Promise<void> {
    // Bytes written to a journal being retired are synced by rotate() before it closes it.
    if (this.retiring !== undefined) await this.retiring;
    if (this.mode !== 'always' || this.syncedSize >= this.size) return;
    await this.sync();
  }

  /**
   * Waits for queued appends, syncs, and closes the file; later appends are refused. Every call
   * returns the same promise.
   */
  close(): Promise<void> {
    this.closing ??= this.closeOnce();
    return this.closing;
  }

  private async closeOnce(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    while (this.writing) await this.writing;
    try {
      if (this.syncedSize < this.size) await this.sync();
    } finally {
      await this.file.close();
    }
  }

  /**
   * Continues in a new file (compaction): what was appended so far is synced in the old one,
   * which is then closed. The caller makes sure no write is in flight.
   */
  async rotate(path: string, openFile: OpenJournalFile = openAppendFile): Promise<void> {
    while (this.writing) await this.writing;
    const next = await openFile(path);
    const { size } = await next.stat();
    // A sync running on the old file must finish before it is closed under it.
    while (this.syncing !== undefined || this.nextSync !== undefined) {
      await (this.nextSync ?? this.syncing)?.catch(() => undefined);
    }
    const previous = this.file;
    const unsynced = this.syncedSize < this.size;
    this.file = next;
    this.path = path;
    this.size = size;
    this.syncedSize = size;
    this.retiring = (async () => {
      try {
        if (unsynced) await previous.datasync();
      } catch (error) {
        this.failure = error as Error;
        throw new StorageUnavailableError(
          `the previous journal could not be synced (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
        );
      } finally {
        await previous.close();
      }
    })();
    try {
      await this.retiring;
    } finally {
      this.retiring = undefined;
    }
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      const bytes = batch.length === 1 ? batch[0].bytes : Buffer.concat(batch.map((p) => p.bytes));
      try {
        // A partial line left by a failed write must go before anything follows it.
        if (this.partial && !(await this.cutBack())) throw this.failure;
        let written = 0;
        while (written < bytes.length) {
          const rest = bytes.length - written;
          written +=
            this.file.writeSync !== undefined
              ? this.file.writeSync(bytes, written, rest)
              : (await this.file.write(bytes, written, rest)).bytesWritten;
        }
        this.size += bytes.length;
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
      ? new DiskFullError(basename(this.path))
      : new StorageUnavailableError(
          `the journal could not be written (${error.code ?? error.message})`,
        );
  }

  /** Truncates the file to its whole entries; remembers when that failed. */
  private async cutBack(): Promise<boolean> {
    try {
      await this.file.truncate(this.size);
      this.partial = false;
    } catch (error) {
      this.partial = true;
      this.failure = error as Error;
    }
    return !this.partial;
  }

  private sync(): Promise<void> {
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

  private startNext(): Promise<void> {
    this.nextSync = undefined;
    return this.sync();
  }

  private async runSync(): Promise<void> {
    const target = this.size;
    try {
      await this.file.datasync();
      this.syncedSize = Math.max(this.syncedSize, target);
    } catch (error) {
      this.failure = error as Error;
      throw new StorageUnavailableError(
        `the journal could not be synced to disk (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
      );
    } finally {
      this.syncing = undefined;
    }
  }
}
