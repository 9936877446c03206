import type { INestApplication } from '@nestjs/common';
import { STATUS_CODES } from 'node:http';
import request from 'supertest';
import { DatabaseCore } from '../src/database/database-core';
import { PersistenceService } from '../src/database/persistence/persistence.service';
import { IdempotencyStore } from '../src/idempotency/idempotency.store';
import { tempDirs } from './helpers/temp-dirs';
import { createTestApp, PROBLEM_JSON } from './helpers/test-app';

type Http = ReturnType<INestApplication['getHttpServer']>;

/** Generous: these specs start several apps and must pass on a busy 2-core machine. */
const TIMEOUT_MS = 60_000;
jest.setTimeout(TIMEOUT_MS);

/** Headers each request gets for itself; a replay must carry everything else of the first. */
const PER_REQUEST = ['x-request-id', 'date', 'connection', 'idempotency-replayed'];

function answerHeaders(res: request.Response): Record<string, unknown> {
  const headers: Record<string, unknown> = { ...res.headers };
  for (const name of PER_REQUEST) delete headers[name];
  return headers;
}

/** How many records `table` holds (404 counts as none). */
async function countOf(http: Http, table: string): Promise<number> {
  const res = await request(http).get(`/api/v1/data/${table}`);
  return res.status === 404 ? 0 : Number(res.headers['x-total-count']);
}

/** Asserts a whole problem-details answer. */
function expectProblem(
  res: request.Response,
  [status, code, detail, instance]: [number, string, string, string],
): void {
  const type = `urn:memdb:problem:${code.toLowerCase().replaceAll('_', '-')}`;
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(PROBLEM_JSON);
  expect(res.body).toEqual({ type, title: STATUS_CODES[status], status, detail, code, instance });
}

/**
 * Holds every write at the storage's gate, as a compaction does, until `release()` resolves:
 * a write in flight stays in flight, deterministically.
 */
function holdWrites(app: INestApplication): { release: () => Promise<void> } {
  let open!: () => void;
  const holding = app
    .get(DatabaseCore)
    .exclusive(() => new Promise<void>((resolve) => (open = resolve)));
  return {
    release: () => {
      open();
      return holding;
    },
  };
}

/** Polls `check` until it holds: waits for an event, not for a fixed time. */
async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + TIMEOUT_MS / 2;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Runs `test` on an app of its own with `env`, closed afterwards whatever happens. */
async function withApp(
  env: Record<string, string>,
  test: (app: INestApplication, http: Http) => Promise<void>,
): Promise<void> {
  const app = await createTestApp({ env });
  try {
    await test(app, app.getHttpServer());
  } finally {
    await app.close();
  }
}

/** Writes as `a`, as `b`, then as `a` again: `b` runs anew, and only `a`'s repeat is replayed. */
async function expectKeptApart(
  send: (who: string) => request.Test,
  a: string,
  b: string,
): Promise<void> {
  const first = await send(a).expect(201);
  const other = await send(b).expect(201);
  const again = await send(a).expect(201);

  expect(other.headers['idempotency-replayed']).toBeUndefined();
  expect(other.body.id).not.toBe(first.body.id);
  expect(again.headers['idempotency-replayed']).toBe('true');
  expect(again.body.id).toBe(first.body.id);
}

