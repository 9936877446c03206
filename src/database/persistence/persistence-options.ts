import type { FsyncMode, OpenJournalFile } from './file-journal';

/** How memdb keeps data on disk (DATA_DIR and friends); unset: memory only. */
export interface PersistenceOptions {
  readonly dataDir: string;
  readonly fsync: FsyncMode;
  /** Start despite a damaged journal, cutting it at the damage (DATA_REPAIR). */
  readonly repair: boolean;
  /** Compact once the journal is this many times the snapshot's size… */
  readonly compactRatio: number;
  /** …and at least this large. */
  readonly compactMinBytes: number;
  /** Test seam: how journal files are opened (to inject disk failures). */
  readonly openJournalFile?: OpenJournalFile;
}
