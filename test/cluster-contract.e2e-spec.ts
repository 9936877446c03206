import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { HoldingProxy } from '../src/common/throttling/redis-servers.spec-helper';
import { DatabaseCore } from '../src/database/database-core';
import { StorageService } from '../src/database/storage.service';
import { bytes, lines, NDJSON, ndjson } from './helpers/bodies';
import { deleteStream, startReplica, streamNames } from './helpers/cluster';
import { natsClusters, StopWaiting, waitFor } from './helpers/nats-cluster';
import { createTestApp, nextPageUrl, PROBLEM_JSON } from './helpers/test-app';

/**
 * Issue 12's client contract, end to end: every route of the API through three replicas of one
 * stream (in-process apps, a NATS server this file starts), as a client behind a Kubernetes
 * Service sees them: each request goes to the next replica in turn, and carries the highest
 * X-Memdb-Seq the client has seen as X-Memdb-Min-Seq (read-your-writes across replicas).
 * Reads are checked against hand-computed answers and against an embedded server holding the
 * same data (restored from a backup taken through the cluster). One replica reaches NATS
 * through a HoldingProxy, so a test can make it fall behind the log at will: that is what shows
 * X-Memdb-Min-Seq and X-Memdb-Consistency: strong at work (an idle replica is never behind
 * long enough to tell). The last test checks, from the OpenAPI document, that every operation
 * was answered here with a success and with an error.
 */
jest.setTimeout(120_000);
const startNats = natsClusters();
const streamName = streamNames('contract');

type Http = ReturnType<INestApplication['getHttpServer']>;
type Rec = Record<string, unknown> & { id: string };
type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';
/** A request's answer from a replica that lagged, and the spied call it got as far as. */
type CaughtUp = { res: request.Response; call: unknown[] };

const REPLICAS = ['replica-a', 'replica-b', 'replica-c'];
/** The replica whose NATS connection goes through a HoldingProxy. */
const LAGGING = 2;
const KEYS = {
  read: 'contract-reader-0123456789',
  write: 'contract-writer-0123456789',
  admin: 'contract-admin-0123456789',
};
const API_KEYS = Object.entries(KEYS)
  .map(([role, key]) => `${key}:${role}`)
  .join(',');

interface SendOptions {
  /** The API key sent as X-API-Key (default: the client's); null sends none. */
  readonly key?: string | null;
  /** Send X-Memdb-Min-Seq (default true, once the client has seen a sequence). */
  readonly minSeq?: boolean;
}

/**
 * A client behind a round-robin load balancer: request n goes to replica n mod 3. It sends
 * the highest X-Memdb-Seq it has seen as X-Memdb-Min-Seq, so it reads its own writes whichever
 * replica answers.
 */
class RoundRobinClient {
  /** The highest X-Memdb-Seq seen on any answer. */
  seq = 0;
  /** The replica each request went to (its index), in order. */
  readonly served: number[] = [];
  /** Every answer: method, path (no query) and status, for the coverage check. */
  readonly answers: { method: Method; path: string; status: number }[] = [];
  /** Answers that broke the sequence contract (expected to stay empty). */
  readonly broken: string[] = [];
  private turn = 0;

  constructor(
    private readonly replicas: readonly Http[],
    private readonly key: string,
  ) {}

  /** The replica the next request goes to. */
  get next(): number {
    return this.turn;
  }

  /** The replica the last request went to. */
  get last(): number {
    return this.served[this.served.length - 1];
  }

  send(method: Method, url: string, { key = this.key, minSeq = true }: SendOptions = {}) {
    const index = this.turn;
    this.turn = (this.turn + 1) % this.replicas.length;
    this.served.push(index);
    const test = request(this.replicas[index])[method](url);
    if (key !== null) test.set('X-API-Key', key);
    const min = minSeq && this.seq > 0 ? this.seq : undefined;
    if (min !== undefined) test.set('X-Memdb-Min-Seq', String(min));
    test.on('response', (res: request.Response) => this.observe(method, url, min, res));
    return test;
  }

  get(url: string, options?: SendOptions) {
    return this.send('get', url, options);
  }
  post(url: string, options?: SendOptions) {
    return this.send('post', url, options);
  }
  put(url: string, options?: SendOptions) {
    return this.send('put', url, options);
  }
  patch(url: string, options?: SendOptions) {
    return this.send('patch', url, options);
  }
  delete(url: string, options?: SendOptions) {
    return this.send('delete', url, options);
  }

  private observe(method: Method, url: string, min: number | undefined, res: request.Response) {
    const path = url.split('?')[0];
    this.answers.push({ method, path, status: res.status });
    if (!path.startsWith('/api/v1/')) return;
    const header = res.headers['x-memdb-seq'] as string | undefined;
    const seq = header !== undefined && /^\d+$/.test(header) ? Number(header) : undefined;
    const what = `${method} ${url} ${res.status}`;
    // Every answer under /api/v1 says where it stands; one served after waiting for
    // X-Memdb-Min-Seq stands at least there (401/403 are refused before the wait; a replayed
    // answer keeps the first one's X-Memdb-Seq, by design).
    const replayed = res.headers['idempotency-replayed'] === 'true';
    if (seq === undefined) this.broken.push(`${what}: no X-Memdb-Seq`);
    else if (min !== undefined && res.status < 400 && !replayed && seq < min)
      this.broken.push(`${what}: X-Memdb-Seq ${seq} below X-Memdb-Min-Seq ${min}`);
    if (seq !== undefined) this.seq = Math.max(this.seq, seq);
  }
}

const seqOf = (res: request.Response): number => {
  expect(res.headers['x-memdb-seq']).toMatch(/^\d+$/);
  return Number(res.headers['x-memdb-seq']);
};