describe('Idempotency-Key on record writes', () => {
  let app: INestApplication;
  let http: Http;

  beforeAll(async () => {
    app = await createTestApp({ env: { LOCK_TIMEOUT_MS: '30000' } });
    http = app.getHttpServer();
  });

  afterAll(() => app.close());

  describe('POST /api/v1/data/:table', () => {
    it('replays a created record: same status, id, Location, ETag and body, and stores it once', async () => {
      const first = await request(http)
        .post('/api/v1/data/single')
        .set('Idempotency-Key', 'create-1')
        .send({ title: 'once' })
        .expect(201);
      const again = await request(http)
        .post('/api/v1/data/single')
        .set('Idempotency-Key', 'create-1')
        .set('X-Request-Id', 'the-retry')
        .send({ title: 'once' })
        .expect(201);

      expect(first.headers['idempotency-replayed']).toBeUndefined();
      expect(again.headers['idempotency-replayed']).toBe('true');
      expect(again.text).toBe(first.text);
      expect(again.body.id).toBe(first.body.id);
      expect(again.headers.location).toBe(`/api/v1/data/single/${first.body.id}`);
      expect(again.headers.etag).toBe(first.headers.etag);
      expect(answerHeaders(again)).toEqual(answerHeaders(first));
      // Per-request headers are the repeat's own.
      expect(again.headers['x-request-id']).toBe('the-retry');
      expect(await countOf(http, 'single')).toBe(1);
    });

    it('replays a bulk write, writing its records once', async () => {
      const batch = [{ id: 'b1' }, { id: 'b2' }, { id: 'b3' }];
      const first = await request(http)
        .post('/api/v1/data/bulk')
        .set('Idempotency-Key', 'bulk-1')
        .send(batch)
        .expect(201);
      const again = await request(http)
        .post('/api/v1/data/bulk')
        .set('Idempotency-Key', 'bulk-1')
        .send(batch)
        .expect(201);

      expect(again.headers['idempotency-replayed']).toBe('true');
      expect(again.body).toEqual(first.body);
      expect(await countOf(http, 'bulk')).toBe(3);
    });

    it('replays a stored 409, even once the conflict is gone', async () => {
      await request(http).post('/api/v1/data/dups').send({ id: 'taken' }).expect(201);
      const first = await request(http)
        .post('/api/v1/data/dups')
        .set('Idempotency-Key', 'dup-1')
        .send({ id: 'taken', v: 2 })
        .expect(409);
      await request(http).delete('/api/v1/data/dups/taken').expect(204);

      const again = await request(http)
        .post('/api/v1/data/dups')
        .set('Idempotency-Key', 'dup-1')
        .send({ id: 'taken', v: 2 })
        .expect(409);

      expect(again.headers['content-type']).toMatch(PROBLEM_JSON);
      expect(again.headers['idempotency-replayed']).toBe('true');
      expect(again.body).toEqual(first.body);
      expect(again.body.code).toBe('DUPLICATE_RECORD');
      await request(http).get('/api/v1/data/dups/taken').expect(404);
    });

    it('replays a 400 from validation of the body', async () => {
      const first = await request(http)
        .post('/api/v1/data/users')
        .set('Idempotency-Key', 'invalid-user')
        .send({ email: 'nope', full_name: 'X', age: 1 })
        .expect(400);
      const again = await request(http)
        .post('/api/v1/data/users')
        .set('Idempotency-Key', 'invalid-user')
        .send({ email: 'nope', full_name: 'X', age: 1 })
        .expect(400);

      expect(again.headers['idempotency-replayed']).toBe('true');
      expect(again.body).toEqual(first.body);
    });

    it('leaves requests without the header alone: two POSTs write two records', async () => {
      const first = await request(http).post('/api/v1/data/plain').send({ n: 1 }).expect(201);
      const second = await request(http).post('/api/v1/data/plain').send({ n: 1 }).expect(201);

      expect(second.body.id).not.toBe(first.body.id);
      expect(second.headers['idempotency-replayed']).toBeUndefined();
      expect(await countOf(http, 'plain')).toBe(2);
    });
  });

  describe('PUT, PATCH and DELETE /api/v1/data/:table/:id', () => {
    it('replays a PUT and a PATCH without writing again (same updated_at and ETag)', async () => {
      await request(http).post('/api/v1/data/edits').send({ id: 'e', n: 0 }).expect(201);
      for (const [method, key, body] of [
        ['put', 'put-1', { n: 1 }],
        ['patch', 'patch-1', { m: 2 }],
      ] as const) {
        const first = await request(http)
          [method]('/api/v1/data/edits/e')
          .set('Idempotency-Key', key)
          .send(body)
          .expect(200);
        const again = await request(http)
          [method]('/api/v1/data/edits/e')
          .set('Idempotency-Key', key)
          .send(body)
          .expect(200);

        expect(again.headers['idempotency-replayed']).toBe('true');
        expect(again.body).toEqual(first.body);
        expect(again.headers.etag).toBe(first.headers.etag);
        const stored = await request(http).get('/api/v1/data/edits/e').expect(200);
        expect(stored.body.updated_at).toBe(first.body.updated_at);
      }
    });

    it('replays a DELETE as 204, not 404', async () => {
      await request(http).post('/api/v1/data/gone').send({ id: 'g' }).expect(201);
      await request(http).delete('/api/v1/data/gone/g').set('Idempotency-Key', 'del-1').expect(204);

      const again = await request(http)
        .delete('/api/v1/data/gone/g')
        .set('Idempotency-Key', 'del-1')
        .expect(204);

      expect(again.headers['idempotency-replayed']).toBe('true');
      expect(again.text).toBe('');
    });

    it('replays a stored 404, even once the record exists', async () => {
      const first = await request(http)
        .delete('/api/v1/data/later/l')
        .set('Idempotency-Key', 'del-missing')
        .expect(404);
      await request(http).post('/api/v1/data/later').send({ id: 'l' }).expect(201);

      const again = await request(http)
        .delete('/api/v1/data/later/l')
        .set('Idempotency-Key', 'del-missing')
        .expect(404);

      expect(again.headers['idempotency-replayed']).toBe('true');
      expect(again.body).toEqual(first.body);
      await request(http).get('/api/v1/data/later/l').expect(200);
    });
  });

  describe('a key reused for another request', () => {
    beforeAll(async () => {
      await request(http)
        .post('/api/v1/data/reuse')
        .set('Idempotency-Key', 'reused')
        .send({ id: 'r', v: 1 })
        .expect(201);
    });

    it.each([
      ['another body', 'post', '/api/v1/data/reuse', { id: 'r', v: 2 }],
      ['another path', 'post', '/api/v1/data/elsewhere', { id: 'r', v: 1 }],
      ['another method', 'put', '/api/v1/data/reuse/r', { id: 'r', v: 1 }],
    ] as const)(
      'answers 422 IDEMPOTENCY_KEY_REUSED for %s, writing nothing',
      async (_, method, path, body) => {
        const res = await request(http)
          [method](path)
          .set('Idempotency-Key', 'reused')
          .send(body)
          .expect(422);

        expectProblem(res, [
          422,
          'IDEMPOTENCY_KEY_REUSED',
          'This Idempotency-Key was used for a different request (method, path or body); use a new key',
          path,
        ]);
        expect(await countOf(http, 'elsewhere')).toBe(0);
        const stored = await request(http).get('/api/v1/data/reuse/r').expect(200);
        expect(stored.body.v).toBe(1);
      },
    );
  });

  describe('malformed keys', () => {
    it.each([
      ['empty', ''],
      ['256 characters', 'k'.repeat(256)],
      ['a space', 'a b'],
      ['a tab (a control character)', 'a\tb'],
      ['a non-ASCII character', 'caf\u00e9'],
    ])('answers 400 INVALID_IDEMPOTENCY_KEY for a key with %s, writing nothing', async (_, key) => {
      const res = await request(http)
        .post('/api/v1/data/badkeys')
        .set('Idempotency-Key', key)
        .send({ n: 1 })
        .expect(400);

      expectProblem(res, [
        400,
        'INVALID_IDEMPOTENCY_KEY',
        'Idempotency-Key must be 1 to 255 visible ASCII characters (no spaces), sent once',
        '/api/v1/data/badkeys',
      ]);
      expect(await countOf(http, 'badkeys')).toBe(0);
    });

    it('accepts 255 visible characters', async () => {
      const key = '!~'.repeat(127) + 'k';
      const send = () =>
        request(http).post('/api/v1/data/longkey').set('Idempotency-Key', key).send({ n: 1 });

      await send().expect(201);

      expect((await send().expect(201)).headers['idempotency-replayed']).toBe('true');
    });
  });

  describe('a repeat while the first request still runs', () => {
    it('answers 409 IDEMPOTENCY_IN_PROGRESS with Retry-After: 1, then replays once it is answered', async () => {
      const store = app.get(IdempotencyStore);
      const writes = holdWrites(app);
      const send = () =>
        request(http).post('/api/v1/data/slow').set('Idempotency-Key', 'slow-1').send({ n: 1 });
      const first = send().then((res) => res);
      await until(() => store.stats.running === 1, 'the first request holds its key');

      const during = await send().expect(409);
      await writes.release();
      const done = await first;
      const after = await send().expect(201);

      expect(during.headers['retry-after']).toBe('1');
      expectProblem(during, [
        409,
        'IDEMPOTENCY_IN_PROGRESS',
        'A request with this Idempotency-Key is still being processed; retry once it is answered',
        '/api/v1/data/slow',
      ]);
      expect(done.status).toBe(201);
      expect(after.headers['idempotency-replayed']).toBe('true');
      expect(after.body).toEqual(done.body);
      expect(await countOf(http, 'slow')).toBe(1);
    });
  });
});

