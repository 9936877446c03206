import type { LogEntry } from '../commands';
import { FileJournal, type JournalFile } from './file-journal';

const fake = (failSync: boolean): JournalFile & { synced: number; size: number } => {
  const f = {
    size: 0,
    synced: 0,
    async write(_b: Buffer, _o: number, l: number) {
      f.size += l;
      return { bytesWritten: l };
    },
    async datasync() {
      await new Promise((r) => setTimeout(r, 5));
      if (failSync) throw Object.assign(new Error('EIO'), { code: 'EIO' });
      f.synced = f.size;
    },
    async truncate() {},
    async stat() {
      return { size: 0 };
    },
    async close() {},
  };
  return f;
};
let seq = 0;
const put = (id: string): LogEntry => ({
  seq: ++seq,
  command: { v: 1, op: 'put', table: 't', records: [{ id, created_at: 'c', updated_at: 'u' }] },
});

it('acknowledges no write after the old journal failed to sync, until a snapshot covers it', async () => {
  const n = fake(true);
  const n1 = fake(false);
  const journal = await FileJournal.open('/d/journal-00000001.log', 'always', async () => n);
  await journal.append(put('a')); // in N, not yet synced (its durable() would fail)
  const retired = journal.switchTo(
    await FileJournal.openSegment('/d/journal-00000002.log', async () => n1),
  );
  retired.catch(() => undefined);
  await journal.append(put('b'));
  await expect(journal.durable()).rejects.toThrow(); // b: 503, good
  await journal.append(put('c'));
  // c follows a and b; N (holding a) never reached the disk, so c must not be acknowledged
  await expect(journal.durable()).rejects.toThrow();
  await journal.coveredBySnapshot();
  await journal.append(put('d'));
  await expect(journal.durable()).resolves.toBeUndefined();
});
