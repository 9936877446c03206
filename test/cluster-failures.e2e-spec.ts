import type { INestApplication } from '@nestjs/common';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import request from 'supertest';
import { eachLine, killOnExit, stopChild, StopWaiting } from '../scripts/processes';
import { freePort, natsClusters, waitFor, type NatsCluster } from './helpers/nats-cluster';
import { startReplica } from './helpers/cluster';
import { CapturingLogger, createTestApp, TEST_HTTP_ADAPTER } from './helpers/test-app';

/**
 * Cluster mode (issue 12) when things fail: the NATS server leading the stream killed with
 * SIGKILL under concurrent writers, a replica process killed with SIGKILL and started again,
 * and NATS unreachable at start. Real nats-server processes (three, clustered, an R3 stream),
 * started by this file and stopped by their PIDs. The heavy tests do not depend on the HTTP
 * adapter: only the Express project (e2e) runs them.
 */
jest.setTimeout(180_000);
const startNats = natsClusters();
const heavy = TEST_HTTP_ADAPTER === 'express' ? describe : describe.skip;

type Http = ReturnType<INestApplication['getHttpServer']>;
type Target = Http | string;
type Row = { id: string; [field: string]: unknown };

const ROOT = join(__dirname, '..');
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function replica(
  cluster: NatsCluster,
  stream: string,
  name: string,
  logger?: CapturingLogger,
  env: Record<string, string> = {},
): Promise<INestApplication> {
  const defaults = { NATS_REPLICAS: '3', WRITE_TIMEOUT_MS: '10000' };
  const natsUrl = cluster.urls.join(',');
  return startReplica({ natsUrl, stream, name, env: { ...defaults, ...env }, logger });
}

/** A whole table as one replica has it once it has applied `seq`, sorted by id. */
async function tableAt(target: Target, table: string, seq: number): Promise<Row[]> {
  await waitFor(
    `replica to apply seq ${seq}`,
    async () => {
      const res = await request(target).get('/api/v1/cluster');
      return res.status === 200 && res.body.applied_seq >= seq ? true : undefined;
    },
    60_000,
  );
  const res = await request(target)
    .get(`/api/v1/data/${table}?limit=all`)
    .set('X-Memdb-Min-Seq', String(seq))
    .expect(200);
  return (res.body as Row[]).sort((a, b) => a.id.localeCompare(b.id));
}

/** What one writer saw: each id it got an answer for, and how. */
interface WriterLog {
  /** Ids acknowledged: 201, or 409 DUPLICATE_RECORD on a retry (an earlier attempt landed). */
  readonly acked: string[];
  /** When each acknowledgement arrived (Date.now()), in the order of `acked`. */
  readonly ackedAt: number[];
  /** 503 answers by code. */
  readonly unavailable: Record<string, number>;
  /** Ids whose earlier attempts all got 503 STORAGE_UNAVAILABLE and whose retry got 409. */
  readonly landedDespiteUnavailable: string[];
  /** Anything else: a test failure. */
  readonly unexpected: string[];
  maxSeq: number;
}

/**
 * Writes `w<writer>-<n>` records through `target` until `stoppedAt()` is set, retrying each id
 * on 503 (and on a dropped connection) until 201, or 409 meaning an earlier attempt landed; an
 * id still without an outcome a minute after the stop is a failure.
 */
