import type { INestApplication } from '@nestjs/common';
import { jetstreamManager } from '@nats-io/jetstream';
import { Objm } from '@nats-io/obj';
import { connect } from '@nats-io/transport-node';
import request from 'supertest';
import { bytes } from './helpers/bodies';
import { deleteStream, startReplica, streamNames } from './helpers/cluster';
import { natsClusters, waitFor } from './helpers/nats-cluster';

/**
 * Cluster mode (issue 12): snapshots in the object store every SNAPSHOT_EVERY entries, the
 * stream purged below NATS_RETAIN entries before the newest one, a replica started later
 * catching up from snapshot + tail, and a restore through the stream. A NATS server with
 * JetStream started by this file (stopped by its PID).
 */
jest.setTimeout(180_000);
const startNats = natsClusters();
let natsUrl: string;
beforeAll(async () => {
  natsUrl = (await startNats({ servers: 1 })).urls[0];
});

type Http = ReturnType<INestApplication['getHttpServer']>;
const BACKUP = 'application/octet-stream';

const streamName = streamNames('snap');

function replica(stream: string, name: string, env: Record<string, string> = {}) {
  return startReplica({
    natsUrl,
    stream,
    name,
    env: { BODY_LIMIT: '8mb', BULK_MAX: '10000', ...env },
  });
}

/** Runs `use` with a JetStream manager and an object-store manager on the test's server. */
async function withNats<T>(
  use: (jsm: Awaited<ReturnType<typeof jetstreamManager>>, objm: Objm) => Promise<T>,
): Promise<T> {
  const nc = await connect({ servers: natsUrl });
  try {
    return await use(await jetstreamManager(nc), new Objm(nc));
  } finally {
    await nc.close();
  }
}

/** Every record of `table` on a replica that has applied `seq`, as `id` → record, sorted. */
async function tableAt(http: Http, table: string, seq: number): Promise<unknown[]> {
  const res = await request(http)
    .get(`/api/v1/data/${table}?limit=all&sort=id`)
    .set('X-Memdb-Min-Seq', String(seq))
    .expect(200);
  return res.body as unknown[];
}

describe('Cluster mode: snapshots, purge and catch-up', () => {
  const stream = streamName();
  afterAll(() => deleteStream(natsUrl, stream));

  it('snapshots every SNAPSHOT_EVERY entries, purges the stream, and a replica started after 100 bulk writes catches up from snapshot + tail', async () => {
    const env = { SNAPSHOT_EVERY: '20', NATS_RETAIN: '20' };
    const a = await replica(stream, 'snap-a', env);
    const b = await replica(stream, 'snap-b', env);
    let c: INestApplication | undefined;
    try {
      const httpA = a.getHttpServer();
      const httpB = b.getHttpServer();
      // An answer kept for Idempotency-Key, long before the snapshot: it travels in it.
      const keyed = await request(httpA)
        .post('/api/v1/data/keyed')
        .set('Idempotency-Key', 'first-write')
        .send({ id: 'k1', n: 1 })
        .expect(201);

      let last = 0;
      for (let i = 0; i < 100; i++) {
        const records = Array.from({ length: 1000 }, (_, j) => ({
          id: `r${i}-${j}`,
          batch: i,
        }));
        const res = await request(i % 2 === 0 ? httpA : httpB)
          .post('/api/v1/data/bulk')
          .send(records)
          .expect(201);
        last = Number(res.headers['x-memdb-seq']);
      }
      // One replica wrote a snapshot and purged the stream below NATS_RETAIN entries before it.
      const { firstSeq, snapshots } = await waitFor(
        'a snapshot and a purged stream',
        () =>
          withNats(async (jsm, objm) => {
            const info = await jsm.streams.info(stream);
            const store = await objm.open(`${stream}-snapshots`);
            const names = (await store.list()).filter((o) => !o.deleted).map((o) => o.name);
            return info.state.first_seq > 1 && names.length > 0
              ? { firstSeq: info.state.first_seq, snapshots: names }
              : undefined;
          }),
        60_000,
      );
      const newest = Math.max(...snapshots.map((name) => Number(name.replace('snapshot-', ''))));
      expect(newest).toBeGreaterThanOrEqual(80);
      // NATS_RETAIN=20: entries older than 20 before a snapshot are gone.
      expect(firstSeq).toBeGreaterThan(40);
      // At most two snapshots are kept (the newest, and the one before for readers).
      expect(snapshots.length).toBeLessThanOrEqual(2);

      c = await replica(stream, 'snap-c', env);
      const httpC = c.getHttpServer();
      const status = await request(httpC).get('/api/v1/cluster').expect(200);
      expect(status.body.applied_seq).toBeGreaterThanOrEqual(last);
      await request(httpC).get('/health/ready').expect(200);
      const onC = await tableAt(httpC, 'bulk', last);
      expect(onC).toHaveLength(100_000);
      expect(onC).toEqual(await tableAt(httpA, 'bulk', last));
      // The kept answer came with the snapshot: a repeat on the new replica replays it.
      const replay = await request(httpC)
        .post('/api/v1/data/keyed')
        .set('Idempotency-Key', 'first-write')
        .send({ id: 'k1', n: 1 })
        .expect(201);
      expect(replay.headers['idempotency-replayed']).toBe('true');
      expect(replay.body).toEqual(keyed.body);

      // Writes go on through the new replica, and everyone applies them.
      const after = await request(httpC)
        .post('/api/v1/data/bulk')
        .send({ id: 'after' })
        .expect(201);
      await request(httpA)
        .get('/api/v1/data/bulk/after')
        .set('X-Memdb-Min-Seq', String(after.headers['x-memdb-seq']))
        .expect(200);
    } finally {
      await Promise.all([a.close(), b.close(), c?.close()]);
    }
  });
});