describe('Idempotency-Key: answers that are not kept (5xx)', () => {
  it('releases the key after a 503 LOCK_TIMEOUT, so the retry runs', async () => {
    await withApp({ LOCK_TIMEOUT_MS: '50' }, async (app, http) => {
      const writes = holdWrites(app);
      const send = () =>
        request(http).post('/api/v1/data/retry').set('Idempotency-Key', 'retry-1').send({ n: 1 });

      const failed = await send().expect(503);
      await writes.release();
      const retried = await send().expect(201);

      expect(failed.body.code).toBe('LOCK_TIMEOUT');
      expect(retried.headers['idempotency-replayed']).toBeUndefined();
      expect((await send().expect(201)).headers['idempotency-replayed']).toBe('true');
    });
  });
});

describe('Idempotency-Key scope', () => {
  const ALICE = 'alice-key-0123456789abcdef';
  const BOB = 'bob-key-0123456789abcdef';

  it('keeps the answers of two API keys apart, and stores neither key nor Idempotency-Key', async () => {
    await withApp({ API_KEYS: `${ALICE}:write,${BOB}:write` }, async (app, http) => {
      const send = (apiKey: string) =>
        request(http)
          .post('/api/v1/data/scoped')
          .set('Authorization', `Bearer ${apiKey}`)
          .set('Idempotency-Key', 'shared-key-value')
          .send({ n: 1 });

      await expectKeptApart(send, ALICE, BOB);

      const kept = JSON.stringify(app.get(IdempotencyStore).export());
      for (const secret of [ALICE, BOB, 'shared-key-value']) expect(kept).not.toContain(secret);
    });
  });

  it('without API keys, keeps the answers of two client addresses apart', async () => {
    await withApp({ TRUST_PROXY: 'loopback' }, async (app, http) => {
      const send = (client: string) =>
        request(http)
          .post('/api/v1/data/byaddress')
          .set('X-Forwarded-For', client)
          .set('Idempotency-Key', 'same')
          .send({ n: 1 });

      await expectKeptApart(send, '203.0.113.1', '203.0.113.2');

      expect(JSON.stringify(app.get(IdempotencyStore).export())).not.toContain('203.0.113');
    });
  });
});