/** Expects a problem-details answer with this status and code. */
function expectProblem(res: request.Response, status: number, code: string): void {
  expect({ status: res.status, code: res.body.code }).toEqual({ status, code });
  expect(res.headers['content-type']).toMatch(PROBLEM_JSON);
}

const pad = (i: number) => String(i).padStart(2, '0');
const NAMES = ['Ada', 'Bob', 'Cy', 'Dee', 'Eve', 'Fay', 'Gus', 'Hal', 'Ivy', 'Jo', 'Kim', 'Lu'];
/** 23 people, ages with ties (20 + 7i mod 15), every fifth without a city. */
const PEOPLE: Rec[] = Array.from({ length: 23 }, (_, i) => ({
  id: `p${pad(i)}`,
  name: `${NAMES[i % NAMES.length]} ${i}`,
  age: 20 + ((i * 7) % 15),
  ...(i % 5 === 4 ? {} : { city: ['Paris', 'London', 'Rome'][i % 3] }),
}));
/** 30 purchases: of p00–p16 (p17–p22 have none), the last three of nobody. */
const PURCHASES: Rec[] = Array.from({ length: 30 }, (_, i) => ({
  id: `o${pad(i)}`,
  person_id: i >= 27 ? `ghost-${i}` : `p${pad(i % 17)}`,
  total: (i * 13) % 40,
}));

const ada = { email: 'ada@example.com', full_name: 'Ada Lovelace', age: 36 };
const order = (user_id: string, quantity = 1) => ({
  user_id,
  product_name: 'Loom',
  quantity,
  total_price: 10 * quantity,
  order_date: '2026-11-25T20:00:00Z',
});

