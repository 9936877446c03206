import { SnapshotTooOldError } from './database.errors';
import { decodeCursor } from './query/cursor';
import { parseFieldPath } from './query/field-path';
import { parseJoinQuery, parseListQuery, type RawQuery } from './query/query-params';
import { PAUSE } from './query/yielder';
import type { StoredRecord } from './record.types';
import { StorageService } from './storage.service';
import { keptBytesOf } from './versions';

/**
 * Reads see one state: the state when they started. Each test lets a write land while a read
 * is paused (a scan gives the event loop back every ~8 ms): the read is started, then the
 * write is awaited, and the test checks the read had not finished by then (otherwise it
 * would prove nothing), then what the read answered.
 */

const LIMITS = { defaultLimit: 100, maxLimit: 1000 };
const list = (raw: RawQuery) => parseListQuery(raw, LIMITS);
const join = (raw: RawQuery) => parseJoinQuery(raw, LIMITS);
const USERS_ORDERS = {
  left: 'users',
  right: 'orders',
  leftKey: parseFieldPath('id', 'key'),
  rightKey: parseFieldPath('user_id', 'key'),
};
const rid = (i: number) => `r${String(i).padStart(7, '0')}`;

async function seeded(db: StorageService, n: number, table = 'c'): Promise<void> {
  const batch = 50_000;
  for (let start = 0; start < n; start += batch) {
    const rows = [];
    for (let i = start; i < Math.min(n, start + batch); i++) rows.push({ id: rid(i), k: i });
    await db.createMany(table, rows);
  }
}

/** Starts `read`, runs `write` while it is paused, and returns the read's answer. */
async function whilePaused<T>(read: () => Promise<T>, write: () => Promise<unknown>): Promise<T> {
  let finished = false;
  const reading = read().finally(() => (finished = true));
  await write();
  expect(finished).toBe(false);
  return reading;
}

/** Every row of a streamed result, with PAUSE markers skipped and `during` run after the first. */
async function drain(rows: Iterable<unknown>, during?: () => Promise<unknown>): Promise<unknown[]> {
  const out: unknown[] = [];
  for (const row of rows) {
    if (row === PAUSE) continue;
    out.push(row);
    if (out.length === 1 && during !== undefined) await during();
  }
  return out;
}

const ids = (rows: readonly unknown[]) => rows.map((row) => (row as StoredRecord).id);

