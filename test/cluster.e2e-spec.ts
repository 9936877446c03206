import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { StreamMismatchError } from '../src/database/cluster/nats-log';
import { deleteStream as deleteStreamAt, startReplica, streamNames } from './helpers/cluster';
import { natsClusters } from './helpers/nats-cluster';
import { createTestApp } from './helpers/test-app';

/**
 * Cluster mode (issue 12) on a NATS server with JetStream that this file starts on a free
 * loopback port (and stops by its PID); each test group on a stream of its own.
 */
jest.setTimeout(120_000);
const startNats = natsClusters();
let natsUrl: string;
beforeAll(async () => {
  natsUrl = (await startNats({ servers: 1 })).urls[0];
});

type Http = ReturnType<INestApplication['getHttpServer']>;

const streamName = streamNames('test');
const deleteStream = (name: string) => deleteStreamAt(natsUrl, name);
const replica = (stream: string, name: string, env: Record<string, string> = {}) =>
  startReplica({ natsUrl, stream, name, env });

describe('Cluster mode (NATS_URL)', () => {
  const stream = streamName();
  let a: INestApplication;
  let b: INestApplication;
  let httpA: Http;
  let httpB: Http;

  beforeAll(async () => {
    a = await replica(stream, 'replica-a');
    b = await replica(stream, 'replica-b');
    httpA = a.getHttpServer();
    httpB = b.getHttpServer();
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await deleteStream(stream);
  });

  it('numbers writes by the stream: X-Memdb-Seq is the stream sequence', async () => {
    const first = await request(httpA).post('/api/v1/data/seq').send({ id: 's1' }).expect(201);
    const second = await request(httpB).post('/api/v1/data/seq').send({ id: 's2' }).expect(201);

    expect(Number(second.headers['x-memdb-seq'])).toBe(Number(first.headers['x-memdb-seq']) + 1);
  });

  it('decides racing inserts of one id the same way on every replica: one 201, one 409', async () => {
    const [x, y] = await Promise.all([
      request(httpA).post('/api/v1/data/race').send({ id: 'same', from: 'a' }),
      request(httpB).post('/api/v1/data/race').send({ id: 'same', from: 'b' }),
    ]);

    expect([x.status, y.status].sort()).toEqual([201, 409]);
    const winner = (x.status === 201 ? x : y).body as { from: string };
    const seq = Math.max(Number(x.headers['x-memdb-seq']), Number(y.headers['x-memdb-seq']));
    for (const http of [httpA, httpB]) {
      const res = await request(http)
        .get('/api/v1/data/race/same')
        .set('X-Memdb-Min-Seq', String(seq))
        .expect(200);
      expect(res.body).toMatchObject({ from: winner.from });
    }
  });

  it('lets one of sixteen PATCHes with the same If-Match win, across replicas', async () => {
    const created = await request(httpA)
      .post('/api/v1/data/cas')
      .send({ id: 'c', n: 0 })
      .expect(201);
    const etag = created.headers.etag as string;
    const answers = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        request(i % 2 === 0 ? httpA : httpB)
          .patch('/api/v1/data/cas/c')
          .set('If-Match', etag)
          .send({ n: i + 1 }),
      ),
    );

    expect(answers.filter((res) => res.status === 200)).toHaveLength(1);
    expect(answers.filter((res) => res.status === 412)).toHaveLength(15);
  });

  it('reads strongly: a read on B right after a write on A sees it, without X-Memdb-Min-Seq', async () => {
    await request(httpA).post('/api/v1/data/strong').send({ id: 's', n: 0 }).expect(201);
    for (let i = 0; i < 5; i++) {
      await request(httpA)
        .put('/api/v1/data/strong/s')
        .send({ n: 100 + i })
        .expect(200);
      const read = await request(httpB)
        .get('/api/v1/data/strong/s')
        .set('X-Memdb-Consistency', 'strong')
        .expect(200);
      expect(read.body).toMatchObject({ n: 100 + i });
    }
  });

  it('replays an Idempotency-Key answer through another replica, and never writes twice', async () => {
    const body = { title: 'once' };
    const first = await request(httpA)
      .post('/api/v1/data/idem')
      .set('Idempotency-Key', 'cluster-1')
      .send(body)
      .expect(201);
    // The answer travels on the stream: until B has it, B answers 409 IDEMPOTENCY_KEY_EXPIRED
    // (the stream dropped the repeat) and writes nothing.
    let again: request.Response | undefined;
    for (let attempt = 0; attempt < 50; attempt++) {
      again = await request(httpB)
        .post('/api/v1/data/idem')
        .set('Idempotency-Key', 'cluster-1')
        .send(body);
      if (again.status !== 409) break;
      expect(again.body).toMatchObject({ code: 'IDEMPOTENCY_KEY_EXPIRED' });
      await new Promise((resolve) => setTimeout(resolve, 50));
    }

    expect(again?.status).toBe(201);
    expect(again?.headers['idempotency-replayed']).toBe('true');
    expect(again?.body).toEqual(first.body);
    const seq = String(again?.headers['x-memdb-seq']);
    for (const http of [httpA, httpB]) {
      const table = await request(http)
        .get('/api/v1/tables/idem')
        .set('X-Memdb-Consistency', 'strong')
        .expect(200);
      expect(table.body.records).toBe(1);
      expect(seq).toBe(String(first.headers['x-memdb-seq']));
    }
  });

  it('refuses a consistency other than local or strong with 400', async () => {
    const res = await request(httpA)
      .get('/api/v1/tables')
      .set('X-Memdb-Consistency', 'eventual')
      .expect(400);

    expect(res.body).toMatchObject({ code: 'INVALID_CONSISTENCY' });
  });

  it('says where each replica stands: GET /api/v1/cluster', async () => {
    const last = await request(httpA).post('/api/v1/data/status').send({}).expect(201);
    const seq = Number(last.headers['x-memdb-seq']);
    const res = await request(httpB)
      .get('/api/v1/cluster')
      .set('X-Memdb-Min-Seq', String(seq))
      .expect(200);

    expect(res.body).toEqual({
      mode: 'nats',
      replica: 'replica-b',
      applied_seq: expect.any(Number),
      last_seq: expect.any(Number),
      lag: expect.any(Number),
      nats: 'connected',
      stream: { name: stream, replicas: 1 },
    });
    expect(res.body.applied_seq).toBeGreaterThanOrEqual(seq);
  });

  it('brings a replica started later up to the same state before it is ready', async () => {
    const last = await request(httpA).post('/api/v1/data/late').send({ id: 'l1' }).expect(201);
    const c = await replica(stream, 'replica-c');
    try {
      const http = c.getHttpServer();
      const status = await request(http).get('/api/v1/cluster').expect(200);
      expect(status.body.applied_seq).toBeGreaterThanOrEqual(Number(last.headers['x-memdb-seq']));
      const tables = await request(http).get('/api/v1/tables').expect(200);
      const onA = await request(httpA)
        .get('/api/v1/tables')
        .set('X-Memdb-Min-Seq', String(status.body.applied_seq))
        .expect(200);
      expect(tables.body).toEqual(onA.body);
    } finally {
      await c.close();
    }
  });
});

