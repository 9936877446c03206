import { Logger } from '@nestjs/common';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StorageService } from '../storage.service';
import { encodeEntry } from './log-format';
import { PersistenceService } from './persistence.service';

const put = (id: string) =>
  encodeEntry({
    op: 'put',
    table: 't',
    records: [
      { id, created_at: '2020-01-01T00:00:00.000Z', updated_at: '2020-01-01T00:00:00.000Z' },
    ],
  });

describe('a crash while journal N is being retired and N+1 is already written', () => {
  let dir: string;
  beforeAll(() => Logger.overrideLogger(false));
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'memdb-rev-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('loads when N lost part of its unsynced tail but N+1 reached the disk (writeback order)', async () => {
    const a = put('a');
    const b = put('b');
    // N: 'a' synced, 'b' (unacknowledged, its retire fsync still running) torn by the crash.
    writeFileSync(join(dir, 'journal-00000001.log'), Buffer.concat([a, b.subarray(0, 30)]));
    // N+1: a write made after the switch, flushed by the kernel's writeback before N's fsync.
    writeFileSync(join(dir, 'journal-00000002.log'), put('c'));
    const storage = new StorageService({ lockTimeoutMs: 1000 });
    const persistence = new PersistenceService(storage, {
      persistence: {
        dataDir: dir,
        fsync: 'always',
        repair: false,
        compactRatio: 2,
        compactMinBytes: 1 << 30,
      },
    });
    persistence.onModuleInit();
    await expect(persistence.start()).resolves.toBeDefined();
    // N's whole entries load; what follows the cut was never acknowledged and is dropped.
    expect(storage.get('t', 'a')).toMatchObject({ id: 'a' });
    expect(() => storage.get('t', 'b')).toThrow();
    expect(() => storage.get('t', 'c')).toThrow();
    await persistence.onApplicationShutdown();
  });
});
