import { DuplicateRecordError, LockTimeoutError, RecordNotFoundError } from './database.errors';
import type { StoredRecord } from './record.types';
import { Table } from './table';
import { SnapshotTooOldError } from './database.errors';
import { keptBytesOf, Versions } from './versions';

const record = (id: string, extra: Record<string, string> = {}): StoredRecord => ({
  id,
  ...extra,
  created_at: '2026-01-01T00:00:00.000Z',
  updated_at: '2026-01-01T00:00:00.000Z',
});

describe('Table', () => {
  it('does not exist until a command makes it visible, and remembers which one', () => {
    const table = new Table('t', 1000);
    table.insertAll([record('a')], false);
    expect(table.exists).toBe(false);

    table.materialise(7);
    table.materialise(9);

    expect(table.exists).toBe(true);
    expect(table.created).toBe(7);
    expect(table.size).toBe(1);
  });

  it('rejects a duplicate id and keeps the first record', () => {
    const table = new Table('t', 1000);
    const first = record('a', { v: 'first' });
    table.insertAll([first], false);

    expect(() => table.insertAll([record('a', { v: 'second' })], false)).toThrow(
      DuplicateRecordError,
    );
    expect(table.get('a')).toBe(first);
  });

  it('iterates in insertion order; replace keeps the position and the sequence number', () => {
    const table = new Table('t', 1000);
    for (const id of ['a', 'b', 'c']) table.insertAll([record(id)], false);
    table.prepareReplace(record('b', { v: 'new' }))();
    table.delete('a');
    table.insertAll([record('a')], false);

    expect([...table.values()].map((r) => r.id)).toEqual(['b', 'c', 'a']);
    expect(table.get('b')).toMatchObject({ v: 'new' });
    expect([table.seqOf('b'), table.seqOf('c'), table.seqOf('a'), table.seqOf('zz')]).toEqual([
      1, 2, 3, -1,
    ]);
  });

  it('throws RecordNotFoundError for a missing id on get and delete', () => {
    const table = new Table('t', 1000);

    expect(() => table.getOrThrow('x')).toThrow(RecordNotFoundError);
    expect(() => table.delete('x')).toThrow(RecordNotFoundError);
  });

  describe('withLock', () => {
    it('runs writers one at a time, in arrival order', async () => {
      const table = new Table('t', 1000);
      const events: string[] = [];
      const writer = (name: string, ms: number) =>
        table.withLock(async () => {
          events.push(`${name}:start`);
          await new Promise((resolve) => setTimeout(resolve, ms));
          events.push(`${name}:end`);
        });

      await Promise.all([writer('a', 20), writer('b', 1), writer('c', 5)]);

      expect(events).toEqual(['a:start', 'a:end', 'b:start', 'b:end', 'c:start', 'c:end']);
    });

    it('releases the lock when the writer throws', async () => {
      const table = new Table('t', 1000);

      await expect(table.withLock(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');

      expect(table.isLocked).toBe(false);
      await expect(table.withLock(() => 'next')).resolves.toBe('next');
    });

    it('fails with LockTimeoutError when the lock is held too long', async () => {
      const table = new Table('t', 20);
      let release!: () => void;
      const holder = table.withLock(() => new Promise<void>((resolve) => (release = resolve)));

      await expect(table.withLock(() => 'never')).rejects.toBeInstanceOf(LockTimeoutError);

      release();
      await holder;
    });
  });

  describe('view (snapshot reads)', () => {
    const ids = (rows: Iterable<StoredRecord>) => [...rows].map((r) => `${r.id}${r.v ?? ''}`);
    const seeded = (versions: Versions, n = 4) => {
      const table = new Table('t', 1000, versions);
      table.insertAll(Array.from({ length: n }, (_, i) => record(`r${i}`)));
      return table;
    };

    it('sees the records of its snapshot whatever is written after', () => {
      const versions = new Versions();
      const table = seeded(versions);
      const view = table.view(versions.openSnapshot());

      table.prepareReplace(record('r1', { v: '!' }))();
      table.delete('r2');
      table.insertAll([record('r2', { v: 'again' }), record('r9')]);

      expect(ids(view)).toEqual(['r0', 'r1', 'r2', 'r3']);
      expect(ids(table.values())).toEqual(['r0', 'r1!', 'r3', 'r2again', 'r9']);
      expect(view.size).toBe(4);
      expect(view.unchanged).toBe(false);
    });

    it('gives every record of the snapshot its sequence number, replaced or deleted since', () => {
      const versions = new Versions();
      const table = seeded(versions);
      const view = table.view(versions.openSnapshot());
      const before = [...view];

      table.prepareReplace(record('r1', { v: '!' }))();
      table.delete('r2');
      table.insertAll([record('r2', { v: 'again' })]);

      expect(before.map((r) => view.seqOf(r))).toEqual([0, 1, 2, 3]);
      expect(table.seqOf('r2')).toBe(4);
    });

    it('keeps an old value only while an open read can see it', () => {
      const versions = new Versions();
      const table = seeded(versions);
      table.prepareReplace(record('r0', { v: 'x' }))();
      expect(versions.keptBytes).toBe(0);

      const snapshot = versions.openSnapshot();
      table.prepareReplace(record('r0', { v: 'y' }))();
      const kept = versions.keptBytes;
      table.prepareReplace(record('r0', { v: 'z' }))();

      expect(kept).toBeGreaterThan(0);
      // The value between the two writes was seen by no open read: not kept.
      expect(versions.keptBytes).toBe(kept);
      expect(ids(table.view(snapshot))[0]).toBe('r0x');
      versions.close(snapshot);
      expect(versions.keptBytes).toBe(0);
    });

    it('ends the oldest open read once kept values pass the budget, and frees them', () => {
      const one = keptBytesOf(record('r0'));
      const versions = new Versions(6.5 * one);
      const table = seeded(versions, 8);
      const oldest = versions.openSnapshot();
      const oldView = table.view(oldest);
      for (let i = 0; i < 6; i++) table.prepareReplace(record(`r${i}`, { v: 'a' }))();
      const newer = versions.openSnapshot();
      const newView = table.view(newer);
      expect(oldest.ended).toBeUndefined();

      table.prepareReplace(record('r6', { v: 'b' }))();

      expect(oldest.ended).toBeInstanceOf(SnapshotTooOldError);
      expect(() => [...oldView]).toThrow(SnapshotTooOldError);
      expect(newer.ended).toBeUndefined();
      expect(ids(newView)).toEqual(['r0a', 'r1a', 'r2a', 'r3a', 'r4a', 'r5a', 'r6', 'r7']);
      expect(versions.keptBytes).toBe(one);
    });

    it('removes deleted records from storage once no open read can see them', () => {
      const versions = new Versions();
      const table = seeded(versions, 3000);
      const snapshot = versions.openSnapshot();
      const view = table.view(snapshot);
      for (let i = 0; i < 2900; i++) table.delete(`r${i}`);

      expect([...view]).toHaveLength(3000);
      versions.close(snapshot);
      for (let i = 2900; i < 2990; i++) table.delete(`r${i}`);

      expect(ids(table.values())).toHaveLength(10);
      expect([...table.view(versions.openSnapshot())]).toHaveLength(10);
    });
  });
});