describe('Idempotency-Key bounds', () => {
  it('forgets an answer IDEMPOTENCY_TTL_MS after it was stored: the key then runs again', async () => {
    await withApp({ IDEMPOTENCY_TTL_MS: '1000' }, async (app, http) => {
      const send = () =>
        request(http).post('/api/v1/data/ttl').set('Idempotency-Key', 'ttl-1').send({ n: 1 });
      const first = await send().expect(201);
      expect((await send().expect(201)).headers['idempotency-replayed']).toBe('true');

      let later = first;
      await until(async () => {
        later = await send().expect(201);
        return later.headers['idempotency-replayed'] === undefined;
      }, 'the answer expires');

      expect(later.body.id).not.toBe(first.body.id);
      expect(await countOf(http, 'ttl')).toBe(2);
    });
  });

  it('forgets the oldest answers past IDEMPOTENCY_MAX_MB: a forgotten key runs again', async () => {
    await withApp({ IDEMPOTENCY_MAX_MB: '1' }, async (app, http) => {
      // About 300 KB each: three answers fit in 1 MiB, four do not.
      const big = (n: number) => ({ id: `big${n}`, text: 'x'.repeat(300_000) });
      const send = (n: number) =>
        request(http).post('/api/v1/data/big').set('Idempotency-Key', `big-${n}`).send(big(n));
      for (const n of [1, 2, 3, 4]) await send(n).expect(201);

      const newest = await send(4).expect(201);
      const oldest = await send(1).expect(409);

      expect(newest.headers['idempotency-replayed']).toBe('true');
      // Forgotten, so it ran again: the record it created exists now, hence the 409.
      expect(oldest.headers['idempotency-replayed']).toBeUndefined();
      expect(oldest.body.code).toBe('DUPLICATE_RECORD');
      expect(app.get(IdempotencyStore).stats.bytes).toBeLessThanOrEqual(1024 * 1024);
    });
  });
});

