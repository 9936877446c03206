import { DiskFullError, StorageUnavailableError } from '../database.errors';
import type { LogEntry } from '../commands';
import { FileJournal, type JournalFile } from './file-journal';
import { readEntries } from './log-format';

/** An in-memory file that records syncs and can be told to fail. */
class FakeFile implements JournalFile {
  data = Buffer.alloc(0);
  syncs = 0;
  /** Fail the next writes with this code, after writing `partial` bytes of them. */
  failWrites: { code: string; partial: number } | undefined;
  syncDelayMs = 0;

  async write(buffer: Buffer, offset: number, length: number) {
    await Promise.resolve();
    if (this.failWrites) {
      const kept = Math.min(this.failWrites.partial, length);
      this.data = Buffer.concat([this.data, buffer.subarray(offset, offset + kept)]);
      throw Object.assign(new Error(this.failWrites.code), { code: this.failWrites.code });
    }
    this.data = Buffer.concat([this.data, buffer.subarray(offset, offset + length)]);
    return { bytesWritten: length };
  }
  async datasync() {
    if (this.syncDelayMs) await new Promise((resolve) => setTimeout(resolve, this.syncDelayMs));
    this.syncs++;
  }
  async truncate(length: number) {
    this.data = this.data.subarray(0, length);
  }
  async stat() {
    return { size: this.data.length };
  }
  async close() {}
}

let seq = 0;
const put = (id: string): LogEntry => ({
  seq: ++seq,
  command: { v: 1, op: 'put', table: 't', records: [{ id, created_at: 'c', updated_at: 'u' }] },
});

async function journalOn(file: FakeFile, mode: 'always' | 'everysec' | 'no' = 'always') {
  return FileJournal.open('/data/journal-00000001.log', mode, async () => file);
}

