import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { PersistenceService } from '../src/database/persistence/persistence.service';
import { bytes } from './helpers/bodies';
import { tempDirs } from './helpers/temp-dirs';
import { createTestApp, PROBLEM_JSON } from './helpers/test-app';

/**
 * Issue 11's client contract: every answer under /api/v1 says where it stands in the log
 * (X-Memdb-Seq), a request can wait for a position (X-Memdb-Min-Seq), and positions and cursors
 * keep their meaning across restarts.
 */
jest.setTimeout(60_000);
const freshDir = tempDirs('memdb-seq-');

type Http = ReturnType<INestApplication['getHttpServer']>;

const seqOf = (res: request.Response): number => {
  const value = res.headers['x-memdb-seq'] as string | undefined;
  expect(value).toMatch(/^\d+$/);
  return Number(value);
};

const nextCursor = (res: request.Response): string | undefined =>
  /cursor=([^&>]+)/.exec((res.headers.link as string | undefined) ?? '')?.[1];

describe('X-Memdb-Seq', () => {
  let app: INestApplication;
  let http: Http;
  let before: number;

  beforeAll(async () => {
    before = Date.now() * 1000;
    app = await createTestApp({ env: { CORS_ORIGINS: 'http://app.example' } });
    http = app.getHttpServer();
  });
  afterAll(() => app.close());

  it('starts above the clock in microseconds without DATA_DIR, so no earlier run is taken for this one', async () => {
    const res = await request(http).post('/api/v1/data/s').send({ id: 'first' }).expect(201);

    expect(seqOf(res)).toBeGreaterThan(before);
  });

  it('gives every write, logged or failed in apply, a later sequence, and reads the state at it', async () => {
    const created = await request(http).post('/api/v1/data/s').send({ id: 'a', n: 1 }).expect(201);
    const duplicate = await request(http).post('/api/v1/data/s').send({ id: 'a' }).expect(409);
    const patched = await request(http).patch('/api/v1/data/s/a').send({ n: 2 }).expect(200);
    const stale = await request(http)
      .put('/api/v1/data/s/a')
      .set('If-Match', '"nope"')
      .send({ n: 3 })
      .expect(412);
    const missing = await request(http).delete('/api/v1/data/s/none').expect(404);
    const deleted = await request(http).delete('/api/v1/data/s/a').expect(204);

    const seqs = [created, duplicate, patched, stale, missing, deleted].map(seqOf);
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBeGreaterThan(seqs[i - 1]);
    expect(duplicate.headers['content-type']).toMatch(PROBLEM_JSON);

    // Idle: every read reflects the last write's sequence.
    const last = seqs.at(-1)!;
    await request(http).post('/api/v1/data/t').send({ id: 'x', k: 'x' }).expect(201);
    const now = seqOf(await request(http).get('/api/v1/data/t/x').expect(200));
    for (const url of [
      '/api/v1/data/t',
      '/api/v1/data/t?limit=all',
      '/api/v1/tables',
      '/api/v1/tables/t',
      '/api/v1/tables/t/indexes',
      '/api/v1/join/t/t/k',
      '/api/v1/data/s/a',
      '/api/v1/data/nothing',
    ]) {
      const res = await request(http).get(url);
      expect([200, 404]).toContain(res.status);
      expect(seqOf(res)).toBe(now);
    }
    expect(now).toBeGreaterThan(last);
    expect(seqOf(await request(http).post('/api/v1/admin/compact').expect(204))).toBe(now);
  });

  it('is exposed to cross-origin clients', async () => {
    const res = await request(http)
      .get('/api/v1/data/t')
      .set('Origin', 'http://app.example')
      .expect(200);

    expect(String(res.headers['access-control-expose-headers'])).toMatch(/X-Memdb-Seq/);
  });
});

describe('X-Memdb-Min-Seq', () => {
  let app: INestApplication;
  let http: Http;

  beforeAll(async () => {
    app = await createTestApp({ env: { MIN_SEQ_WAIT_MS: '300' } });
    http = app.getHttpServer();
  });
  afterAll(() => app.close());

  it('serves at once a position already applied', async () => {
    const write = await request(http).post('/api/v1/data/m').send({ id: 'a' }).expect(201);

    const res = await request(http)
      .get('/api/v1/data/m/a')
      .set('X-Memdb-Min-Seq', String(seqOf(write)))
      .expect(200);

    expect(seqOf(res)).toBeGreaterThanOrEqual(seqOf(write));
  });

  it('answers 503 SEQ_NOT_REACHED with Retry-After when the position is not applied in MIN_SEQ_WAIT_MS', async () => {
    const now = seqOf(await request(http).get('/api/v1/tables').expect(200));

    const res = await request(http)
      .get('/api/v1/data/m')
      .set('X-Memdb-Min-Seq', String(now + 1000))
      .expect(503);

    expect(res.headers['content-type']).toMatch(PROBLEM_JSON);
    expect(res.headers['retry-after']).toMatch(/^\d+$/);
    expect(res.body).toMatchObject({ status: 503, code: 'SEQ_NOT_REACHED' });
    // Nothing was written by a write refused this way.
    await request(http)
      .post('/api/v1/data/m')
      .set('X-Memdb-Min-Seq', String(now + 1000))
      .send({ id: 'never' })
      .expect(503);
    await request(http).get('/api/v1/data/m/never').expect(404);
  });

  it.each(['abc', '-1', '1.5', '1,2', '', '99999999999999999999'])(
    'refuses %p with 400',
    async (value) => {
      const res = await request(http)
        .get('/api/v1/data/m')
        .set('X-Memdb-Min-Seq', value)
        .expect(400);

      expect(res.body).toMatchObject({ status: 400, code: 'INVALID_MIN_SEQ' });
    },
  );
});