describe('Idempotency-Key and CORS', () => {
  it('allows the header in preflights and exposes Idempotency-Replayed', async () => {
    const origin = 'https://app.example.com';
    await withApp({ CORS_ORIGINS: origin }, async (app, http) => {
      const preflight = await request(http)
        .options('/api/v1/data/cors')
        .set('Origin', origin)
        .set('Access-Control-Request-Method', 'POST')
        .set('Access-Control-Request-Headers', 'content-type,idempotency-key')
        .expect(204);
      const send = () =>
        request(http)
          .post('/api/v1/data/cors')
          .set('Origin', origin)
          .set('Idempotency-Key', 'cors-1')
          .send({ n: 1 })
          .expect(201);
      await send();
      const replayed = await send();

      expect(preflight.headers['access-control-allow-headers']).toContain('idempotency-key');
      expect(replayed.headers['idempotency-replayed']).toBe('true');
      expect(replayed.headers['access-control-allow-origin']).toBe(origin);
      expect(replayed.headers['access-control-expose-headers']).toContain('Idempotency-Replayed');
    });
  });
});

describe('Idempotency-Key across a restart (DATA_DIR)', () => {
  const dirs = tempDirs('memdb-idem-');

  it.each([
    ['the journal', false],
    ['a snapshot', true],
  ])('replays an answer kept in %s after a restart', async (_, compact) => {
    const dir = dirs();
    let app = await createTestApp({ env: { DATA_DIR: dir } });
    let http: Http = app.getHttpServer();
    const first = await request(http)
      .post('/api/v1/data/kept')
      .set('Idempotency-Key', 'restart-1')
      .send({ title: 'once' })
      .expect(201);
    const failed = await request(http)
      .delete('/api/v1/data/kept/none')
      .set('Idempotency-Key', 'restart-2')
      .expect(404);
    // The answer is stored once it is sent: wait for the store to hold both.
    const store = app.get(IdempotencyStore);
    while (store.stats.answers < 2) await new Promise((resolve) => setImmediate(resolve));
    if (compact) await app.get(PersistenceService).compact();
    await app.close();

    app = await createTestApp({ env: { DATA_DIR: dir } });
    http = app.getHttpServer();
    try {
      const again = await request(http)
        .post('/api/v1/data/kept')
        .set('Idempotency-Key', 'restart-1')
        .send({ title: 'once' })
        .expect(201);
      expect(again.headers['idempotency-replayed']).toBe('true');
      expect(again.body).toEqual(first.body);
      expect(answerHeaders(again)).toEqual(answerHeaders(first));
      expect(await countOf(http, 'kept')).toBe(1);
      const missing = await request(http)
        .delete('/api/v1/data/kept/none')
        .set('Idempotency-Key', 'restart-2')
        .expect(404);
      expect(missing.headers['idempotency-replayed']).toBe('true');
      expect(missing.headers['x-memdb-seq']).toBe(failed.headers['x-memdb-seq']);
      await request(http)
        .post('/api/v1/data/kept')
        .set('Idempotency-Key', 'restart-1')
        .send({ title: 'other' })
        .expect(422);
    } finally {
      await app.close();
    }
  });
});