describe('FileJournal', () => {
  it('writes entries in the order they were appended, concurrent ones together', async () => {
    const file = new FakeFile();
    const journal = await journalOn(file);
    await Promise.all(['a', 'b', 'c', 'd'].map((id) => journal.append(put(id))));
    const read = readEntries(file.data);
    expect(
      read.entries.map(
        (e) => (e as LogEntry & { command: { records: { id: string }[] } }).command.records[0].id,
      ),
    ).toEqual(['a', 'b', 'c', 'd']);
    expect(journal.bytes).toBe(file.data.length);
  });

  it('with FSYNC=always, makes each write durable before durable() resolves, sharing fsyncs', async () => {
    const file = new FakeFile();
    file.syncDelayMs = 20;
    const journal = await journalOn(file);
    const writers = Array.from({ length: 20 }, async (_, i) => {
      await journal.append(put(`r${i}`));
      await journal.durable();
      // Everything this writer appended was synced: a sync ran after its bytes were written.
      return file.syncs;
    });
    const seen = await Promise.all(writers);
    expect(seen.every((syncs) => syncs >= 1)).toBe(true);
    // Twenty writers, far fewer fsyncs: one in flight, then one for everyone who came meanwhile.
    expect(file.syncs).toBeLessThanOrEqual(3);
  });

  it('with everysec or no, does not sync before answering', async () => {
    for (const mode of ['everysec', 'no'] as const) {
      const file = new FakeFile();
      const journal = await journalOn(file, mode);
      await journal.append(put('a'));
      await journal.durable();
      expect({ mode, syncs: file.syncs }).toEqual({ mode, syncs: 0 });
      await journal.close();
      // Closing flushes and syncs what is left.
      expect({ mode, syncs: file.syncs }).toEqual({ mode, syncs: 1 });
    }
  });

  it('refuses a write the disk cannot take, cuts its partial bytes off, and resumes later', async () => {
    const file = new FakeFile();
    const journal = await journalOn(file);
    await journal.append(put('before'));
    const good = file.data.length;

    file.failWrites = { code: 'ENOSPC', partial: 7 };
    await expect(journal.append(put('lost'))).rejects.toBeInstanceOf(DiskFullError);
    expect(file.data.length).toBe(good);
    expect(journal.failure).toMatchObject({ code: 'ENOSPC' });

    file.failWrites = { code: 'EIO', partial: 3 };
    await expect(journal.append(put('lost too'))).rejects.toBeInstanceOf(StorageUnavailableError);

    file.failWrites = undefined;
    await journal.append(put('after'));
    expect(journal.failure).toBeUndefined();
    const read = readEntries(file.data);
    expect(read.corruption).toBeUndefined();
    expect(read.entries).toHaveLength(2);
  });

  it('does the same with a file that writes synchronously', async () => {
    const file = new FakeFile();
    const sync = Object.assign(file, {
      writeSync(buffer: Buffer, offset: number, length: number): number {
        if (file.failWrites) {
          file.data = Buffer.concat([file.data, buffer.subarray(offset, offset + 2)]);
          throw Object.assign(new Error('ENOSPC'), { code: 'ENOSPC' });
        }
        file.data = Buffer.concat([file.data, buffer.subarray(offset, offset + length)]);
        return length;
      },
    });
    const journal = await journalOn(sync);
    await Promise.all([journal.append(put('a')), journal.append(put('b'))]);
    file.failWrites = { code: 'ENOSPC', partial: 2 };
    await expect(journal.append(put('lost'))).rejects.toBeInstanceOf(DiskFullError);
    file.failWrites = undefined;
    await journal.append(put('c'));
    const read = readEntries(file.data);
    expect(read.corruption).toBeUndefined();
    expect(read.entries).toHaveLength(3);
  });

  it('retires a journal while writers wait for its fsync, without failing them', async () => {
    const old = new FakeFile();
    old.syncDelayMs = 30;
    let closedWhileSyncing = false;
    let syncing = 0;
    const realSync = old.datasync.bind(old);
    old.datasync = async () => {
      syncing++;
      await realSync();
      syncing--;
    };
    old.close = async () => {
      if (syncing > 0) closedWhileSyncing = true;
    };
    const journal = await journalOn(old);
    await journal.append(put('a'));
    const waiting = journal.durable();
    const next = new FakeFile();
    const segment = await FileJournal.openSegment('/data/journal-00000002.log', async () => next);
    await journal.switchTo(segment);
    await expect(waiting).resolves.toBeUndefined();
    expect(closedWhileSyncing).toBe(false);
    expect(journal.failure).toBeUndefined();
    await journal.append(put('b'));
    await journal.durable();
    expect(readEntries(next.data).entries).toHaveLength(1);
    expect(next.syncs).toBe(1);
  });

  it('switches files at once; with FSYNC=always, acknowledges nothing before the old file is synced', async () => {
    const old = new FakeFile();
    const journal = await journalOn(old);
    await journal.append(put('a'));
    let releaseOld!: () => void;
    const events: string[] = [];
    old.datasync = async () => {
      await new Promise<void>((resolve) => (releaseOld = resolve));
      events.push('old synced');
    };
    const next = new FakeFile();
    next.datasync = async () => {
      events.push('next synced');
    };
    const segment = await FileJournal.openSegment('/data/journal-00000002.log', async () => next);

    const retired = journal.switchTo(segment);
    // Appends go to the new file while the old one is still being synced.
    await journal.append(put('b'));
    expect(readEntries(next.data).entries).toHaveLength(1);
    const acknowledged = journal.durable().then(() => events.push('b acknowledged'));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(events).toEqual([]);

    releaseOld();
    await retired;
    await acknowledged;
    expect(events).toEqual(['old synced', 'next synced', 'b acknowledged']);
  });

  it('fails durable() of the writes waiting when the old file cannot be synced', async () => {
    const old = new FakeFile();
    const journal = await journalOn(old);
    await journal.append(put('a'));
    old.datasync = () => Promise.reject(Object.assign(new Error('EIO'), { code: 'EIO' }));
    const segment = await FileJournal.openSegment('/data/journal-00000002.log', async () => {
      return new FakeFile();
    });
    const retired = journal.switchTo(segment);
    await expect(journal.durable()).rejects.toBeInstanceOf(StorageUnavailableError);
    await expect(retired).rejects.toBeInstanceOf(StorageUnavailableError);
    expect(journal.failure).toMatchObject({ code: 'EIO' });
  });

  it('closes once, however often it is asked, after the last sync', async () => {
    const file = new FakeFile();
    let closes = 0;
    file.close = async () => {
      closes++;
    };
    const journal = await journalOn(file, 'no');
    await journal.append(put('a'));
    const first = journal.close();
    expect(journal.close()).toBe(first);
    await first;
    expect({ syncs: file.syncs, closes }).toEqual({ syncs: 1, closes: 1 });
  });

  it('refuses appends once closed', async () => {
    const journal = await journalOn(new FakeFile());
    await journal.close();
    await expect(journal.append(put('late'))).rejects.toBeInstanceOf(StorageUnavailableError);
  });
});