describe('Snapshot reads (StorageService)', () => {
  jest.setTimeout(60_000);

  describe('a filtered, counted page over 200,000 records', () => {
    const db = StorageService.standalone({});
    beforeAll(() => seeded(db, 200_000));

    it('issues a cursor after its last row even when that row is deleted during the scan', async () => {
      const page = await whilePaused(
        () => db.list('c', list({ k: 'gte.0', limit: '100' })),
        () => db.delete('c', rid(99)),
      );

      expect(ids(page.items).at(-1)).toBe(rid(99));
      expect(page.total).toBe(200_000);
      const next = await db.list('c', list({ k: 'gte.0', limit: '100', cursor: page.nextCursor! }));
      expect(ids(next.items)[0]).toBe(rid(100));
      expect(next.total).toBe(199_999);
    });

    it('counts the state it started on, whatever is deleted and added meanwhile', async () => {
      const page = await whilePaused(
        () => db.list('c', list({ k: 'gte.0', limit: '10' })),
        async () => {
          for (let i = 150_000; i < 150_100; i++) await db.delete('c', rid(i));
          await db.create('c', { id: 'late', k: 1 });
        },
      );

      expect(page.total).toBe(199_999);
      expect((await db.list('c', list({ k: 'gte.0', limit: '1' }))).total).toBe(199_900);
    });
  });

  it('never decodes a cursor to "before the first row"', () => {
    const forged = Buffer.from(JSON.stringify({ v: 1, q: 'q', k: [-1] })).toString('base64url');

    expect(() => decodeCursor(forged, 'q', { kind: 'seq', length: 1, refLength: 1 })).toThrow(
      'malformed cursor',
    );
  });

  describe('joins', () => {
    const db = StorageService.standalone({});
    beforeAll(async () => {
      const users = Array.from({ length: 20_000 }, (_, i) => ({ id: `u${i}`, n: i }));
      await db.createMany('users', users);
      const orders = Array.from({ length: 200_000 }, (_, i) => ({
        id: `o${i}`,
        user_id: `u${i % 20_000}`,
      }));
      await db.createMany('orders', orders);
    });

    it('issues a cursor after the last row of a page even when it is deleted during the scan', async () => {
      const first = await db.join(USERS_ORDERS, join({ limit: '3' }));
      const last = (first.items.at(-1) as { right: StoredRecord }).right.id;
      const page = await whilePaused(
        () => db.join(USERS_ORDERS, join({ limit: '3', 'right.id': 'ne.none' })),
        () => db.delete('orders', last),
      );

      expect(page.items).toEqual(first.items);
      const next = await db.join(
        USERS_ORDERS,
        join({ limit: '3', 'right.id': 'ne.none', cursor: page.nextCursor! }),
      );
      const after = next.items[0] as { left: StoredRecord; right: StoredRecord };
      expect([after.left.id, after.right.id]).toEqual(['u0', 'o60000']);
    });

    it('probes a right-side index as of the snapshot once the right table changes mid-join', async () => {
      const db = StorageService.standalone({});
      await db.createMany(
        'users',
        Array.from({ length: 5000 }, (_, i) => ({ id: `u${i}` })),
      );
      await db.createMany(
        'orders',
        Array.from({ length: 50_000 }, (_, i) => ({ id: `o${i}`, user_id: `u${i % 5000}` })),
      );
      await db.createIndex('orders', 'user_id', false);
      const stream = await db.joinAll(USERS_ORDERS, join({ limit: 'all' }));
      expect(stream.plan).toContain('index(right.user_id)');

      const rows = (await drain(stream.rows, async () => {
        // Orders of late users move to u0 (already read) or go; a new order appears.
        for (let i = 4990; i < 5000; i++) await db.patch('orders', `o${i}`, { user_id: 'u0' });
        for (let i = 4980; i < 4990; i++) await db.delete('orders', `o${i}`);
        await db.create('orders', { id: 'o-late', user_id: 'u4999' });
      })) as { left: StoredRecord; right: StoredRecord }[];

      expect(rows).toHaveLength(50_000);
      expect(rows.every((row) => row.right.user_id === row.left.id)).toBe(true);
      expect(new Set(rows.map((row) => row.right.id)).size).toBe(50_000);
      expect(db.snapshots.open).toBe(0);
    });

    it('streams a full join that lists every right record exactly once while the right side changes', async () => {
      const orders = (await db.list('orders', list({ limit: '1' }))).total;
      const stream = await db.joinAll(USERS_ORDERS, join({ type: 'full', limit: 'all' }));
      const rows = (await drain(stream.rows, async () => {
        // Move orders between users, orphan some and delete others while the join is read.
        for (let i = 199_000; i < 199_500; i++)
          await db.patch('orders', `o${i}`, { user_id: i % 2 === 0 ? 'nobody' : 'u1' });
        for (let i = 199_500; i < 199_600; i++) await db.delete('orders', `o${i}`);
        await db.create('orders', { id: 'o-late', user_id: 'u5' });
      })) as { left: StoredRecord | null; right: StoredRecord | null }[];

      const rights = rows.map((row) => row.right?.id).filter((id) => id !== undefined);
      expect(rights).toHaveLength(orders!);
      expect(new Set(rights).size).toBe(rights.length);
      expect(rights).not.toContain('o-late');
      expect(rights).toContain('o199550');
      expect(db.snapshots.open).toBe(0);
    });
  });

  it('streams a list that holds each record exactly once, as it was, while records move', async () => {
    const db = StorageService.standalone({});
    await seeded(db, 100_000);
    const stream = await db.listAll('c', list({ limit: 'all' }));

    const rows = (await drain(stream.rows, async () => {
      // A record deleted and created again moves to the end of the table.
      for (let i = 90_000; i < 90_100; i++) {
        await db.delete('c', rid(i));
        await db.create('c', { id: rid(i), k: -i });
      }
      await db.patch('c', rid(99_999), { k: 'changed' });
    })) as StoredRecord[];

    expect(rows).toHaveLength(100_000);
    expect(new Set(ids(rows)).size).toBe(100_000);
    expect(rows[90_000]).toMatchObject({ id: rid(90_000), k: 90_000 });
    expect(rows[99_999]).toMatchObject({ id: rid(99_999), k: 99_999 });
    expect(db.snapshots).toEqual({ open: 0, keptBytes: 0 });
  });

  describe('past SNAPSHOT_MAX_MB', () => {
    // What keeping one old version of a seeded record costs: 300 of them fit.
    const one = keptBytesOf({
      id: rid(0),
      k: 0,
      created_at: new Date().toISOString(),
      updated_at: new Date().toISOString(),
    });
    const setup = async () => {
      const db = StorageService.standalone({ snapshotMaxBytes: 300 * one });
      await seeded(db, 200_000);
      return db;
    };
    const rewrite = async (db: StorageService, from: number, count: number) => {
      for (let i = from; i < from + count; i++) await db.patch('c', rid(i), { k: 'x'.repeat(100) });
    };

    it('ends a page read that has not answered yet with SnapshotTooOldError', async () => {
      const db = await setup();
      let finished = false;
      const reading = db
        .list('c', list({ k: 'gte.0', limit: '10' }))
        .finally(() => (finished = true));
      await rewrite(db, 50_000, 1000);
      expect(finished).toBe(false);

      await expect(reading).rejects.toBeInstanceOf(SnapshotTooOldError);
      expect(db.snapshots).toEqual({ open: 0, keptBytes: 0 });
    });

    it('ends the oldest streamed read first, and lets a younger one finish', async () => {
      const db = await setup();
      const oldest = await db.listAll('c', list({ limit: 'all' }));
      const oldRows = oldest.rows[Symbol.iterator]();
      oldRows.next();
      await rewrite(db, 0, 280);
      const younger = await db.listAll('c', list({ limit: 'all' }));
      expect(db.snapshots.open).toBe(2);

      await rewrite(db, 280, 60);

      expect(() => oldRows.next()).toThrow(SnapshotTooOldError);
      const rows = (await drain(younger.rows)) as StoredRecord[];
      expect(rows).toHaveLength(200_000);
      expect(rows[0].k).toBe('x'.repeat(100));
      expect(rows[300].k).toBe(300);
      expect(db.snapshots).toEqual({ open: 0, keptBytes: 0 });
    });

    it('closes the snapshot of a stream abandoned before its first row', async () => {
      const db = await setup();
      const stream = await db.listAll('c', list({ limit: 'all' }));
      expect(db.snapshots.open).toBe(1);

      stream.close!();

      expect(db.snapshots.open).toBe(0);
    });
  });
});