describe('X-Memdb-Min-Seq after CORS, throttling and API keys', () => {
  const KEY = 'k'.repeat(32);
  let app: INestApplication;
  let http: Http;

  beforeAll(async () => {
    app = await createTestApp({
      env: {
        MIN_SEQ_WAIT_MS: '100',
        CORS_ORIGINS: 'http://app.example',
        API_KEYS: `${KEY}:admin`,
      },
    });
    http = app.getHttpServer();
  });
  afterAll(() => app.close());

  it('answers 503 and 400 with CORS headers, so a browser can read Retry-After and X-Memdb-Seq', async () => {
    const late = await request(http)
      .get('/api/v1/tables')
      .set('Origin', 'http://app.example')
      .set('X-API-Key', KEY)
      .set('X-Memdb-Min-Seq', '9000000000000000')
      .expect(503);
    const bad = await request(http)
      .get('/api/v1/tables')
      .set('Origin', 'http://app.example')
      .set('X-API-Key', KEY)
      .set('X-Memdb-Min-Seq', 'x')
      .expect(400);

    for (const res of [late, bad]) {
      expect(res.headers['access-control-allow-origin']).toBe('http://app.example');
      expect(seqOf(res)).toBeGreaterThan(0);
    }
  });

  it('refuses a request without a key with 401 at once: it is not held, nor told the log position', async () => {
    const res = await request(http)
      .get('/api/v1/tables')
      .set('X-Memdb-Min-Seq', '9000000000000000')
      .expect(401);

    expect(res.body).toMatchObject({ code: 'UNAUTHENTICATED' });
  });
});

describe('X-Memdb-Min-Seq waiting', () => {
  let app: INestApplication;
  let http: Http;

  beforeAll(async () => {
    app = await createTestApp({ env: { MIN_SEQ_WAIT_MS: '30000' } });
    http = app.getHttpServer();
  });
  afterAll(() => app.close());

  it('holds a read until the position is applied, then reads the state that includes it', async () => {
    const now = seqOf(await request(http).get('/api/v1/tables').expect(200));
    let settled = false;
    const read = request(http)
      .get('/api/v1/data/w/late')
      .set('X-Memdb-Min-Seq', String(now + 1))
      .then((res) => {
        settled = true;
        return res;
      });
    // It cannot answer before the write below exists; give it time to show that it waits.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(settled).toBe(false);

    await request(http).post('/api/v1/data/w').send({ id: 'late' }).expect(201);
    const res = await read;

    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: 'late' });
    expect(seqOf(res)).toBeGreaterThanOrEqual(now + 1);
  });

  it('does not run a write whose client left while it waited', async () => {
    await request(http).post('/api/v1/data/w').send({ id: 'kept' }).expect(201);
    const now = seqOf(await request(http).get('/api/v1/tables').expect(200));
    // A DELETE: no body to read, so only the wait stands between the client leaving and the write.
    const abandoned = request(http)
      .delete('/api/v1/data/w/kept')
      .set('X-Memdb-Min-Seq', String(now + 1));
    const settled = abandoned.then(
      () => undefined,
      () => undefined,
    );
    // Let it reach the server and wait there, then leave.
    await new Promise((resolve) => setTimeout(resolve, 300));
    abandoned.abort();
    await settled;

    await request(http).post('/api/v1/data/w').send({ id: 'advance' }).expect(201);
    await request(http).get('/api/v1/tables').expect(200);

    await request(http).get('/api/v1/data/w/kept').expect(200);
  });

  it('holds a write until the position is applied', async () => {
    const now = seqOf(await request(http).get('/api/v1/tables').expect(200));
    const write = request(http)
      .post('/api/v1/data/w')
      .set('X-Memdb-Min-Seq', String(now + 1))
      .send({ id: 'second' });
    const first = request(http).post('/api/v1/data/w').send({ id: 'first' });

    const [w, f] = await Promise.all([write, first]);

    expect([w.status, f.status]).toEqual([201, 201]);
    expect(seqOf(w)).toBeGreaterThan(seqOf(f));
  });
});

