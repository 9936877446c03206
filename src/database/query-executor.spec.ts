import { PAUSE, type LazyRows } from './query/yielder';
import fc from 'fast-check';
import { getPath } from './query/field-path';
import { QueryError } from './query/query.errors';
import { parseJoinQuery, parseListQuery, type RawQuery } from './query/query-params';
import type { JsonObject, StoredRecord } from './record.types';
import { StorageService } from './storage.service';

type Rec = Record<string, unknown>;
const LIMITS = { defaultLimit: 100, maxLimit: 1000 };

const value = fc.oneof(
  fc.integer({ min: 0, max: 6 }),
  fc.constantFrom('a', 'b', 'c', 'B', '1'),
  fc.boolean(),
  fc.constant(null),
);
const body = fc.record(
  { a: value, b: value, n: fc.record({ c: value }, { requiredKeys: [] }) },
  { requiredKeys: [] },
);
const bodies = fc.array(body, { maxLength: 40 });

async function load(
  rows: JsonObject[],
  index?: { field: string; unique?: boolean },
): Promise<StorageService> {
  const db = StorageService.standalone({});
  await db.createTable('t');
  if (index) await db.createIndex('t', index.field, index.unique ?? false);
  await db.createMany(
    't',
    rows.length
      ? rows.map((row, i) => ({ id: `r${String(i).padStart(3, '0')}`, ...row }))
      : [{ id: 'only' }],
  );
  return db;
}

/** The reference order: plain comparisons, missing and null last, ties by id. */
function referenceCompare(keys: { path: string[]; desc: boolean }[]) {
  const rank = (v: unknown) =>
    typeof v === 'number' ? 1 : typeof v === 'string' ? 2 : typeof v === 'boolean' ? 3 : 4;
  return (a: Rec, b: Rec): number => {
    for (const { path, desc } of keys) {
      const x = getPath(a, path);
      const y = getPath(b, path);
      const missingX = x === null || x === undefined;
      const missingY = y === null || y === undefined;
      if (missingX || missingY) {
        if (missingX && missingY) continue;
        return missingX ? 1 : -1;
      }
      let order = rank(x) - rank(y);
      if (order === 0 && rank(x) < 4)
        order = (x as number) < (y as number) ? -1 : (x as number) > (y as number) ? 1 : 0;
      if (order !== 0) return desc ? -order : order;
    }
    return (a.id as string) < (b.id as string) ? -1 : 1;
  };
}

const filterParam = fc.oneof(
  fc.record(
    {
      a: fc.constantFrom(
        '1',
        'eq.2',
        'in.(1,2,a)',
        'gte.3',
        'not.eq.a',
        'is.null',
        'like.*',
        'ilike.b',
      ),
    },
    { requiredKeys: [] },
  ),
  fc.record({ 'n.c': fc.constantFrom('eq.b', 'lt.4', 'is.true', 'ne.1') }, { requiredKeys: [] }),
  fc.constant({ or: '(a.eq.1,b.eq.b,n.c.is.null)' }),
);
/** Each filter above, written out plainly: the reference the engine is checked against. */
const c = (r: Rec) => getPath(r, ['n', 'c']);
const PLAIN_FILTERS: Record<string, (r: Rec) => boolean> = {
  'a=1': (r) => r.a === 1,
  'a=eq.2': (r) => r.a === 2,
  'a=in.(1,2,a)': (r) => r.a === 1 || r.a === 2 || r.a === 'a',
  'a=gte.3': (r) => typeof r.a === 'number' && r.a >= 3,
  'a=not.eq.a': (r) => r.a !== 'a',
  'a=is.null': (r) => r.a === null || r.a === undefined,
  'a=like.*': (r) => typeof r.a === 'string',
  'a=ilike.b': (r) => typeof r.a === 'string' && r.a.toLowerCase() === 'b',
  'n.c=eq.b': (r) => c(r) === 'b',
  'n.c=lt.4': (r) => typeof c(r) === 'number' && (c(r) as number) < 4,
  'n.c=is.true': (r) => c(r) === true,
  'n.c=ne.1': (r) => c(r) !== 1,
  'or=(a.eq.1,b.eq.b,n.c.is.null)': (r) =>
    r.a === 1 || r.b === 'b' || c(r) === null || c(r) === undefined,
};
const sortParam = fc.constantFrom(undefined, 'a', '-a', 'b,-a', 'n.c,-b', '-id');