async function writer(
  target: Target,
  table: string,
  writerNo: number,
  stoppedAt: () => number,
  log: WriterLog,
): Promise<void> {
  for (let n = 0; stoppedAt() === 0; n++) {
    const id = `w${writerNo}-${n}`;
    const codes: string[] = [];
    for (let attempt = 0; ; attempt++) {
      if (stoppedAt() < 0) return;
      if (stoppedAt() !== 0 && Date.now() - stoppedAt() > 60_000) {
        log.unexpected.push(`${id}: no outcome after ${attempt} attempts (${codes.join(',')})`);
        return;
      }
      let res: request.Response;
      try {
        res = await request(target).post(`/api/v1/data/${table}`).send({ id, writer: writerNo, n });
      } catch (error) {
        codes.push(`network:${(error as Error).message}`);
        await pause(100);
        continue;
      }
      const seq = Number(res.headers['x-memdb-seq']);
      if (Number.isFinite(seq)) log.maxSeq = Math.max(log.maxSeq, seq);
      if (res.status === 201) {
        log.acked.push(id);
        log.ackedAt.push(Date.now());
        break;
      }
      if (res.status === 409 && res.body.code === 'DUPLICATE_RECORD' && attempt > 0) {
        log.acked.push(id);
        log.ackedAt.push(Date.now());
        if (codes.every((code) => code === 'STORAGE_UNAVAILABLE'))
          log.landedDespiteUnavailable.push(`${id} (${codes.join(',')})`);
        break;
      }
      if (res.status === 503) {
        const code = String(res.body.code);
        codes.push(code);
        log.unavailable[code] = (log.unavailable[code] ?? 0) + 1;
        await pause(100);
        continue;
      }
      log.unexpected.push(`${id}: ${res.status} ${JSON.stringify(res.body)}`);
      return;
    }
  }
}

function newLog(): WriterLog {
  return {
    acked: [],
    ackedAt: [],
    unavailable: {},
    landedDespiteUnavailable: [],
    unexpected: [],
    maxSeq: 0,
  };
}

