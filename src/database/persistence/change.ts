import type { LogEntry } from '../commands';
import type { KeptAnswerEntry } from './kept-answers';
import type { StoredRecord } from '../record.types';

/**
 * One logged write in journals written before commands (memdb 0.1): the stored records
 * themselves, not the request. Still read at start; new entries are commands (LogEntry).
 */
export type Change =
  | { readonly op: 'put'; readonly table: string; readonly records: readonly StoredRecord[] }
  | { readonly op: 'delete'; readonly table: string; readonly id: string }
  | { readonly op: 'createTable'; readonly table: string }
  | { readonly op: 'dropTable'; readonly table: string }
  | {
      readonly op: 'createIndex';
      readonly table: string;
      readonly field: string;
      readonly unique: boolean;
    }
  | { readonly op: 'dropIndex'; readonly table: string; readonly field: string };

/**
 * The first line of a journal that continues another (compaction, restore): every sequence
 * number up to `after` was given out before it, so numbering goes on above it after a restart.
 */
export interface JournalHeader {
  readonly t: 'journal';
  readonly after: number;
}

/** Where StorageService logs its writes (the append-only file when DATA_DIR is set). */
export interface Journal {
  /**
   * Writes `entry` to the log, after every entry appended before it. Resolves once written;
   * rejects (a DatabaseError) when it cannot be, and the caller then does not apply it.
   */
  append(entry: LogEntry | JournalHeader | KeptAnswerEntry): Promise<void>;
  /** Resolves once everything appended so far is as durable as the fsync mode promises. */
  durable(): Promise<void>;
}
