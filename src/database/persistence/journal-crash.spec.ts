import { Logger } from '@nestjs/common';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { openAppendFile, type OpenJournalFile } from './file-journal';
import { encodeEntry } from './log-format';
import { storeOn } from './store-on.spec-helper';

const put = (id: string) =>
  encodeEntry({
    op: 'put',
    table: 't',
    records: [
      { id, created_at: '2020-01-01T00:00:00.000Z', updated_at: '2020-01-01T00:00:00.000Z' },
    ],
  });

/** A store on `dir` with FSYNC=always and no automatic compaction, its files loading. */
function persistenceOn(dir: string, openJournalFile?: OpenJournalFile) {
  return storeOn(dir, { openJournalFile });
}

describe('FSYNC=always across journal switches', () => {
  let dir: string;
  beforeAll(() => Logger.overrideLogger(false));
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'memdb-rev-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('acknowledges a write only when its bytes and all earlier journals are synced', async () => {
    const files = new Map<string, { written: number; synced: number }>();
    const where = new Map<string, { name: string; end: number }>();
    const openJournalFile: OpenJournalFile = async (path) => {
      const file = await openAppendFile(path);
      const name = basename(path);
      const state = { written: 0, synced: 0 };
      files.set(name, state);
      return {
        ...file,
        writeSync: undefined,
        write: async (b, o, l) => {
          await new Promise((r) => setTimeout(r, 1));
          const n = file.writeSync!(b, o, l);
          const text = b.subarray(o, o + n).toString();
          let pos = 0;
          for (const line of text.split('\n')) {
            pos += line.length + 1;
            const m = /"id":"(r\d+)"/.exec(line);
            if (m) where.set(m[1], { name, end: state.written + pos });
          }
          state.written += n;
          return { bytesWritten: n };
        },
        datasync: async () => {
          const target = state.written;
          await new Promise((r) => setTimeout(r, Math.random() * 3));
          await file.datasync();
          state.synced = Math.max(state.synced, target);
        },
      };
    };
    const { storage, persistence } = persistenceOn(dir, openJournalFile);
    await persistence.start();
    const violations: string[] = [];
    let n = 0;
    for (let round = 0; round < 400; round++) {
      const writes = Array.from({ length: 1 + (round % 13) }, () => {
        const id = `r${n++}`;
        return storage.create(`t${n % 4}`, { id }).then(() => {
          const w = where.get(id)!;
          const own = files.get(w.name)!;
          if (own.synced < w.end)
            violations.push(`${id} acked, own ${w.name} synced ${own.synced} < ${w.end}`);
          for (const [name, s] of files)
            if (name < w.name && s.synced < s.written)
              violations.push(
                `${id} in ${w.name} acked; earlier ${name} synced ${s.synced}/${s.written}`,
              );
        });
      });
      const c = persistence.compact().catch(() => undefined);
      await Promise.all([...writes, c]);
    }
    await persistence.onApplicationShutdown();
    expect(violations.slice(0, 5)).toEqual([]);
  }, 60000);

  describe('a crash while journal N is being retired and N+1 is already written', () => {
    it('loads when N lost part of its unsynced tail but N+1 reached the disk (writeback order)', async () => {
      const a = put('a');
      const b = put('b');
      // N: 'a' synced, 'b' (unacknowledged, its retire fsync still running) torn by the crash.
      writeFileSync(join(dir, 'journal-00000001.log'), Buffer.concat([a, b.subarray(0, 30)]));
      // N+1: a write made after the switch, flushed by the kernel's writeback before N's fsync.
      writeFileSync(join(dir, 'journal-00000002.log'), put('c'));
      const { storage, persistence } = persistenceOn(dir);
      await expect(persistence.start()).resolves.toBeDefined();
      // N's whole entries load; what follows the cut was never acknowledged and is dropped.
      expect(storage.get('t', 'a')).toMatchObject({ id: 'a' });
      expect(() => storage.get('t', 'b')).toThrow();
      expect(() => storage.get('t', 'c')).toThrow();
      await persistence.onApplicationShutdown();
    });
  });
});