heavy('Cluster failures (3 NATS servers, an R3 stream)', () => {
  let cluster: NatsCluster;
  beforeAll(async () => {
    cluster = await startNats({ servers: 3 });
  });

  it('loses no acknowledged write when the stream leader is killed (SIGKILL) under 8 writers, and writers carry on', async () => {
    const stream = 'kill-leader';
    const apps: INestApplication[] = [];
    let killed: number | undefined;
    /** When the writers were told to stop (0: not yet; -1: give up at once, the test failed). */
    let stopping = 0;
    let progress: NodeJS.Timeout | undefined;
    try {
      // Nest's Logger is process-wide: one logger gets the three replicas' lines.
      const logger = new CapturingLogger();
      for (const name of ['r0', 'r1', 'r2'])
        apps.push(await replica(cluster, stream, name, logger));
      const https = apps.map((app) => app.getHttpServer());
      const warnings = () =>
        logger.lines
          .filter((line) => line.context === 'Cluster' && line.level !== 'log')
          .map((line) => String(line.message));
      const logs = Array.from({ length: 8 }, newLog);
      const acks = () => logs.reduce((sum, log) => sum + log.acked.length, 0);
      // Where each replica stands, for the failure message of the wait below.
      let statuses: string[] = [];
      progress = setInterval(() => {
        void Promise.all(
          https.map((http) =>
            request(http)
              .get('/api/v1/cluster')
              .then((res) => JSON.stringify(res.body)),
          ),
        ).then((now) => (statuses = now));
      }, 1000);
      const writers = logs.map((log, w) => writer(https[w % 3], 'k', w, () => stopping, log));

      await waitFor(
        '200 writes before the kill',
        async () => (acks() >= 200 ? true : undefined),
        60_000,
      );
      const leader = await waitFor('the stream leader', () => cluster.streamLeader(stream), 30_000);
      killed = cluster.servers.findIndex((server) => server.name === leader);
      expect(killed).toBeGreaterThanOrEqual(0);
      const before = logs.map((log) => log.acked.length);
      await cluster.kill(killed);
      const killedAt = Date.now();

      // Every writer gets 20 more writes acknowledged after the kill.
      await waitFor(
        'every writer to make progress after the kill',
        async () => {
          const unexpected = logs.flatMap((log) => log.unexpected);
          if (unexpected.length > 0)
            throw new StopWaiting(`unexpected answers: ${unexpected.join('; ')}`);
          return logs.every((log) => log.ackedAt.filter((t) => t > killedAt).length >= 20)
            ? true
            : undefined;
        },
        60_000,
        () =>
          ` (acked since, by writer: ${logs.map((log, i) => log.acked.length - before[i]).join(',')}; 503s: ${JSON.stringify(logs.map((log) => log.unavailable))}; replicas: ${statuses.join(' ')}; warnings: ${warnings().join(' | ')})`,
      );
      stopping = Date.now();
      await Promise.all(writers);
      clearInterval(progress);

      const unexpected = logs.flatMap((log) => log.unexpected);
      expect(unexpected).toEqual([]);
      const acked = logs.flatMap((log) => log.acked);
      const maxSeq = Math.max(...logs.map((log) => log.maxSeq));
      const tables = await Promise.all(https.map((http) => tableAt(http, 'k', maxSeq)));
      for (const table of tables) {
        const ids = new Set(table.map((row) => row.id));
        expect(acked.filter((id) => !ids.has(id))).toEqual([]);
      }
      expect(tables[1]).toEqual(tables[0]);
      expect(tables[2]).toEqual(tables[0]);
      // Nothing but the writers' own records, each as written.
      for (const row of tables[0]) {
        expect(row.id).toBe(`w${String(row.writer)}-${String(row.n)}`);
      }
      // A 503 STORAGE_UNAVAILABLE says the write did not happen ("Writes are unavailable"):
      // a retry must never find it landed. WRITE_UNCONFIRMED is the answer for "maybe".
      expect(logs.flatMap((log) => log.landedDespiteUnavailable)).toEqual([]);
      process.stdout.write(
        `kill-leader: ${acked.length} writes acknowledged, ${tables[0].length} records, 503s ${JSON.stringify(
          logs.reduce<Record<string, number>>((all, log) => {
            for (const [code, count] of Object.entries(log.unavailable))
              all[code] = (all[code] ?? 0) + count;
            return all;
          }, {}),
        )}\n`,
      );

      // The killed server comes back; the replicas still write and read strongly.
      await cluster.restart(killed);
      killed = undefined;
      for (const [i, http] of https.entries()) {
        const id = `after-restart-${i}`;
        await waitFor(
          `a write through r${i} after the restart`,
          async () => {
            const res = await request(http).post('/api/v1/data/k').send({ id });
            return res.status === 201 || res.status === 409 ? true : undefined;
          },
          60_000,
        );
        for (const other of https) {
          await request(other)
            .get(`/api/v1/data/k/${id}`)
            .set('X-Memdb-Consistency', 'strong')
            .expect(200);
        }
      }
    } finally {
      stopping = -1;
      clearInterval(progress);
      await Promise.all(apps.map((app) => app.close()));
      if (killed !== undefined) await cluster.restart(killed);
    }
  });

  it('brings a replica killed with SIGKILL back, ready with the same data as the others', async () => {
    const stream = 'kill-replica';
    const apps: INestApplication[] = [];
    let child: ChildProcess | undefined;
    try {
      for (const name of ['a', 'b']) apps.push(await replica(cluster, stream, name));
      const [httpA, httpB] = apps.map((app) => app.getHttpServer());
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      child = await startReplicaProcess(cluster, stream, 'c', port);

      let maxSeq = 0;
      const write = async (target: Target, id: string) => {
        const res = await request(target).post('/api/v1/data/r').send({ id }).expect(201);
        maxSeq = Math.max(maxSeq, Number(res.headers['x-memdb-seq']));
      };
      for (let i = 0; i < 20; i++) await write([httpA, httpB, url][i % 3], `before-${i}`);

      // Writes in flight through c when it dies: their outcome is unknown to their clients,
      // but every replica must agree on it.
      const inFlight = Array.from({ length: 10 }, (_, i) =>
        request(url)
          .post('/api/v1/data/r')
          .send({ id: `in-flight-${i}` })
          .then(
            (res) => res.status,
            () => 'dropped',
          ),
      );
      await pause(5);
      await stopChild(child, 'SIGKILL');
      expect(child.signalCode).toBe('SIGKILL');
      await Promise.all(inFlight);

      for (let i = 0; i < 50; i++) await write(i % 2 === 0 ? httpA : httpB, `while-down-${i}`);

      child = await startReplicaProcess(cluster, stream, 'c', port);
      // Ready means it has applied what the stream held at its start: a local read (no
      // X-Memdb-Min-Seq, no strong) already has every write acknowledged before.
      const status = await request(url).get('/api/v1/cluster').expect(200);
      expect(status.body).toMatchObject({ mode: 'nats', replica: 'c', nats: 'connected' });
      expect(status.body.applied_seq).toBeGreaterThanOrEqual(maxSeq);
      const local = await request(url).get('/api/v1/data/r?limit=all').expect(200);
      const onC = (local.body as Row[]).sort((a, b) => a.id.localeCompare(b.id));
      const [onA, onB] = await Promise.all([
        tableAt(httpA, 'r', maxSeq),
        tableAt(httpB, 'r', maxSeq),
      ]);
      expect(onC).toEqual(onA);
      expect(onB).toEqual(onA);
      const ids = new Set(onC.map((row) => row.id));
      for (let i = 0; i < 20; i++) expect(ids).toContain(`before-${i}`);
      for (let i = 0; i < 50; i++) expect(ids).toContain(`while-down-${i}`);

      // And it takes writes again, seen by the others.
      await write(url, 'after-restart');
      for (const http of [httpA, httpB]) {
        await request(http)
          .get('/api/v1/data/r/after-restart')
          .set('X-Memdb-Min-Seq', String(maxSeq))
          .expect(200);
      }
    } finally {
      if (child !== undefined) await stopChild(child);
      await Promise.all(apps.map((app) => app.close()));
    }
  });

  it('reloads a replica paused (SIGSTOP) past a snapshot and purge from the snapshot when it resumes', async () => {
    const stream = 'pause-replica';
    const env = { SNAPSHOT_EVERY: '10', NATS_RETAIN: '5' };
    let app: INestApplication | undefined;
    let child: ChildProcess | undefined;
    try {
      const logger = new CapturingLogger();
      app = await replica(cluster, stream, 'a', logger, env);
      const httpA = app.getHttpServer();
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      child = await startReplicaProcess(cluster, stream, 'paused', port, env);
      let maxSeq = 0;
      const write = async (id: string) => {
        const res = await request(httpA).post('/api/v1/data/p').send({ id }).expect(201);
        maxSeq = Math.max(maxSeq, Number(res.headers['x-memdb-seq']));
      };
      for (let i = 0; i < 3; i++) await write(`before-${i}`);
      const seen = await tableAt(url, 'p', maxSeq);
      expect(seen).toHaveLength(3);

      child.kill('SIGSTOP');
      // More entries than the replica's outstanding pull asks for (100): the server cannot
      // have handed them all to its socket before the purge, so the rest can only come from
      // the snapshot.
      for (let i = 0; i < 150; i++) await write(`while-paused-${i}`);
      // The entries the paused replica has not applied are gone from the stream.
      const nc = await connect({ servers: cluster.urls });
      try {
        const jsm = await jetstreamManager(nc);
        await waitFor(
          'the stream to be purged past the paused replica',
          async () =>
            (await jsm.streams.info(stream)).state.first_seq > maxSeq - 40 ? true : undefined,
          60_000,
          () =>
            `\n${logger.lines
              .filter((line) => line.context === 'Cluster')
              .map((line) => `${line.level} ${String(line.message)}`)
              .join('\n')}`,
        );
      } finally {
        await nc.close();
      }
      child.kill('SIGCONT');

      const onPaused = await tableAt(url, 'p', maxSeq);
      expect(onPaused).toHaveLength(3 + 150);
      expect(onPaused).toEqual(await tableAt(httpA, 'p', maxSeq));
      await request(url).get('/health/ready').expect(200);
      expect(outputOf.get(child)!.join('\n')).toMatch(
        /no longer in the stream \(purged after a snapshot\): reloading from the newest snapshot/,
      );
    } finally {
      child?.kill('SIGCONT');
      if (child !== undefined) await stopChild(child);
      await app?.close();
    }
  });

  it('exits 1 naming the cause when NATS cannot be reached at start', async () => {
    const { code, stderr } = await runToExit({
      NATS_URL: `nats://127.0.0.1:${await freePort()}`,
      PORT: String(await freePort()),
    });

    expect(code).toBe(1);
    expect(stderr).toMatch(
      /memdb failed to start: cannot reach NATS at .* \(NATS_URL\): .*connection refused/i,
    );
  });

  it('exits 1 naming the differences on a stream with other settings', async () => {
    const { code, stderr } = await runToExit({
      NATS_URL: cluster.urls.join(','),
      NATS_STREAM: 'kill-replica',
      NATS_REPLICAS: '1',
      PORT: String(await freePort()),
    });

    expect(code).toBe(1);
    expect(stderr).toMatch(/exists with other settings.*replicas 3, wanted 1 \(NATS_REPLICAS\)/);
  });
});