describe('Positions across restarts (DATA_DIR)', () => {
  it('continues numbering after a restart, a compaction and a restore', async () => {
    const dir = freshDir();
    let app = await createTestApp({ env: { DATA_DIR: dir } });
    let http = app.getHttpServer();
    const first = seqOf(await request(http).post('/api/v1/data/r').send({ id: 'a' }).expect(201));
    await app.close();

    app = await createTestApp({ env: { DATA_DIR: dir } });
    http = app.getHttpServer();
    expect(seqOf(await request(http).get('/api/v1/data/r/a').expect(200))).toBe(first);
    const second = seqOf(await request(http).post('/api/v1/data/r').send({ id: 'b' }).expect(201));
    expect(second).toBeGreaterThan(first);
    // A compaction through the API says where the log stands, as every answer does.
    const compacted = await request(http).post('/api/v1/admin/compact').expect(204);
    expect(seqOf(compacted)).toBe(second);
    await app.close();

    app = await createTestApp({ env: { DATA_DIR: dir } });
    http = app.getHttpServer();
    expect(seqOf(await request(http).get('/api/v1/data/r/b').expect(200))).toBe(second);
    const backup = await bytes(request(http).get('/api/v1/admin/backup')).expect(200);
    const third = seqOf(await request(http).post('/api/v1/data/r').send({ id: 'c' }).expect(201));
    const restored = await request(http)
      .post('/api/v1/admin/restore')
      .set('Content-Type', 'application/x-ndjson')
      .send(backup.body as Buffer)
      .expect(200);
    expect(seqOf(restored)).toBeGreaterThan(third);
    const page = await request(http).get('/api/v1/data/r?limit=1').expect(200);
    const cursor = nextCursor(page)!;
    await app.close();

    // The restore's journal starts where numbering stood, though no write followed it.
    app = await createTestApp({ env: { DATA_DIR: dir } });
    http = app.getHttpServer();
    try {
      await request(http).get('/api/v1/data/r/c').expect(404);
      // The restored table is the same table after the restart: its cursors hold.
      const rest = await request(http).get(`/api/v1/data/r?limit=1&cursor=${cursor}`).expect(200);
      expect((rest.body as { id: string }[]).map((r) => r.id)).toEqual(['b']);
      const after = await request(http).post('/api/v1/data/r').send({ id: 'd' }).expect(201);
      expect(seqOf(after)).toBeGreaterThan(seqOf(restored));
    } finally {
      await app.close();
    }
  });

  it('keeps list and join cursors valid across a restart, from the journal and from a snapshot', async () => {
    const dir = freshDir();
    let app = await createTestApp({ env: { DATA_DIR: dir } });
    let http = app.getHttpServer();
    await request(http)
      .post('/api/v1/data/c')
      .send(Array.from({ length: 8 }, (_, i) => ({ id: `c${i}`, g: i % 2 })))
      .expect(201);
    // Deleted and re-added records: insertion order is no longer the order of ids.
    await request(http).delete('/api/v1/data/c/c1').expect(204);
    await request(http).post('/api/v1/data/c').send({ id: 'c1', g: 1 }).expect(201);
    await request(http)
      .post('/api/v1/data/g')
      .send([{ id: 'g0' }, { id: 'g1' }])
      .expect(201);
    const listUrl = '/api/v1/data/c?limit=3&fields=id';
    const joinUrl = '/api/v1/join/c/g/g?rightKey=id&limit=3&type=left';
    const listPage = await request(http).get(listUrl).expect(200);
    const joinPage = await request(http).get(joinUrl).expect(200);
    const listCursor = nextCursor(listPage)!;
    const joinCursor = nextCursor(joinPage)!;
    const expectedList = (await request(http).get(`${listUrl}&cursor=${listCursor}`).expect(200))
      .body as unknown;
    const expectedJoin = (await request(http).get(`${joinUrl}&cursor=${joinCursor}`).expect(200))
      .body as unknown;
    await app.close();

    for (const compactFirst of [false, true]) {
      app = await createTestApp({ env: { DATA_DIR: dir } });
      http = app.getHttpServer();
      try {
        const list = await request(http).get(`${listUrl}&cursor=${listCursor}`).expect(200);
        const join = await request(http).get(`${joinUrl}&cursor=${joinCursor}`).expect(200);
        expect(list.body).toEqual(expectedList);
        expect(join.body).toEqual(expectedJoin);
        if (compactFirst) {
          // A table dropped and created again is another table: its old cursors are refused.
          await request(http).delete('/api/v1/tables/c').expect(204);
          await request(http).post('/api/v1/data/c').send({ id: 'c0' }).expect(201);
          const refused = await request(http).get(`${listUrl}&cursor=${listCursor}`).expect(400);
          expect(refused.body).toMatchObject({ code: 'INVALID_QUERY' });
        } else {
          await app.get(PersistenceService).compact();
        }
      } finally {
        await app.close();
      }
    }
  });
});