describe('Issue 12 contract: every route through a round robin of three replicas', () => {
  const stream = streamName();
  let natsUrl: string | undefined;
  const apps: INestApplication[] = [];
  let client: RoundRobinClient;

  /** Between the third replica and NATS: holding it makes that replica fall behind the log. */
  let proxy: HoldingProxy | undefined;

  beforeAll(async () => {
    natsUrl = (await startNats({ servers: 1 })).urls[0];
    const [host, port] = new URL(natsUrl).host.split(':');
    proxy = new HoldingProxy({ host, port: Number(port) });
    const proxied = `nats://127.0.0.1:${await proxy.listen()}`;
    for (const [i, name] of REPLICAS.entries()) {
      apps.push(
        await startReplica({
          natsUrl: i === LAGGING ? proxied : natsUrl,
          stream,
          name,
          // Generous: a busy machine must not turn a wait for a position into a 503.
          env: { API_KEYS, MIN_SEQ_WAIT_MS: '20000' },
        }),
      );
    }
    client = new RoundRobinClient(
      apps.map((app) => app.getHttpServer()),
      KEYS.admin,
    );
  });
  afterAll(async () => {
    proxy?.release();
    await Promise.all(apps.map((app) => app.close()));
    await proxy?.close();
    if (natsUrl !== undefined) await deleteStream(natsUrl, stream);
  });

  /**
   * Runs `step` while the lagging replica hears nothing from NATS (its own requests still
   * reach NATS), the client's next request going to the replica before it. `step` gets
   * `catchUp(request)` for a request it sends to the lagging replica: once that request got as
   * far as the first call of the spy `watch` puts on the replica, the replica hears NATS again
   * and catches up; resolves with the answer and the spied call's arguments. It fails if the
   * answer comes before the call.
   */
  async function whileLagging(
    watch: (replica: INestApplication) => jest.SpyInstance,
    step: (catchUp: (request: PromiseLike<request.Response>) => Promise<CaughtUp>) => Promise<void>,
  ): Promise<void> {
    const before = (LAGGING + REPLICAS.length - 1) % REPLICAS.length;
    while (client.next !== before) await client.get('/api/v1/tables').expect(200);
    // It is behind from here on, not before: it has applied all the client has seen.
    const storage = apps[LAGGING].get(StorageService);
    expect(await storage.waitForSeq(client.seq, 60_000)).toBe(true);
    proxy!.hold();
    const spy = watch(apps[LAGGING]);
    const catchUp = async (sent: PromiseLike<request.Response>): Promise<CaughtUp> => {
      expect(client.last).toBe(LAGGING);
      const answer = Promise.resolve(sent);
      let answered: request.Response | undefined;
      void answer.then((res) => (answered = res));
      const call = await waitFor(
        `a call of ${spy.getMockName()}`,
        async () => {
          if (spy.mock.calls.length > 0) return spy.mock.calls[0] as unknown[];
          if (answered !== undefined)
            throw new StopWaiting(
              `answered ${answered.status} before a call of ${spy.getMockName()}`,
            );
          return undefined;
        },
        30_000,
      );
      proxy!.release();
      return { res: await answer, call };
    };
    try {
      await step(catchUp);
    } finally {
      spy.mockRestore();
      proxy!.release();
    }
  }

  /** What a client that does not carry the position reads on the lagging replica. */
  const staleRead = (url: string) =>
    request(apps[LAGGING].getHttpServer()).get(url).set('X-API-Key', KEYS.read);

  it('X-Memdb-Min-Seq: a replica behind the log waits for the write of the client before it reads', async () => {
    const waits = (app: INestApplication) =>
      jest.spyOn(app.get(StorageService), 'waitForSeq').mockName('waitForSeq');
    await whileLagging(waits, async (catchUp) => {
      const write = await client.post('/api/v1/data/lagging').send({ id: 'w1' }).expect(201);
      expectProblem(await staleRead('/api/v1/data/lagging/w1'), 404, 'TABLE_NOT_FOUND');

      const { res: read, call } = await catchUp(client.get('/api/v1/data/lagging/w1'));
      expect(call[0]).toBe(seqOf(write));
      expect(read.status).toBe(200);
      expect(read.body).toEqual(write.body);
    });
  });

  it('X-Memdb-Consistency: strong, without X-Memdb-Min-Seq, on a replica behind the log reads a write made elsewhere', async () => {
    await client.post('/api/v1/data/strong').send({ id: 's', n: 0 }).expect(201);
    const barriers = (app: INestApplication) =>
      jest.spyOn(app.get(StorageService), 'barrier').mockName('barrier');
    await whileLagging(barriers, async (catchUp) => {
      const write = await client.put('/api/v1/data/strong/s').send({ n: 1 }).expect(200);
      const stale = await staleRead('/api/v1/data/strong/s').expect(200);
      expect(stale.body).toMatchObject({ n: 0 });

      const { res: read } = await catchUp(
        client.get('/api/v1/data/strong/s', { minSeq: false }).set('X-Memdb-Consistency', 'strong'),
      );
      expect(read.status).toBe(200);
      expect(read.body).toMatchObject({ n: 1 });
      expect(seqOf(read)).toBeGreaterThan(seqOf(write));
    });
    // And on every replica in turn, as they are.
    for (let n = 2; n <= 4; n++) {
      const write = await client.put('/api/v1/data/strong/s').send({ n }).expect(200);
      const read = await client
        .get('/api/v1/data/strong/s', { minSeq: false })
        .set('X-Memdb-Consistency', 'strong')
        .expect(200);
      expect(read.body).toMatchObject({ n });
      expect(seqOf(read)).toBeGreaterThanOrEqual(seqOf(write));
    }
  });

  it('judges a conditional write through a replica behind the log at its place in the log', async () => {
    const created = await client.post('/api/v1/data/cas').send({ id: 'c', n: 0 }).expect(201);
    const submits = (app: INestApplication) =>
      jest.spyOn(app.get(DatabaseCore).log, 'submit').mockName('submit');
    await whileLagging(submits, async (catchUp) => {
      const put = await client.put('/api/v1/data/cas/c').send({ n: 1 }).expect(200);
      // The lagging replica has never seen this ETag; the stream has, before the patch. (Sent
      // without X-Memdb-Min-Seq, as by a client told the ETag by another: with it, the replica
      // would wait for the PUT first.)
      const { res: patched } = await catchUp(
        client
          .patch('/api/v1/data/cas/c', { minSeq: false })
          .set('If-Match', put.headers.etag)
          .send({ m: 2 }),
      );
      expect(patched.status).toBe(200);
      expect(patched.body).toEqual({ ...put.body, m: 2, updated_at: expect.any(String) });
      expect(patched.body.updated_at > put.body.updated_at).toBe(true);
      expect(seqOf(patched)).toBeGreaterThan(seqOf(put));
    });
    // The first ETag is stale everywhere.
    for (let i = 0; i < 3; i++) {
      const stale = await client.delete('/api/v1/data/cas/c').set('If-Match', created.headers.etag);
      expectProblem(stale, 412, 'PRECONDITION_FAILED');
    }
  });

  it('GET /api/v1/cluster: each replica names itself, the shared stream, and where it stands', async () => {
    const seen = [];
    for (let i = 0; i < 3; i++) {
      const res = await client.get('/api/v1/cluster', { key: KEYS.read }).expect(200);
      expect(res.body).toEqual({
        mode: 'nats',
        replica: REPLICAS[client.last],
        applied_seq: seqOf(res),
        last_seq: expect.any(Number),
        lag: expect.any(Number),
        nats: 'connected',
        stream: { name: stream, replicas: 1 },
      });
      expect(res.body.lag).toBe(res.body.last_seq - res.body.applied_seq);
      seen.push(res.body.replica);
    }
    expect(seen.sort()).toEqual(REPLICAS);

    expectProblem(await client.get('/api/v1/cluster', { key: null }), 401, 'UNAUTHENTICATED');
  });

  it('GET /health and /health/ready answer 200 on every replica, without a key', async () => {
    for (let i = 0; i < 3; i++) {
      const live = await client.get('/health', { key: null }).expect(200);
      expect(live.body).toMatchObject({ status: 'ok', info: { app: { status: 'up' } } });
      const ready = await client.get('/health/ready', { key: null }).expect(200);
      expect(ready.body).toMatchObject({
        status: 'ok',
        info: { storage: { status: 'up' }, memory_heap: { status: 'up' } },
      });
    }
  });

  it('X-Memdb-Min-Seq that is not one non-negative integer is a 400 on every replica', async () => {
    for (const value of ['abc', '-1', '1.5', '1,2']) {
      const res = await client
        .get('/api/v1/tables', { minSeq: false })
        .set('X-Memdb-Min-Seq', value);
      expectProblem(res, 400, 'INVALID_MIN_SEQ');
    }
    const [first, second] = await Promise.all(
      [0, 1].map(() =>
        client.get('/api/v1/tables').set('X-Memdb-Consistency', 'eventual').expect(400),
      ),
    );
    expect([first.body.code, second.body.code]).toEqual([
      'INVALID_CONSISTENCY',
      'INVALID_CONSISTENCY',
    ]);
  });

  describe('records', () => {
    it('creates, reads, replaces, patches and deletes a record, each step on the next replica', async () => {
      const created = await client.post('/api/v1/data/users').send(ada).expect(201);
      const user = created.body as Rec;
      expect(user).toEqual({
        ...ada,
        id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        created_at: expect.any(String),
        updated_at: user.created_at,
      });
      const url = `/api/v1/data/users/${user.id}`;
      expect(created.headers.location).toBe(url);
      const writtenOn = client.last;

      // Another replica has it, with the same ETag (versions come from the log).
      const read = await client.get(url).expect(200);
      expect(client.last).not.toBe(writtenOn);
      expect(read.body).toEqual(user);
      expect(read.headers.etag).toBe(created.headers.etag);
      const notModified = await client.get(url).set('If-None-Match', read.headers.etag);
      expect(notModified.status).toBe(304);

      const replaced = await client
        .put(url)
        .send({ ...ada, age: 37 })
        .expect(200);
      expect(replaced.body).toEqual({
        ...user,
        age: 37,
        updated_at: expect.any(String),
      });
      expect(replaced.body.updated_at > String(user.updated_at)).toBe(true);
      expect(replaced.headers.etag).not.toBe(created.headers.etag);

      // If-Match with the first ETag is stale on every replica.
      const stale = await client.patch(url).set('If-Match', created.headers.etag).send({ age: 99 });
      expectProblem(stale, 412, 'PRECONDITION_FAILED');
      const patched = await client
        .patch(url)
        .set('If-Match', replaced.headers.etag)
        .set('Content-Type', 'application/merge-patch+json')
        .send(JSON.stringify({ full_name: 'Ada King' }))
        .expect(200);
      expect(patched.body).toMatchObject({ ...ada, id: user.id, age: 37, full_name: 'Ada King' });
      await client.get(url).expect(200, patched.body);

      expectProblem(
        await client.delete(url).set('If-Match', replaced.headers.etag),
        412,
        'PRECONDITION_FAILED',
      );
      const deleted = await client.delete(url).set('If-Match', patched.headers.etag).expect(204);
      expect(deleted.text).toBe('');
      expectProblem(await client.get(url), 404, 'RECORD_NOT_FOUND');
      expectProblem(await client.delete(url), 404, 'RECORD_NOT_FOUND');
      expectProblem(await client.put(url).send(ada), 404, 'RECORD_NOT_FOUND');
    });

    it('merge-patches nested fields, null removing one, and every replica agrees', async () => {
      await client
        .post('/api/v1/data/notes')
        .send({ id: 'n1', title: 'todo', meta: { pinned: true, color: 'red' }, tags: ['a'] })
        .expect(201);
      const patched = await client
        .patch('/api/v1/data/notes/n1')
        .set('Content-Type', 'application/merge-patch+json')
        .send(JSON.stringify({ meta: { color: null, size: 2 }, tags: ['b'], title: null }))
        .expect(200);

      expect(patched.body).toEqual({
        id: 'n1',
        meta: { pinned: true, size: 2 },
        tags: ['b'],
        created_at: expect.any(String),
        updated_at: expect.any(String),
      });
      for (let i = 0; i < 3; i++) {
        await client.get('/api/v1/data/notes/n1').expect(200, patched.body);
      }
    });

    it('refuses invalid, duplicate and unauthorised writes the same way on any replica, writing nothing', async () => {
      const invalid = await client.post('/api/v1/data/users').send({ ...ada, age: '36' });
      expectProblem(invalid, 400, 'RECORD_INVALID');
      expect(invalid.body.errors).toEqual([{ field: 'age', message: expect.any(String) }]);

      await client
        .post('/api/v1/data/users')
        .send({ ...ada, id: 'u1' })
        .expect(201);
      const duplicate = await client.post('/api/v1/data/users').send({ ...ada, id: 'u1' });
      expectProblem(duplicate, 409, 'DUPLICATE_RECORD');
      expect(seqOf(duplicate)).toBeGreaterThan(0);

      const forbidden = await client
        .post('/api/v1/data/users', { key: KEYS.read })
        .send({ ...ada, id: 'u2' });
      expectProblem(forbidden, 403, 'FORBIDDEN');
      expectProblem(await client.get('/api/v1/data/users/u2'), 404, 'RECORD_NOT_FOUND');
      expectProblem(await client.get('/api/v1/data/never'), 404, 'TABLE_NOT_FOUND');
      expectProblem(await client.get('/api/v1/data/never/x'), 404, 'TABLE_NOT_FOUND');

      const table = await client.get('/api/v1/tables/users').expect(200);
      expect(table.body).toMatchObject({ name: 'users', records: 1 });
    });

    it('writes a bulk array all or nothing', async () => {
      const batch = [
        { ...order('u1'), id: 'b1' },
        { ...order('u1', 2), id: 'b2' },
        { ...order('u1', 3), id: 'b3' },
      ];
      const written = await client.post('/api/v1/data/orders').send(batch).expect(201);
      expect(written.body).toEqual(
        batch.map((o) => ({
          ...o,
          created_at: expect.any(String),
          updated_at: expect.any(String),
        })),
      );

      const bad = await client.post('/api/v1/data/orders').send([
        { ...order('u1'), id: 'b4' },
        { ...order('u1', 0), id: 'b5' },
      ]);
      expectProblem(bad, 400, 'RECORD_INVALID');
      expect(bad.body.errors).toEqual([
        { index: 1, field: '[1].quantity', message: expect.any(String) },
      ]);
      const taken = await client.post('/api/v1/data/orders').send([
        { ...order('u1'), id: 'b6' },
        { ...order('u1'), id: 'b2' },
      ]);
      expectProblem(taken, 409, 'DUPLICATE_RECORD');

      const list = await client.get('/api/v1/data/orders?fields=id').expect(200);
      expect(list.body).toEqual([{ id: 'b1' }, { id: 'b2' }, { id: 'b3' }]);
    });
  });

  describe('reads, against an embedded server restored from a backup taken through the cluster', () => {
    let embedded: INestApplication;
    let backup: request.Response;
    let restored: request.Response;
    /** The same request to the embedded copy. */
    const local = (url: string) => request(embedded.getHttpServer()).get(url);

    beforeAll(async () => {
      await client.post('/api/v1/data/people').send(PEOPLE).expect(201);
      await client.post('/api/v1/data/purchases').send(PURCHASES).expect(201);
      backup = await bytes(client.get('/api/v1/admin/backup')).expect(200);
      embedded = await createTestApp();
      restored = await request(embedded.getHttpServer())
        .post('/api/v1/admin/restore')
        .set('Content-Type', 'application/octet-stream')
        .send(backup.body as Buffer)
        .expect(200);
    });
    afterAll(() => embedded?.close());

    it('GET /api/v1/admin/backup streams every table; restored, it holds what the cluster holds', async () => {
      expect(backup.headers['content-type']).toBe('application/octet-stream');
      expect(backup.headers['content-disposition']).toMatch(
        /^attachment; filename="memdb-backup-.+\.jsonl"$/,
      );
      const tables = (await client.get('/api/v1/tables').expect(200)).body as {
        name: string;
        records: number;
      }[];
      expect(tables.map((t) => t.name)).toEqual(expect.arrayContaining(['people', 'purchases']));
      expect(restored.body).toEqual({
        tables: tables.length,
        records: tables.reduce((sum, t) => sum + t.records, 0),
      });
      for (const { name } of tables) {
        const url = `/api/v1/data/${name}?limit=all`;
        expect((await client.get(url).expect(200)).body).toEqual((await local(url)).body);
      }

      expectProblem(
        await client.get('/api/v1/admin/backup', { key: KEYS.write }),
        403,
        'FORBIDDEN',
      );
      expectProblem(
        await client.get('/api/v1/admin/backup', { key: null }),
        401,
        'UNAUTHENTICATED',
      );
    });

    it('lists with filters, sort, fields, limit and count as the embedded server does', async () => {
      const adults = PEOPLE.filter((p) => (p.age as number) >= 30)
        .sort((a, b) => (b.age as number) - (a.age as number) || a.id.localeCompare(b.id))
        .map(({ id, age }) => ({ id, age }));
      const page = await client
        .get('/api/v1/data/people?age=gte.30&sort=-age,id&fields=id,age&limit=5')
        .expect(200);
      expect(page.body).toEqual(adults.slice(0, 5));
      expect(page.headers['x-total-count']).toBe(String(adults.length));
      expect(nextPageUrl(page)).toBeDefined();

      for (const query of [
        'city=Paris&sort=name',
        'city=is.null&fields=id,name',
        'or=(age.lt.22,city.eq.Rome)&sort=-age,name&limit=4&offset=1',
        'name=ilike.*a*&age=not.in.(20,21,22)&fields=name',
        'sort=city,-id&fields=id,city&limit=1000',
      ]) {
        const url = `/api/v1/data/people?${query}`;
        const [mine, theirs] = [await client.get(url).expect(200), await local(url).expect(200)];
        expect({ query, body: mine.body }).toEqual({ query, body: theirs.body });
        expect(mine.headers['x-total-count']).toBe(theirs.headers['x-total-count']);
        expect(mine.body.length).toBeGreaterThan(0);
      }

      const uncounted = await client
        .get('/api/v1/data/people?limit=2&count=none&fields=id')
        .expect(200);
      expect(uncounted.body).toEqual([{ id: 'p00' }, { id: 'p01' }]);
      expect(uncounted.headers['x-total-count']).toBeUndefined();

      const bad = await client.get('/api/v1/data/people?age=gtt.5');
      expectProblem(bad, 400, 'INVALID_QUERY');
      expect(bad.body.errors[0]).toMatchObject({ field: 'age' });
      expectProblem(await client.get('/api/v1/data/people?limit=0'), 400, 'INVALID_QUERY');
    });

    it('streams NDJSON and limit=all: the whole table, as the embedded server has it', async () => {
      const whole = (await local('/api/v1/data/people?limit=all').expect(200)).body as Rec[];
      expect(whole.map((p) => p.id)).toEqual(PEOPLE.map((p) => p.id));

      const streamed = await ndjson(client.get('/api/v1/data/people')).expect(200);
      expect(streamed.headers['content-type']).toBe(NDJSON);
      expect(lines(streamed.body as string)).toEqual(whole);
      const array = await client.get('/api/v1/data/people?limit=all').expect(200);
      expect(array.body).toEqual(whole);
      expect(array.headers['x-total-count']).toBeUndefined();

      const joined = await ndjson(
        client.get('/api/v1/join/people/purchases/person_id?leftKey=id&type=anti'),
      ).expect(200);
      expect(lines(joined.body as string)).toEqual(
        (await local('/api/v1/join/people/purchases/person_id?leftKey=id&type=anti&limit=all'))
          .body,
      );

      // An error found before streaming is a problem, whatever the Accept.
      const missing = await ndjson(client.get('/api/v1/data/nothing')).expect(404);
      expect(missing.headers['content-type']).toMatch(PROBLEM_JSON);
      expect(JSON.parse(missing.body as string)).toMatchObject({ code: 'TABLE_NOT_FOUND' });
    });

    /** Follows Link next, each page on the next replica: the pages' replicas and rows. */
    async function walk(first: string): Promise<{ replicas: number[]; rows: unknown[][] }> {
      const replicas: number[] = [];
      const rows: unknown[][] = [];
      let url: string | undefined = first;
      while (url !== undefined) {
        const res: request.Response = await client.get(url).expect(200);
        replicas.push(client.last);
        rows.push(res.body as unknown[]);
        url = nextPageUrl(res);
      }
      return { replicas, rows };
    }

    /** Each page on another replica than the one before, all three taking part. */
    function expectEveryReplica(replicas: number[]): void {
      expect(new Set(replicas).size).toBe(3);
      for (let i = 1; i < replicas.length; i++) expect(replicas[i]).not.toBe(replicas[i - 1]);
    }

    it('follows a list cursor across replicas: page 1 from one, page 2 from the next, page 3 from the third', async () => {
      for (const query of ['limit=8', 'sort=-age,name&fields=id,name,age&limit=8']) {
        const { replicas, rows } = await walk(`/api/v1/data/people?${query}`);

        expect(rows.map((page) => page.length)).toEqual([8, 8, 7]);
        expectEveryReplica(replicas);
        const all = await local(`/api/v1/data/people?${query.replace('limit=8', 'limit=all')}`);
        expect(rows.flat()).toEqual(all.body);
      }

      // A cursor belongs to its query, on every replica.
      const page = await client.get('/api/v1/data/people?sort=age&limit=2').expect(200);
      const cursor = /cursor=([^&>]+)/.exec(String(page.headers.link))?.[1];
      expect(cursor).toBeDefined();
      const other = await client.get(`/api/v1/data/people?sort=-age&limit=2&cursor=${cursor}`);
      expectProblem(other, 400, 'INVALID_QUERY');
      expect(other.body.errors[0]).toMatchObject({ field: 'cursor' });
    });

    const JOIN = '/api/v1/join/people/purchases/person_id?leftKey=id';
    const JOIN_FIELDS = 'fields=left.id,left.name,right.id,right.person_id';

    it('joins of every type give what the embedded server gives; inner, semi and anti as computed', async () => {
      const inner = PEOPLE.flatMap((p) =>
        PURCHASES.filter((o) => o.person_id === p.id).map((o) => [p.id, o.id]),
      );
      const matched = new Set(PURCHASES.map((o) => o.person_id));
      const expected: Record<string, unknown[][]> = {
        inner,
        semi: PEOPLE.filter((p) => matched.has(p.id)).map((p) => [p.id]),
        anti: PEOPLE.filter((p) => !matched.has(p.id)).map((p) => [p.id]),
      };
      expect(inner).toHaveLength(27);
      expect(expected.anti).toHaveLength(6);

      for (const type of ['inner', 'left', 'right', 'full', 'semi', 'anti']) {
        const url = `${JOIN}&type=${type}&${JOIN_FIELDS}&limit=100`;
        const [mine, theirs] = [await client.get(url).expect(200), await local(url).expect(200)];
        expect({ type, body: mine.body }).toEqual({ type, body: theirs.body });
        expect(mine.headers['x-total-count']).toBe(theirs.headers['x-total-count']);
        if (type in expected) {
          const rows = mine.body as { left: Rec; right?: Rec }[];
          expect(rows.map((r) => (r.right ? [r.left.id, r.right.id] : [r.left.id]))).toEqual(
            expected[type],
          );
        }
      }

      const sorted = `${JOIN}&type=left&sort=-right.total,left.id&right.total=gte.10&${JOIN_FIELDS}`;
      expect((await client.get(sorted).expect(200)).body).toEqual(
        (await local(sorted).expect(200)).body,
      );

      expectProblem(await client.get(`${JOIN}&type=outer`), 400, 'INVALID_QUERY');
      expectProblem(
        await client.get('/api/v1/join/people/nobody/person_id?leftKey=id'),
        404,
        'TABLE_NOT_FOUND',
      );
    });

    it('follows a join cursor across replicas, page after page, to what one embedded read gives', async () => {
      const query = `${JOIN}&type=full&${JOIN_FIELDS}`;
      const { replicas, rows } = await walk(`${query}&limit=10`);

      // 27 matched pairs, 6 people without purchases, 3 purchases of nobody.
      expect(rows.map((page) => page.length)).toEqual([10, 10, 10, 6]);
      expectEveryReplica(replicas);
      expect(rows.flat()).toEqual((await local(`${query}&limit=all`).expect(200)).body);
    });
  });

  it('creates, lists, uses and drops a unique index, each step on the next replica', async () => {
    const accounts = Array.from({ length: 6 }, (_, i) => ({ id: `a${i}`, email: `a${i}@x.io` }));
    await client.post('/api/v1/data/accounts').send(accounts).expect(201);

    const created = await client
      .post('/api/v1/tables/accounts/indexes')
      .send({ field: 'email', unique: true })
      .expect(201);
    expect(created.body).toEqual({ field: 'email', unique: true });
    expectProblem(
      await client.post('/api/v1/tables/accounts/indexes').send({ field: 'email' }),
      409,
      'INDEX_EXISTS',
    );
    expect((await client.get('/api/v1/tables/accounts/indexes').expect(200)).body).toEqual([
      { field: 'email', unique: true },
    ]);
    const duplicate = await client
      .post('/api/v1/data/accounts')
      .send({ id: 'a9', email: 'a3@x.io' });
    expectProblem(duplicate, 409, 'UNIQUE_VIOLATION');
    const found = await client.get('/api/v1/data/accounts?email=a4@x.io&fields=id').expect(200);
    expect(found.body).toEqual([{ id: 'a4' }]);
    expect(found.headers['x-query-plan']).toBe('index(email)');
    expectProblem(
      await client
        .post('/api/v1/tables/accounts/indexes', { key: KEYS.write })
        .send({ field: 'id2' }),
      403,
      'FORBIDDEN',
    );
    expectProblem(
      await client.post('/api/v1/tables/nowhere/indexes').send({ field: 'email' }),
      404,
      'TABLE_NOT_FOUND',
    );

    expectProblem(await client.get('/api/v1/tables/nowhere/indexes'), 404, 'TABLE_NOT_FOUND');

    await client.delete('/api/v1/tables/accounts/indexes/email').expect(204);
    expect((await client.get('/api/v1/tables/accounts/indexes').expect(200)).body).toEqual([]);
    const scanned = await client.get('/api/v1/data/accounts?email=a4@x.io&fields=id').expect(200);
    expect(scanned.headers['x-query-plan']).toBe('scan');
    expectProblem(
      await client.delete('/api/v1/tables/accounts/indexes/email'),
      404,
      'INDEX_NOT_FOUND',
    );
    // The index is gone everywhere: the duplicate goes in now.
    await client.post('/api/v1/data/accounts').send({ id: 'a9', email: 'a3@x.io' }).expect(201);
  });

  it('refuses, on every replica, a cursor of a table dropped and created again', async () => {
    const rows = [{ id: 'r1' }, { id: 'r2' }, { id: 'r3' }];
    await client.post('/api/v1/data/reborn').send(rows).expect(201);
    const first = await client.get('/api/v1/data/reborn?limit=1&fields=id').expect(200);
    const next = nextPageUrl(first)!;
    expect((await client.get(next).expect(200)).body).toEqual([{ id: 'r2' }]);

    await client.delete('/api/v1/tables/reborn').expect(204);
    await client.post('/api/v1/data/reborn').send(rows).expect(201);
    for (let i = 0; i < 3; i++) {
      const res = await client.get(next);
      expectProblem(res, 400, 'INVALID_QUERY');
      expect(res.body.errors[0]).toMatchObject({ field: 'cursor' });
    }
  });

  it('creates, lists, describes and drops tables', async () => {
    const created = await client.post('/api/v1/tables').send({ name: 'scratch' }).expect(201);
    expect(created.body).toEqual({ name: 'scratch', records: 0, indexes: [] });
    expect(created.headers.location).toBe('/api/v1/tables/scratch');
    expectProblem(
      await client.post('/api/v1/tables').send({ name: 'scratch' }),
      409,
      'TABLE_EXISTS',
    );
    expectProblem(
      await client.post('/api/v1/tables').send({ name: '1-bad' }),
      400,
      'VALIDATION_FAILED',
    );
    const listed = await client.get('/api/v1/tables').expect(200);
    expect(listed.body).toContainEqual({ name: 'scratch', records: 0, indexes: [] });
    await client.get('/api/v1/data/scratch').expect(200, []);
    await client.get('/api/v1/tables/scratch').expect(200, created.body);

    expectProblem(
      await client.delete('/api/v1/tables/scratch', { key: KEYS.write }),
      403,
      'FORBIDDEN',
    );
    await client.delete('/api/v1/tables/scratch').expect(204);
    expectProblem(await client.get('/api/v1/tables/scratch'), 404, 'TABLE_NOT_FOUND');
    expectProblem(await client.get('/api/v1/data/scratch'), 404, 'TABLE_NOT_FOUND');
    expectProblem(await client.delete('/api/v1/tables/scratch'), 404, 'TABLE_NOT_FOUND');
  });

  it('POST /api/v1/admin/compact answers 204 (nothing to compact without DATA_DIR); it needs the admin role', async () => {
    await client.post('/api/v1/admin/compact').expect(204);
    expectProblem(
      await client.post('/api/v1/admin/compact', { key: KEYS.write }),
      403,
      'FORBIDDEN',
    );
  });

  it('replays an Idempotency-Key answer through another replica, and writes once', async () => {
    const body = { title: 'once' };
    const first = await client
      .post('/api/v1/data/idem')
      .set('Idempotency-Key', 'contract-1')
      .send(body)
      .expect(201);
    const firstOn = client.last;
    const written = seqOf(first);
    // The answer travels on the stream after the write: wait until all three replicas have
    // applied past it (nothing else writes meanwhile), so the retry can find it anywhere.
    const applied = new Map<number, number>();
    await waitFor(
      'every replica to apply the answer',
      async () => {
        const res = await client.get('/api/v1/cluster').expect(200);
        applied.set(client.last, res.body.applied_seq);
        return [...applied.values()].every((seq) => seq > written) && applied.size === 3
          ? true
          : undefined;
      },
      60_000,
      () => ` (applied: ${JSON.stringify([...applied])}, write at ${written})`,
    );
    if (client.next === firstOn) await client.get('/api/v1/tables').expect(200);

    const again = await client
      .post('/api/v1/data/idem')
      .set('Idempotency-Key', 'contract-1')
      .send(body)
      .expect(201);
    expect(client.last).not.toBe(firstOn);
    expect(again.headers['idempotency-replayed']).toBe('true');
    expect(again.body).toEqual(first.body);
    expect(again.headers.etag).toBe(first.headers.etag);
    expect(again.headers.location).toBe(first.headers.location);
    expect(seqOf(again)).toBe(written);

    const reused = await client
      .post('/api/v1/data/idem')
      .set('Idempotency-Key', 'contract-1')
      .send({ title: 'other' });
    expectProblem(reused, 422, 'IDEMPOTENCY_KEY_REUSED');
    expectProblem(
      await client.post('/api/v1/data/idem').set('Idempotency-Key', 'has space').send(body),
      400,
      'INVALID_IDEMPOTENCY_KEY',
    );
    for (let i = 0; i < 3; i++) {
      expect((await client.get('/api/v1/tables/idem').expect(200)).body.records).toBe(1);
    }
  });

  it('restores a backup through one replica, and every replica swaps at that entry', async () => {
    const backup = await bytes(client.get('/api/v1/admin/backup')).expect(200);
    const before = await client.get('/api/v1/tables').expect(200);
    await client.post('/api/v1/data/undone').send({ id: 'u1' }).expect(201);
    const restore = (key?: string | null) =>
      client
        .post('/api/v1/admin/restore', { key })
        .set('Content-Type', 'application/octet-stream')
        .send(backup.body as Buffer);

    expectProblem(await restore(KEYS.write), 403, 'FORBIDDEN');
    const damaged = Buffer.from(backup.body as Buffer);
    damaged[damaged.length - 3] ^= 0x20;
    const bad = await client
      .post('/api/v1/admin/restore')
      .set('Content-Type', 'application/octet-stream')
      .send(damaged);
    expect(bad.status).toBe(400);
    expect(bad.headers['content-type']).toMatch(PROBLEM_JSON);
    const restored = await restore().expect(200);
    const tables = before.body as { records: number }[];
    expect(restored.body).toEqual({
      tables: tables.length,
      records: tables.reduce((sum, table) => sum + table.records, 0),
    });
    const at = seqOf(restored);
    for (let i = 0; i < 3; i++) {
      const res = await client.get('/api/v1/tables').expect(200);
      expect(seqOf(res)).toBeGreaterThanOrEqual(at);
      expect(res.body).toEqual(before.body);
      expectProblem(await client.get('/api/v1/data/undone/u1'), 404, 'TABLE_NOT_FOUND');
    }
  });

  it('GET /api/v1/changes: the same changes at the same positions from every replica', async () => {
    const since = client.seq;
    const write = await client.post('/api/v1/data/feed').send([{ id: 'f1' }, { id: 'f2' }]);
    expect(write.status).toBe(201);
    const at = seqOf(write);
    const answers = [];
    for (let i = 0; i < 3; i++) {
      const res = await client.get(`/api/v1/changes?since=${since}&tables=feed&wait=0`).expect(200);
      answers.push(res.body);
    }
    for (const body of answers) {
      expect(body.reset).toBeNull();
      expect(body.changes.map((c: { pos: string; id: string }) => [c.pos, c.id])).toEqual([
        [`${at}.0`, 'f1'],
        [`${at}.1`, 'f2'],
      ]);
    }
    expect(answers[1]).toEqual(answers[0]);
    expect(answers[2]).toEqual(answers[0]);
    expectProblem(await client.get('/api/v1/changes?since=x'), 400, 'INVALID_QUERY');
    const ticket = await client.post('/api/v1/changes/tickets', { key: KEYS.read }).expect(201);
    expect(ticket.body.expires_in).toBe(60);
    expectProblem(
      await client.post('/api/v1/changes/tickets', { key: null }),
      401,
      'UNAUTHENTICATED',
    );
  });

  it('ends with identical data on all three replicas; every answer kept the X-Memdb-Seq contract', async () => {
    const last = client.seq;
    /** The same GET from each replica in turn: the three answers' bodies, and who gave them. */
    const fromEach = async (url: string) => {
      const answers = [];
      for (let i = 0; i < 3; i++) {
        const res = await client.get(url).expect(200);
        expect(seqOf(res)).toBeGreaterThanOrEqual(last);
        answers.push({ replica: client.last, body: res.body as unknown });
      }
      expect(new Set(answers.map((a) => a.replica)).size).toBe(3);
      expect(answers[1].body).toEqual(answers[0].body);
      expect(answers[2].body).toEqual(answers[0].body);
      return answers[0].body;
    };

    const tables = (await fromEach('/api/v1/tables')) as { name: string; records: number }[];
    expect(tables.map((t) => t.name)).toEqual(
      expect.arrayContaining(['users', 'notes', 'orders', 'people', 'purchases', 'accounts']),
    );
    for (const { name, records } of tables) {
      const rows = (await fromEach(`/api/v1/data/${name}?limit=all`)) as Rec[];
      expect({ name, records: rows.length }).toEqual({ name, records });
    }
    expect(client.broken).toEqual([]);
  });

  it('has covered every operation of the OpenAPI document with a success and an error', async () => {
    const docs = await client.get('/docs-json', { key: null }).expect(200);
    await client.get('/redoc', { key: null }).expect(200);
    const paths = docs.body.paths as Record<string, Record<string, unknown>>;
    const coverage: Record<string, { success: boolean; error: boolean }> = {};
    for (const [path, operations] of Object.entries(paths)) {
      const route = new RegExp(`^${path.replace(/\{[^}]+\}/g, '[^/]+')}$`);
      for (const method of Object.keys(operations)) {
        const statuses = client.answers
          .filter((answer) => answer.method === method && route.test(answer.path))
          .map((answer) => answer.status);
        coverage[`${method.toUpperCase()} ${path}`] = {
          success: statuses.some((status) => status < 400),
          error: statuses.some((status) => status >= 400),
        };
      }
    }

    const both = { success: true, error: true };
    expect(coverage).toEqual({
      'GET /api/v1/data/{table}': both,
      'POST /api/v1/data/{table}': both,
      'GET /api/v1/data/{table}/{id}': both,
      'PUT /api/v1/data/{table}/{id}': both,
      'PATCH /api/v1/data/{table}/{id}': both,
      'DELETE /api/v1/data/{table}/{id}': both,
      'GET /api/v1/join/{left}/{right}/{key}': both,
      'GET /api/v1/tables': both,
      'POST /api/v1/tables': both,
      'GET /api/v1/tables/{table}': both,
      'DELETE /api/v1/tables/{table}': both,
      'POST /api/v1/tables/{table}/indexes': both,
      'GET /api/v1/tables/{table}/indexes': both,
      'DELETE /api/v1/tables/{table}/indexes/{field}': both,
      'GET /api/v1/admin/backup': both,
      'POST /api/v1/admin/compact': both,
      'POST /api/v1/admin/restore': both,
      'GET /api/v1/cluster': both,
      'GET /api/v1/changes': both,
      'POST /api/v1/changes/tickets': both,
      // The probes have no client error: a failing probe is a state of the replica.
      'GET /health': { success: true, error: false },
      'GET /health/ready': { success: true, error: false },
    });
  });
});