describe('Cluster mode with NATS unreachable at start', () => {
  it('fails to start (the connection is refused), without retrying', async () => {
    const started = Date.now();
    await expect(
      createTestApp({
        env: { NATS_URL: `nats://127.0.0.1:${await freePort()}`, NATS_STREAM: 'never' },
      }),
    ).rejects.toThrow(/cannot reach NATS at .* \(NATS_URL\): .*connection refused/i);
    expect(Date.now() - started).toBeLessThan(30_000);
  });
});

/**
 * memdb's own entry point (src/main.ts, never a dist/ that may be stale) in a child process.
 */
function spawnReplica(env: Record<string, string>): ChildProcess {
  const args = ['-r', 'ts-node/register/transpile-only', 'src/main.ts'];
  const { DATA_DIR: _dataDir, ...inherited } = process.env;
  return killOnExit(
    spawn(process.execPath, args, {
      cwd: ROOT,
      env: { ...inherited, HOST: '127.0.0.1', THROTTLE_LIMIT: '0', LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
}

/** Runs a replica process that is expected to stop by itself: its exit code and stderr. */
async function runToExit(
  env: Record<string, string>,
): Promise<{ code: number | null; stderr: string }> {
  const child = spawnReplica(env);
  const lines: string[] = [];
  eachLine(child.stderr!, (line) => lines.push(line));
  child.stdout!.resume();
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { code, stderr: lines.join('\n') };
}

/** What each replica process started by startReplicaProcess has logged. */
const outputOf = new WeakMap<ChildProcess, string[]>();

/** Starts a replica process and waits until it is ready (GET /health/ready 200). */
async function startReplicaProcess(
  cluster: NatsCluster,
  stream: string,
  name: string,
  port: number,
  env: Record<string, string> = {},
): Promise<ChildProcess> {
  const child = spawnReplica({
    NATS_URL: cluster.urls.join(','),
    NATS_STREAM: stream,
    NATS_REPLICAS: '3',
    REPLICA_NAME: name,
    WRITE_TIMEOUT_MS: '10000',
    PORT: String(port),
    ...env,
  });
  const stderr: string[] = [];
  eachLine(child.stderr!, (line) => stderr.push(line));
  // Nest logs warnings to stdout: kept with the rest.
  eachLine(child.stdout!, (line) => stderr.push(line));
  outputOf.set(child, stderr);
  await waitFor(
    `replica ${name} to be ready`,
    async () => {
      if (child.exitCode !== null)
        throw new StopWaiting(`replica ${name} exited ${child.exitCode}:\n${stderr.join('\n')}`);
      const res = await fetch(`http://127.0.0.1:${port}/health/ready`);
      return res.status === 200 ? true : undefined;
    },
    90_000,
    () => `\n${stderr.slice(-20).join('\n')}`,
  );
  return child;
}