/** The rows of a whole result, without its pause markers. */
function drain(rows: LazyRows<unknown>): unknown[] {
  return [...rows].filter((row) => row !== PAUSE);
}

describe('executeList (property)', () => {
  it('equals filter + sort + slice + projection done plainly', async () => {
    await fc.assert(
      fc.asyncProperty(
        bodies,
        filterParam,
        sortParam,
        fc.integer({ min: 1, max: 15 }),
        fc.integer({ min: 0, max: 10 }),
        fc.boolean(),
        async (rows, filters, sort, limit, offset, project) => {
          const db = await load(rows);
          const raw: RawQuery = {
            ...filters,
            limit: String(limit),
            offset: String(offset),
            ...(sort ? { sort } : {}),
            ...(project ? { fields: 'id,n.c' } : {}),
          };
          const query = parseListQuery(raw, LIMITS);
          const result = await db.list('t', query);

          // Reference: every record, filtered by the plain predicates above, sorted plainly.
          const everything = (await db.list('t', parseListQuery({ limit: '1000' }, LIMITS)))
            .items as Rec[];
          const expectedMatches = everything.filter((r) =>
            Object.entries(filters).every(([name, value]) => PLAIN_FILTERS[`${name}=${value}`](r)),
          );
          const keys = sort
            ? sort
                .split(',')
                .map((k) => ({ path: k.replace('-', '').split('.'), desc: k.startsWith('-') }))
            : [];
          const ordered = sort
            ? [...expectedMatches].sort(referenceCompare(keys))
            : expectedMatches;
          const page = ordered.slice(offset, offset + limit);
          const expected = project
            ? page.map((r) => {
                const out: Rec = { id: r.id };
                const c = getPath(r, ['n', 'c']);
                if (c !== undefined) out.n = { c };
                return out;
              })
            : page;
          expect(result.items).toEqual(expected);
          expect(result.total).toBe(expectedMatches.length);

          // The whole result (limit=all) is the same rows from the offset on, without paging.
          const whole = await db.listAll('t', parseListQuery({ ...raw, limit: 'all' }, LIMITS));
          const rest = ordered.slice(offset);
          expect(drain(whole.rows)).toEqual(
            project
              ? rest.map((r) => ({
                  id: r.id,
                  ...(getPath(r, ['n', 'c']) === undefined
                    ? {}
                    : { n: { c: getPath(r, ['n', 'c']) } }),
                }))
              : rest,
          );
          expect(result.nextCursor !== undefined).toBe(offset + limit < expectedMatches.length);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('answers from an index exactly as from a scan', async () => {
    await fc.assert(
      fc.asyncProperty(
        bodies,
        fc.constantFrom(
          '1',
          'eq.2',
          'in.(1,2,a,B)',
          'eq.a',
          'in.(0,true)',
          'eq.null',
          'in.(null,1)',
        ),
        fc.constantFrom(undefined, 'b.ne.1', 'n.c.is.null'),
        sortParam,
        async (rows, condition, extra, sort) => {
          const scanned = await load(rows);
          const indexed = await load(rows, { field: 'a' });
          const raw: RawQuery = {
            a: condition,
            ...(extra ? { or: `(${extra})` } : {}),
            ...(sort ? { sort } : {}),
          };
          const query = parseListQuery(raw, LIMITS);

          const viaScan = await scanned.list('t', query);
          const viaIndex = await indexed.list('t', query);

          const ids = (items: readonly unknown[]) => (items as StoredRecord[]).map((r) => r.id);
          expect(ids(viaIndex.items)).toEqual(ids(viaScan.items));
          expect(viaIndex.total).toBe(viaScan.total);
          expect(viaScan.plan).toBe('scan');
          expect(viaIndex.plan).toBe(condition.includes('null') ? 'scan' : 'index(a)');
        },
      ),
      { numRuns: 300 },
    );
  });

  it('visits every record exactly once by following cursors', async () => {
    await fc.assert(
      fc.asyncProperty(
        bodies,
        sortParam,
        fc.integer({ min: 1, max: 7 }),
        async (rows, sort, limit) => {
          const db = await load(rows);
          const base: RawQuery = { limit: String(limit), ...(sort ? { sort } : {}) };
          const expected = (
            (await db.list('t', parseListQuery({ ...base, limit: '1000' }, LIMITS))).items as Rec[]
          ).map((r) => r.id);
          const seen: unknown[] = [];
          let cursor: string | undefined;
          do {
            const page = await db.list(
              't',
              parseListQuery({ ...base, ...(cursor ? { cursor } : {}) }, LIMITS),
            );
            seen.push(...(page.items as Rec[]).map((r) => r.id));
            cursor = page.nextCursor;
          } while (cursor !== undefined);

          expect(seen).toEqual(expected);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('visits every surviving record once while others are inserted and deleted', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 20 }), { minLength: 5, maxLength: 60 }),
        fc.constantFrom(undefined, 'a', '-a', 'a,-id'),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 0, max: 1000 }),
        async (values, sort, limit, seed) => {
          const db = StorageService.standalone({});
          await db.createMany(
            't',
            values.map((a, i) => ({ id: `s${i}`, a })),
          );
          const survivors = new Set(values.map((_, i) => `s${i}`));
          const base: RawQuery = { limit: String(limit), ...(sort ? { sort } : {}) };
          const seen: string[] = [];
          let cursor: string | undefined;
          let step = seed;
          let pages = 0;
          do {
            const page = await db.list(
              't',
              parseListQuery({ ...base, ...(cursor ? { cursor } : {}) }, LIMITS),
            );
            seen.push(...(page.items as StoredRecord[]).map((r) => r.id));
            cursor = page.nextCursor;
            // Churn between pages (a bounded number of times, so paging ends): a new record,
            // and a deletion of some original record.
            step = (step * 7919 + 13) % 100_003;
            if (pages++ < values.length) {
              await db.create('t', { id: `n${step}-${seen.length}`, a: step % 21 });
              const victim = `s${step % values.length}`;
              if (survivors.delete(victim)) await db.delete('t', victim);
            }
          } while (cursor !== undefined);

          expect(new Set(seen).size).toBe(seen.length);
          for (const id of survivors) expect(seen).toContain(id);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('refuses a cursor from another query, and a tampered one', async () => {
    const db = await load([{ a: 1 }, { a: 2 }, { a: 3 }]);
    const { nextCursor } = await db.list('t', parseListQuery({ limit: '1', sort: 'a' }, LIMITS));

    await expect(
      db.list('t', parseListQuery({ limit: '1', sort: '-a', cursor: nextCursor }, LIMITS)),
    ).rejects.toThrow(/another query/);
    await expect(
      db.list(
        't',
        parseListQuery({ limit: '1', a: 'gt.0', sort: 'a', cursor: nextCursor }, LIMITS),
      ),
    ).rejects.toThrow(QueryError);
    await expect(
      db.list('t', parseListQuery({ limit: '1', sort: 'a', cursor: `${nextCursor}x` }, LIMITS)),
    ).rejects.toThrow(/malformed cursor/);
    const forged = Buffer.from(JSON.stringify({ v: 1, q: 'x', k: [[1, 1]] })).toString('base64url');
    await expect(
      db.list('t', parseListQuery({ limit: '1', sort: 'a', cursor: forged }, LIMITS)),
    ).rejects.toThrow(QueryError);
  });
});

describe('executeJoin', () => {
  it('uses the right index when one fits, with the same rows as a hash join', async () => {
    const rows = Array.from({ length: 30 }, (_, i) => ({
      id: `o${i}`,
      user: `u${i % 7}`,
      total: i,
    }));
    const users = Array.from({ length: 10 }, (_, i) => ({ id: `u${i}` }));
    const plain = StorageService.standalone({});
    const indexed = StorageService.standalone({});
    for (const db of [plain, indexed]) {
      await db.createMany('users', users);
      await db.createMany('orders', rows);
    }
    await indexed.createIndex('orders', 'user', false);
    // Updating a key moves the record to the end of its index bucket: order must still be by insertion.
    await indexed.patch('orders', 'o0', { user: 'u1' });
    await plain.patch('orders', 'o0', { user: 'u1' });
    const tables = { left: 'users', right: 'orders', leftKey: ['id'], rightKey: ['user'] };

    for (const type of ['inner', 'left', 'semi', 'anti', 'full', 'right']) {
      const query = parseJoinQuery(
        { type, 'right.total': 'gt.3', limit: '1000' },
        { defaultLimit: 100, maxLimit: 10000 },
      );
      const viaHash = await plain.join(tables, query);
      const viaIndex = await indexed.join(tables, query);

      const rowIds = (items: readonly unknown[]) =>
        (items as { left: Rec | null; right?: Rec | null }[]).map((row) => [
          row.left?.id,
          row.right?.id,
        ]);
      expect({ type, rows: rowIds(viaIndex.items) }).toEqual({ type, rows: rowIds(viaHash.items) });
      expect(rowIds(viaIndex.items).length).toBeGreaterThan(0);
      expect(viaHash.plan).toContain('join=hash');
      if (type !== 'full' && type !== 'right')
        expect(viaIndex.plan).toContain('join=index(right.user)');
    }
  });

  it('pages a join with cursors, visiting every row once', async () => {
    const db = StorageService.standalone({});
    await db.createMany(
      'l',
      Array.from({ length: 9 }, (_, i) => ({ id: `l${i}`, k: i % 4 })),
    );
    await db.createMany(
      'r',
      Array.from({ length: 12 }, (_, i) => ({ id: `r${i}`, k: i % 5, v: i })),
    );
    const tables = { left: 'l', right: 'r', leftKey: ['k'], rightKey: ['k'] };
    const limits = { defaultLimit: 100, maxLimit: 10000 };

    for (const type of ['inner', 'left', 'right', 'full', 'semi', 'anti']) {
      for (const sort of [undefined, '-right.v', 'left.k,right.id']) {
        const base = { type, limit: '2', ...(sort ? { sort } : {}) };
        const all = (await db.join(tables, parseJoinQuery({ ...base, limit: '1000' }, limits)))
          .items;
        const seen: unknown[] = [];
        let cursor: string | undefined;
        do {
          const page = await db.join(
            tables,
            parseJoinQuery({ ...base, ...(cursor ? { cursor } : {}) }, limits),
          );
          seen.push(...page.items);
          cursor = page.nextCursor;
        } while (cursor !== undefined);
        expect({ type, sort, seen }).toEqual({ type, sort, seen: all });

        // limit=all gives the same rows; from a page's cursor on, the rest of them.
        const whole = await db.joinAll(tables, parseJoinQuery({ ...base, limit: 'all' }, limits));
        expect({ type, sort, rows: drain(whole.rows) }).toEqual({ type, sort, rows: all });
        const first = await db.join(tables, parseJoinQuery(base, limits));
        const rest = await db.joinAll(
          tables,
          parseJoinQuery({ ...base, limit: 'all', cursor: first.nextCursor }, limits),
        );
        expect({ type, sort, rows: drain(rest.rows) }).toEqual({ type, sort, rows: all.slice(2) });
        const skipped = await db.joinAll(
          tables,
          parseJoinQuery({ ...base, limit: 'all', offset: '3' }, limits),
        );
        expect({ type, sort, rows: drain(skipped.rows) }).toEqual({
          type,
          sort,
          rows: all.slice(3),
        });
      }
    }
  });
});
