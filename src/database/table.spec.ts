import { DuplicateRecordError, LockTimeoutError, RecordNotFoundError } from './database.errors';
import type { StoredRecord } from './record.types';
import { Table } from './table';

const record = (id: string, extra: Record<string, string> = {}): StoredRecord => ({
  id,
  ...extra,
  created_at: '2026-01-01T00:00:00.000Z',
  updated_at: '2026-01-01T00:00:00.000Z',
});

describe('Table', () => {
  it('does not exist until its first record is inserted', () => {
    const table = new Table('t', 1000);
    expect(table.exists).toBe(false);

    table.insert(record('a'));

    expect(table.exists).toBe(true);
    expect(table.size).toBe(1);
  });

  it('rejects a duplicate id and keeps the first record', () => {
    const table = new Table('t', 1000);
    const first = record('a', { v: 'first' });
    table.insert(first);

    expect(() => table.insert(record('a', { v: 'second' }))).toThrow(DuplicateRecordError);
    expect(table.get('a')).toBe(first);
  });

  it('iterates in insertion order; replace keeps the position and the sequence number', () => {
    const table = new Table('t', 1000);
    for (const id of ['a', 'b', 'c']) table.insert(record(id));
    table.replace(record('b', { v: 'new' }));
    table.delete('a');
    table.insert(record('a'));

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
});
