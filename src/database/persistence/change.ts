import type { StoredRecord } from '../record.types';

/**
 * One logged write, as it is applied: the stored records themselves (with their ids and
 * timestamps), not the request, so replaying the log rebuilds exactly what was acknowledged.
 * A bulk write is one `put`: all of it or none on replay.
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

/** Where StorageService logs its writes (the append-only file when DATA_DIR is set). */
export interface Journal {
  /**
   * Writes `change` to the log, after every change appended before it. Resolves once written;
   * rejects (a DatabaseError) when it cannot be, and the caller then does not apply it.
   */
  append(change: Change): Promise<void>;
  /** Resolves once everything appended so far is as durable as the fsync mode promises. */
  durable(): Promise<void>;
}
