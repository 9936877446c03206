import { Logger } from '@nestjs/common';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseCore } from '../database-core';
import type { DatabaseModuleOptions } from '../database.module-definition';
import { StorageService } from '../storage.service';
import { openAppendFile, type OpenJournalFile } from './file-journal';
import { PersistenceService } from './persistence.service';

/** A promise and the function that resolves it. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('PersistenceService', () => {
  let dir: string;

  beforeAll(() => Logger.overrideLogger(false));
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'memdb-persistence-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  describe('onApplicationShutdown', () => {
    it('answers a second call with the first one, which resolves after the last sync and close', async () => {
      const events: string[] = [];
      const closing = deferred();
      const closeStarted = deferred();
      const openJournalFile: OpenJournalFile = async (path) => {
        const file = await openAppendFile(path);
        return {
          ...file,
          datasync: async () => {
            await file.datasync();
            events.push('synced');
          },
          close: async () => {
            closeStarted.resolve();
            await closing.promise;
            await file.close();
            events.push('closed');
          },
        };
      };
      const options: DatabaseModuleOptions = {
        lockTimeoutMs: 1000,
        persistence: {
          dataDir: dir,
          fsync: 'no',
          repair: false,
          compactRatio: 2,
          compactMinBytes: 1 << 20,
          openJournalFile,
        },
      };
      const core = new DatabaseCore(options);
      const storage = new StorageService(core);
      const persistence = new PersistenceService(core, options);
      persistence.onModuleInit();
      await persistence.start();
      await storage.create('items', { id: 'a' });

      const first = persistence.onApplicationShutdown();
      await closeStarted.promise;
      const second = persistence.onApplicationShutdown();
      void second.then(() => events.push('second returned'));
      await new Promise((resolve) => setImmediate(resolve));
      const beforeClose = [...events];
      closing.resolve();
      await second;

      expect(beforeClose).toEqual(['synced']);
      expect(events).toEqual(['synced', 'closed', 'second returned']);
      expect(second).toBe(first);
    });
  });
});
