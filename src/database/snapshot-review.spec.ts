import { executeJoin, executeList, streamList } from './query-executor';
import { parseFieldPath } from './query/field-path';
import { parseJoinQuery, parseListQuery } from './query/query-params';
import { PAUSE } from './query/yielder';
import type { StoredRecord } from './record.types';
import { Table } from './table';
import { keptBytesOf, Versions } from './versions';

const LIMITS = { defaultLimit: 100, maxLimit: 1000 };
const QL = { maxResultRows: 100_000 };
const rec = (id: string, extra: Record<string, unknown> = {}): StoredRecord =>
  ({ id, ...extra, created_at: 'x', updated_at: 'x' }) as unknown as StoredRecord;
const KEYS = { leftKey: parseFieldPath('id', 'key'), rightKey: parseFieldPath('user_id', 'key') };

describe('a sorted join page whose cursor names its row (long sort values)', () => {
  it('resolves the cursor row as of the snapshot, not as it is after the join was prepared', async () => {
    const versions = new Versions();
    const users = new Table('users', 1000, versions);
    const orders = new Table('orders', 1000, versions);
    const long = (c: string) => c.repeat(2000); // key JSON > 1500 chars: cursor holds a ref
    users.insertAll([
      rec('u1', { name: long('a') }),
      rec('u2', { name: long('b') }),
      rec('u3', { name: long('c') }),
    ]);
    orders.insertAll([
      rec('o1', { user_id: 'u1' }),
      rec('o2', { user_id: 'u2' }),
      rec('o3', { user_id: 'u3' }),
    ]);
    const q = (cursor?: string) =>
      parseJoinQuery({ sort: 'left.name', limit: '1', ...(cursor ? { cursor } : {}) }, LIMITS);

    let snap = versions.openSnapshot();
    const first = await executeJoin(users.view(snap), orders.view(snap), KEYS, q(), QL);
    versions.close(snap);
    expect((first.items[0] as { left: StoredRecord }).left.id).toBe('u1');

    // Page 2 starts (snapshot still has u1); a write lands while the join is being prepared.
    snap = versions.openSnapshot();
    const page = executeJoin(users.view(snap), orders.view(snap), KEYS, q(first.nextCursor), QL);
    users.delete('u1');
    // Before: a 400 "the record this cursor points at has been deleted".
    const second = await page;
    versions.close(snap);
    expect((second.items[0] as { left: StoredRecord }).left.id).toBe('u2');
  });
});

describe('old values kept only for reads that have closed', () => {
  it('are dropped before the budget ends the oldest read', () => {
    const one = keptBytesOf(rec('h', { v: 0 }));
    const versions = new Versions(10 * one);
    const table = new Table('t', 1000, versions);
    table.insertAll([rec('h', { v: 0 })]);
    const longRead = versions.openSnapshot(); // a long stream: needs only h v0
    for (let i = 1; i <= 50; i++) {
      const shortRead = versions.openSnapshot(); // a page read in flight while h is written
      table.prepareReplace(rec('h', { v: i }))();
      versions.close(shortRead);
    }
    // Only h v0 is still visible to an open read.
    expect(longRead.ended).toBeUndefined();
    expect(versions.keptBytes).toBeLessThanOrEqual(10 * one);
    versions.close(longRead);
    expect(versions.keptBytes).toBe(0);
  });
});

describe('a streamed list from a cursor while every record is deleted', () => {
  // bench/reads.ts times this path (a key lookup per row among kept versions, once O(kept)).
  it('lists every record of its snapshot after the cursor', async () => {
    const versions = new Versions();
    const table = new Table('t', 1000, versions);
    const n = 40_000;
    table.insertAll(Array.from({ length: n }, (_, i) => rec(`r${i}`)));
    const snap = versions.openSnapshot();
    const view = table.view(snap);
    // A whole list from a cursor (after the first row), read while every record is deleted.
    const print = (await executeList(view, parseListQuery({ limit: '1' }, LIMITS), QL)).nextCursor!;
    const stream = await streamList(
      view,
      parseListQuery({ limit: 'all', cursor: print }, LIMITS),
      QL,
    );
    for (let i = 0; i < n; i++) table.delete(`r${i}`);
    const ids: string[] = [];
    for (const row of stream.rows) if (row !== PAUSE) ids.push((row as StoredRecord).id);
    expect(ids).toHaveLength(n - 1);
    expect(ids[0]).toBe('r1');
    expect(ids.at(-1)).toBe(`r${n - 1}`);
    versions.close(snap);
    expect(versions.keptBytes).toBe(0);
  });
});