describe('Cluster mode: commands larger than a NATS message', () => {
  it('stores a bulk write over max_payload in the object store, and every replica applies it', async () => {
    const stream = streamName();
    const env = { BODY_LIMIT: '8mb', BULK_MAX: '10000' };
    const a = await replica(stream, 'big-a', env);
    const b = await replica(stream, 'big-b', env);
    try {
      // About 3 MiB, three times the server's default max_payload (1 MiB).
      const records = Array.from({ length: 3000 }, (_, i) => ({
        id: `r${i}`,
        pad: 'x'.repeat(1000),
      }));
      const write = await request(a.getHttpServer()).post('/api/v1/data/big').send(records);
      expect(write.status).toBe(201);
      const seq = String(write.headers['x-memdb-seq']);

      const onB = await request(b.getHttpServer())
        .get('/api/v1/tables/big')
        .set('X-Memdb-Min-Seq', seq)
        .expect(200);
      expect(onB.body.records).toBe(3000);
      const one = await request(b.getHttpServer()).get('/api/v1/data/big/r2999').expect(200);
      expect(one.body.pad).toHaveLength(1000);
    } finally {
      await Promise.all([a.close(), b.close()]);
      await deleteStream(stream);
    }
  });
});

describe('Cluster mode: the stream', () => {
  it('refuses to start on an existing stream with other settings, naming the differences', async () => {
    const stream = streamName();
    const first = await replica(stream, 'one');
    await first.close();
    try {
      await expect(replica(stream, 'two', { NATS_REPLICAS: '3' })).rejects.toThrow(
        StreamMismatchError,
      );
      await expect(replica(stream, 'two', { NATS_REPLICAS: '3' })).rejects.toThrow(
        /replicas 1, wanted 3 \(NATS_REPLICAS\)/,
      );
    } finally {
      await deleteStream(stream);
    }
  });
});

describe('GET /api/v1/cluster, embedded', () => {
  it('says the mode is embedded', async () => {
    const app = await createTestApp({ env: { REPLICA_NAME: 'solo' } });
    try {
      const res = await request(app.getHttpServer()).get('/api/v1/cluster').expect(200);
      expect(res.body).toEqual({
        mode: 'embedded',
        replica: 'solo',
        applied_seq: Number(res.headers['x-memdb-seq']),
        last_seq: Number(res.headers['x-memdb-seq']),
        lag: 0,
        nats: null,
        stream: null,
      });
    } finally {
      await app.close();
    }
  });
});

describe('Cluster mode without NATS for a while', () => {
  it('goes on reading, refuses writes and strong reads with 503, stays ready, and writes again once NATS is back', async () => {
    const nats = await startNats({ servers: 1 });
    const stream = streamName();
    const app = await createTestApp({
      env: {
        NATS_URL: nats.urls[0],
        NATS_STREAM: stream,
        REPLICA_NAME: 'alone',
        WRITE_TIMEOUT_MS: '2000',
      },
    });
    const http = app.getHttpServer();
    try {
      await request(http).post('/api/v1/data/k').send({ id: 'before' }).expect(201);

      await nats.kill(0);
      const write = await request(http).post('/api/v1/data/k').send({ id: 'during' });
      expect(write.status).toBe(503);
      expect(['STORAGE_UNAVAILABLE', 'WRITE_UNCONFIRMED']).toContain(write.body.code);
      await request(http).get('/api/v1/data/k/before').expect(200);
      const strong = await request(http)
        .get('/api/v1/data/k/before')
        .set('X-Memdb-Consistency', 'strong');
      expect(strong.status).toBe(503);
      await request(http).get('/health/ready').expect(200);
      const status = await request(http).get('/api/v1/cluster').expect(200);
      expect(status.body.nats).not.toBe('connected');

      await nats.restart(0);
      // The client reconnects by itself; writes then go through again.
      let again: request.Response | undefined;
      for (let attempt = 0; attempt < 100; attempt++) {
        again = await request(http)
          .post('/api/v1/data/k')
          .send({ id: `after-${attempt}` });
        if (again.status === 201) break;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(again?.status).toBe(201);
      const tables = await request(http).get('/api/v1/tables/k').expect(200);
      expect(tables.body.records).toBeGreaterThanOrEqual(2);
    } finally {
      await app.close();
    }
  });
});
