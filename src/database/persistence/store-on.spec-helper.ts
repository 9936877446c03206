import { DatabaseCore } from '../database-core';
import type { DatabaseModuleOptions } from '../database.module-definition';
import { StorageService } from '../storage.service';
import type { FsyncMode, OpenJournalFile } from './file-journal';
import type { KeptAnswers } from './kept-answers';
import { PersistenceService } from './persistence.service';

/** For specs: how the store is set up. */
export interface StoreSetup {
  readonly fsync?: FsyncMode;
  readonly lockTimeoutMs?: number;
  readonly openJournalFile?: OpenJournalFile;
  readonly answers?: KeptAnswers;
}

/**
 * For specs: a store on `dir` (memory only without one), no automatic compaction, its files
 * not loaded yet (call `persistence.start()`), wired as DatabaseModule wires it.
 */
export function storeOn(
  dir: string | undefined,
  { fsync = 'always', lockTimeoutMs = 5000, openJournalFile, answers }: StoreSetup = {},
) {
  const options: DatabaseModuleOptions = {
    lockTimeoutMs,
    persistence:
      dir === undefined
        ? undefined
        : {
            dataDir: dir,
            fsync,
            repair: false,
            compactRatio: 2,
            compactMinBytes: 1 << 30,
            openJournalFile,
          },
  };
  const core = new DatabaseCore(options);
  const persistence = new PersistenceService(core, options, answers);
  persistence.onModuleInit();
  return { core, storage: new StorageService(core), persistence };
}