describe('Cluster mode: restore', () => {
  const stream = streamName();
  afterAll(() => deleteStream(natsUrl, stream));

  it('restores a backup larger than max_payload on every replica at one entry', async () => {
    const a = await replica(stream, 'restore-a');
    const b = await replica(stream, 'restore-b');
    try {
      const httpA = a.getHttpServer();
      const httpB = b.getHttpServer();
      // About 2 MiB: twice the server's default max_payload (1 MiB).
      const records = Array.from({ length: 2000 }, (_, i) => ({
        id: `p${i}`,
        pad: 'x'.repeat(1000),
      }));
      await request(httpA).post('/api/v1/data/people').send(records).expect(201);
      await request(httpA)
        .post('/api/v1/tables/people/indexes')
        .send({ field: 'pad', unique: false })
        .expect(201);
      const backup = await bytes(request(httpA).get('/api/v1/admin/backup')).expect(200);
      expect((backup.body as Buffer).length).toBeGreaterThan(1024 * 1024);
      const before = await tableAt(httpA, 'people', Number(backup.headers['x-memdb-seq']));

      // Changes after the backup, which the restore undoes.
      await request(httpB).delete('/api/v1/data/people/p3').expect(204);
      const other = await request(httpB).post('/api/v1/data/other').send({ id: 'o' }).expect(201);

      const restored = await request(httpB)
        .post('/api/v1/admin/restore')
        .set('Content-Type', BACKUP)
        .send(backup.body as Buffer)
        .expect(200);
      expect(restored.body).toEqual({ tables: 1, records: 2000 });
      const seq = Number(restored.headers['x-memdb-seq']);
      expect(seq).toBeGreaterThan(Number(other.headers['x-memdb-seq']));

      for (const http of [httpA, httpB]) {
        expect(await tableAt(http, 'people', seq)).toEqual(before);
        await request(http)
          .get('/api/v1/data/other/o')
          .set('X-Memdb-Min-Seq', String(seq))
          .expect(404);
        const indexes = await request(http).get('/api/v1/tables/people').expect(200);
        expect(indexes.body.indexes).toEqual([{ field: 'pad', unique: false }]);
      }

      // A bad backup is refused before anything reaches the stream.
      const bad = await request(httpA)
        .post('/api/v1/admin/restore')
        .set('Content-Type', BACKUP)
        .send(Buffer.from('{"t":"header"}\n'));
      expect(bad.status).toBe(400);
      const status = await request(httpA).get('/api/v1/cluster').expect(200);
      expect(status.body.last_seq).toBe(seq);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});
