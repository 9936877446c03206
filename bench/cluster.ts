/**
 * Issue 12's cluster benchmark, every configuration in one run on this machine (2 cores shared
 * by the NATS servers, the memdb processes and the load generator):
 *
 * 1. Writes: POST /api/v1/data/items with a small JSON record at 1, 16 and 64 connections, for
 *    embedded memdb (no NATS_URL), one replica on one NATS server (stream R1), and one replica
 *    on three clustered NATS servers with NATS_REPLICAS=3 (R3). One replica suffices: the
 *    replica that takes a write answers once it has applied it, other replicas never hold it up.
 * 2. GET /api/v1/data/users/u500 on each cluster replica vs embedded, the same data in each
 *    (1,000 users and 5,000 orders, seeded before any write round).
 * 3. Catch-up: N single-record writes through one replica of the R3 stream (one command each,
 *    round 16 tables to write them faster: the rate of applying does not depend on it), then a fresh replica is started and timed from spawn until GET /health/ready is 200 (it is
 *    once the replica has applied the stream's last entry as of its start). The same start on
 *    the empty stream is timed too, and subtracted: entries/s = N / (time - empty start).
 * 4. Memory: an embedded server and a replica (R1 stream) each loaded with 1M records in bulk
 *    writes of 1,000 (one command each), then a fresh replica catching up on that stream (timed
 *    as in 3: the bulk catch-up rate). Heap: V8's heapUsed after forced full GCs, read through
 *    bench/heap-probe.js (node --expose-gc -r, over an IPC channel); RSS: VmRSS of
 *    /proc/<pid>/status read just after.
 *
 * Pinning (taskset): every memdb process on CPU 0 (idle but for the one under load), the NATS
 * servers, wrk (one thread), this script and its writers on CPU 1. Write and GET rounds are
 * interleaved A B C C B A after a warm-up of each; a round during which other work took over
 * 35% of CPU 0 is repeated (bench/server.ts's steadyRound). Every nats-server is our own
 * (startNatsCluster, free loopback ports), never the shared one on 4222; every process is
 * stopped by its PID; each stream is named after this run and deleted after its phase.
 * Run: npm run bench:cluster [-- --quick] [--duration 5] [--entries 100000] [--records 1000000]
 */
import { execFileSync } from 'node:child_process';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { NATS_SERVER_BIN, startNatsCluster, type NatsCluster } from '../scripts/nats-cluster';
import { StopWaiting, exited, waitFor } from '../scripts/processes';
import { machine, markdownTable, percent, writeSection } from './results';
import {
  DISTURBED,
  HAS_TASKSET,
  HEAP_PROBE_ARGS,
  HAS_WRK,
  LOAD_TOOL,
  USER,
  argument,
  cpuColumns,
  load,
  mean,
  meanRps,
  memoryOf,
  pin,
  pinSelf,
  seedUsersAndOrders,
  startServer,
  steadyRound,
  stopAndWait,
  waitReady,
  worstP99,
  type Load,
  type Memory,
  type Round,
  type RunningServer,
} from './server';

const QUICK = process.argv.includes('--quick');
const DURATION = argument('duration', QUICK ? 1 : 5);
const WARM_UP = QUICK ? 1 : 2;
const ENTRIES = argument('entries', QUICK ? 2_000 : 100_000);
const RECORDS = argument('records', QUICK ? 20_000 : 1_000_000);
/** Write loads: one table at 1, 16 and 64 connections, then 64 spread over 16 tables. */
const WRITE_LOADS = [
  { connections: 1, tables: 1 },
  { connections: 16, tables: 1 },
  { connections: 64, tables: 1 },
  { connections: 64, tables: 16 },
] as const;
const GET_CONNECTIONS = 64;
/** GET rounds: A B C C B A this many times (GET is the ratio with a target). */
const GET_CYCLES = 2;
/** Records per bulk write (BULK_MAX's default): one command on the stream each. */
const BULK = 1_000;
/** Writes in flight while filling a stream for the catch-up (from this script, on CPU 1). */
const WRITERS = 32;
/** Tables those writes go round. */
const FILL_TABLES = 16;
/** GET / embedded at or above this is on target. */
const GET_TARGET = 0.95;
/** Time given to a server to settle (timers, consumer acks) before its memory is read. */
const SETTLE_MS = 2_000;
/** Stream names of this run: NATS_STREAM allows letters, digits, - and _. */
const RUN = `bench-${Date.now().toString(36)}`;

const mb = (bytes: number) => Math.round(bytes / 2 ** 20);
const seconds = (ms: number) => (ms / 1000).toFixed(2);

/** Where a replica's log is: a NATS cluster, a stream and its copies. */
interface StreamPlace {
  readonly cluster: NatsCluster;
  readonly stream: string;
  readonly replicas: number;
}

interface Target {
  readonly label: string;
  readonly server: RunningServer;
}

/**
 * A memdb server from dist/ on CPU 0: embedded without `place`, else a replica of its stream;
 * `env` adds to or overrides its environment.
 */
function startMemdb(
  name: string,
  place?: StreamPlace,
  probe = false,
  env: Record<string, string> = {},
): Promise<RunningServer> {
  return startServer(
    {
      BULK_MAX: '10000',
      NATS_URL: place?.cluster.urls.join(','),
      NATS_STREAM: place?.stream,
      NATS_REPLICAS: place && String(place.replicas),
      REPLICA_NAME: place && name,
      // No snapshots: a fresh replica replays the whole stream (the catch-up measured here),
      // and no write round pays for one.
      SNAPSHOT_EVERY: place && '1000000000',
      DATA_DIR: undefined,
      REDIS_URL: undefined,
      API_KEYS: undefined,
      ...env,
    },
    { cpu: 0, nodeArgs: probe ? HEAP_PROBE_ARGS : [], ipc: probe },
  );
}

/** A NATS cluster of `servers`, each pinned to CPU 1 (with the load generator). */
async function startNats(servers: number): Promise<NatsCluster> {
  const cluster = await startNatsCluster({ servers });
  for (const server of cluster.servers) pin(server.pid, 1);
  return cluster;
}

/** Deletes this run's streams (the object store's too) from `cluster`. */
async function deleteStreams(cluster: NatsCluster): Promise<string[]> {
  const nc = await connect({ servers: cluster.urls });
  const deleted: string[] = [];
  try {
    const jsm = await jetstreamManager(nc);
    for await (const name of jsm.streams.names()) {
      if (!name.includes(RUN)) continue;
      await jsm.streams.delete(name);
      deleted.push(name);
    }
  } finally {
    await nc.close();
  }
  return deleted;
}

/** Runs `task(0..count-1)` with at most `concurrency` at once. */
async function inParallel(
  count: number,
  concurrency: number,
  task: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

async function post(url: string, body: unknown): Promise<void> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`POST ${url}: ${res.status} ${text.slice(0, 300)}`);
}

const record = (i: number) => ({
  email: `u${i}@example.com`,
  full_name: `User ${i}`,
  age: i % 100,
});

/** `count` single-record POSTs (one command each), WRITERS at once, round FILL_TABLES tables. */
function writeEach(base: string, count: number): Promise<void> {
  return inParallel(count, WRITERS, (i) =>
    post(`${base}/api/v1/data/items-${i % FILL_TABLES}`, record(i)),
  );
}

/** `count` records in bulk POSTs of BULK (one command each), two at once. */
function writeBulk(base: string, count: number): Promise<void> {
  const chunks = Math.ceil(count / BULK);
  return inParallel(chunks, 2, (c) =>
    post(
      `${base}/api/v1/data/records`,
      Array.from({ length: Math.min(BULK, count - c * BULK) }, (_, j) => record(c * BULK + j)),
    ),
  );
}

interface ClusterState {
  readonly applied_seq: number;
  readonly last_seq: number;
}

async function clusterState(server: RunningServer): Promise<ClusterState> {
  const res = await fetch(`${server.baseUrl}/api/v1/cluster`, { headers: { connection: 'close' } });
  return (await res.json()) as ClusterState;
}

/**
 * Starts a replica of `place` and times it from spawn until /health/ready answers 200. With
 * LOG_LEVEL=fatal: each 503 of readiness would log two error lines (Terminus's and the request
 * log's), 20 times a second; a replica that fails exits, which stops the wait.
 */
async function timeToReady(
  name: string,
  place: StreamPlace,
  probe = false,
): Promise<{ ms: number; server: RunningServer }> {
  const started = performance.now();
  const server = await startMemdb(name, place, probe, { LOG_LEVEL: 'fatal' });
  try {
    await waitFor(
      `${name} to be ready`,
      async () => {
        if (exited(server.process)) throw new StopWaiting(`${name} exited`);
        const res = await fetch(`${server.baseUrl}/health/ready`, {
          headers: { connection: 'close' },
        });
        await res.arrayBuffer();
        return res.ok || undefined;
      },
      30 * 60_000,
    );
  } catch (error) {
    await stopAndWait(server);
    throw error;
  }
  return { ms: performance.now() - started, server };
}

interface CatchUp {
  /** Entries on the stream when the fresh replica started. */
  readonly entries: number;
  /** Spawn to ready on the empty stream, then on the filled one. */
  readonly emptyMs: number;
  readonly ms: number;
  /** Time the writes took (through `writer`, from this script). */
  readonly fillMs: number;
  /** The fresh replica, still running (the caller stops it). */
  readonly fresh: RunningServer;
}

/**
 * Times a fresh replica's start on `place`'s stream while empty (nothing to apply: the cost of
 * starting), fills the stream through `writer`, then times another fresh replica's start, and
 * checks it has applied every entry.
 */
async function catchUp(
  writer: RunningServer,
  place: StreamPlace,
  fill: () => Promise<void>,
  probe = false,
): Promise<CatchUp> {
  const empty = await timeToReady('fresh-empty', place);
  await stopAndWait(empty.server);
  const filling = performance.now();
  await fill();
  const fillMs = performance.now() - filling;
  const entries = (await clusterState(writer)).last_seq;
  console.log(`  ${entries} entries on ${place.stream} (written in ${seconds(fillMs)} s)`);
  const { ms, server: fresh } = await timeToReady('fresh', place, probe);
  const state = await clusterState(fresh);
  if (state.applied_seq < entries) {
    await stopAndWait(fresh);
    throw new Error(`the fresh replica is ready at entry ${state.applied_seq} of ${entries}`);
  }
  console.log(`  empty stream: ready in ${seconds(empty.ms)} s; filled: ${seconds(ms)} s`);
  return { entries, emptyMs: empty.ms, ms, fillMs, fresh };
}

/** `cycles` of rounds of `targets` in the order A B C C B A, after a warm-up of each. */
function interleaved(
  targets: readonly Target[],
  request: (server: RunningServer) => Load,
  connections: number,
  cycles = 1,
): Round[][] {
  for (const { server } of targets) load(request(server), WARM_UP, connections);
  const rounds: Round[][] = targets.map(() => []);
  const cycle = [...targets.keys(), ...[...targets.keys()].reverse()];
  const order = Array.from({ length: cycles }, () => cycle).flat();
  for (const i of order) {
    const { label, server } = targets[i];
    const result = steadyRound(server.process.pid, request(server), DURATION, connections);
    console.log(`  ${label}, ${connections} conn.`, result);
    rounds[i].push(result);
  }
  return rounds;
}

/** One table row of a target's rounds, with its ratio to the first target (embedded). */
function loadRow(
  label: string,
  rounds: readonly Round[],
  embedded: readonly Round[],
  extra: Record<string, string | number> = {},
): Record<string, string | number> {
  return {
    configuration: label,
    ...extra,
    'req/s': meanRps(rounds),
    'vs embedded': (meanRps(rounds) / meanRps(embedded)).toFixed(2),
    'p50 ms': mean(rounds.map((r) => r.p50)).toFixed(1),
    'p99 ms': worstP99(rounds),
    'rounds (req/s)': rounds.map((r) => r.rps).join(' '),
    ...cpuColumns(rounds, DURATION, embedded),
    'non-2xx': rounds.reduce((sum, r) => sum + r.non2xx, 0),
  };
}

/** Phases 1 and 2: GET by id, then writes, on three servers running at once. */
async function throughput(
  nats1: NatsCluster,
  nats3: NatsCluster,
): Promise<{ writes: Record<string, string | number>[]; gets: Record<string, string | number>[] }> {
  const places: (StreamPlace | undefined)[] = [
    undefined,
    { cluster: nats1, stream: `${RUN}-r1`, replicas: 1 },
    { cluster: nats3, stream: `${RUN}-r3`, replicas: 3 },
  ];
  const labels = ['embedded', 'cluster, 1 NATS server (R1)', 'cluster, 3 NATS servers (R3)'];
  const targets: Target[] = [];
  try {
    for (const [i, place] of places.entries()) {
      const server = await startMemdb(`replica-${i}`, place);
      targets.push({ label: labels[i], server });
      await waitReady(server.baseUrl);
      await seedUsersAndOrders(server.baseUrl);
    }
    console.log(`GET by id, ${GET_CONNECTIONS} connections`);
    const getRounds = interleaved(
      targets,
      (server) => ({ url: `${server.baseUrl}/api/v1/data/users/u500` }),
      GET_CONNECTIONS,
      GET_CYCLES,
    );
    const gets = targets.map((t, i) => loadRow(t.label, getRounds[i], getRounds[0]));
    const writes: Record<string, string | number>[] = [];
    for (const { connections, tables } of WRITE_LOADS) {
      console.log(`POST, ${connections} connections, ${tables} table(s)`);
      const rounds = interleaved(
        targets,
        (server) => ({
          url: `${server.baseUrl}/api/v1/data/items`,
          method: 'POST',
          body: USER,
          paths: tables > 1 ? tables : undefined,
        }),
        connections,
      );
      targets.forEach((t, i) =>
        writes.push(loadRow(t.label, rounds[i], rounds[0], { connections, tables })),
      );
    }
    return { writes, gets };
  } finally {
    for (const { server } of targets) await stopAndWait(server);
  }
}

/** Phase 3: single-record catch-up on an R3 stream. */
async function singleCatchUp(nats3: NatsCluster): Promise<Record<string, string | number>> {
  const place = { cluster: nats3, stream: `${RUN}-catchup`, replicas: 3 };
  console.log(`catch-up: ${ENTRIES} single-record writes on ${place.stream}`);
  const writer = await startMemdb('writer', place);
  try {
    await waitReady(writer.baseUrl);
    const result = await catchUp(writer, place, () => writeEach(writer.baseUrl, ENTRIES));
    await stopAndWait(result.fresh);
    return catchUpRow('single-record POSTs, R3 (3 NATS servers)', result, result.entries);
  } finally {
    await stopAndWait(writer);
    await deleteStreams(nats3);
  }
}

function catchUpRow(label: string, c: CatchUp, records: number): Record<string, string | number> {
  const applying = c.ms - c.emptyMs;
  // Under the start's own variation (a few hundred ms): no rate to speak of.
  const rate = (n: number) => (applying > 0 ? Math.round(n / (applying / 1000)) : '—');
  return {
    stream: label,
    entries: c.entries,
    records,
    'written in s (from this script)': seconds(c.fillMs),
    'start on the empty stream s': seconds(c.emptyMs),
    'start to ready s': seconds(c.ms),
    'entries/s (net of the empty start)': rate(c.entries),
    'entries/s (whole start)': Math.round(c.entries / (c.ms / 1000)),
    'records/s (net)': rate(records),
  };
}

/** Phase 4: memory with RECORDS records, embedded and in cluster mode, and the bulk catch-up. */
async function memory(nats1: NatsCluster): Promise<{
  rows: Record<string, string | number>[];
  catchUp: Record<string, string | number>;
}> {
  const rows: Record<string, string | number>[] = [];
  const row = (label: string, empty: Memory, full: Memory, base?: Memory) => ({
    process: label,
    'heap empty MB': mb(empty.heap),
    [`heap with ${RECORDS} MB`]: mb(full.heap),
    'heap B/record': Math.round((full.heap - empty.heap) / RECORDS),
    'heap vs embedded': base ? (full.heap / base.heap).toFixed(2) : '1.00',
    'RSS empty MB': mb(empty.rss),
    [`RSS with ${RECORDS} MB`]: mb(full.rss),
    'RSS vs embedded': base ? (full.rss / base.rss).toFixed(2) : '1.00',
  });

  console.log(`memory: ${RECORDS} records, embedded`);
  const embedded = await startMemdb('embedded', undefined, true);
  let base: Memory;
  try {
    await waitReady(embedded.baseUrl);
    const empty = await memoryOf(embedded, SETTLE_MS);
    await writeBulk(embedded.baseUrl, RECORDS);
    base = await memoryOf(embedded, SETTLE_MS);
    rows.push(row('embedded', empty, base));
  } finally {
    await stopAndWait(embedded);
  }

  const place = { cluster: nats1, stream: `${RUN}-heap`, replicas: 1 };
  console.log(`memory: ${RECORDS} records, cluster (${place.stream})`);
  const writer = await startMemdb('writer', place, true);
  try {
    await waitReady(writer.baseUrl);
    const empty = await memoryOf(writer, SETTLE_MS);
    let full: Memory | undefined;
    const result = await catchUp(
      writer,
      place,
      async () => {
        await writeBulk(writer.baseUrl, RECORDS);
        full = await memoryOf(writer, SETTLE_MS);
      },
      true,
    );
    try {
      rows.push(row('cluster replica that took the writes (R1)', empty, full!, base));
      const caughtUp = await memoryOf(result.fresh, SETTLE_MS);
      rows.push(row('fresh cluster replica, caught up from the stream', empty, caughtUp, base));
    } finally {
      await stopAndWait(result.fresh);
    }
    return {
      rows,
      catchUp: catchUpRow(`bulk POSTs of ${BULK}, R1 (1 NATS server)`, result, RECORDS),
    };
  } finally {
    await stopAndWait(writer);
    await deleteStreams(nats1);
  }
}

async function main(): Promise<void> {
  // Spreading a load over several tables (and one load tool for every number) needs wrk.
  if (!HAS_WRK) throw new Error('bench:cluster needs wrk: apt-get install wrk');
  const pinned = pinSelf(1);
  const natsVersion = execFileSync(NATS_SERVER_BIN, ['--version'], { encoding: 'utf8' }).trim();
  console.log(`load: ${LOAD_TOOL}; ${natsVersion}; streams ${RUN}-*; quick: ${QUICK}`);
  const clusters: NatsCluster[] = [];
  try {
    const nats1 = await startNats(1);
    clusters.push(nats1);
    const nats3 = await startNats(3);
    clusters.push(nats3);

    const { writes, gets } = await throughput(nats1, nats3);
    for (const cluster of clusters) await deleteStreams(cluster);
    const single = await singleCatchUp(nats3);
    const heap = await memory(nats1);

    console.table(writes);
    console.table(gets);
    console.table([single, heap.catchUp]);
    console.table(heap.rows);

    const ratios = gets.slice(1).map((row) => Number(row['vs embedded']));
    const verdict = `${gets
      .slice(1)
      .map((row) => `${String(row.configuration)} ${row['vs embedded']}×`)
      .join(', ')}: ${
      ratios.every((r) => r >= GET_TARGET) ? 'on target' : '**below the target**'
    } by req/s`;
    const options = QUICK
      ? ' -- --quick'
      : ` -- --duration ${DURATION} --entries ${ENTRIES} --records ${RECORDS}`;
    writeSection(
      'cluster',
      [
        `## Issue 12: cluster mode (NATS JetStream)${QUICK ? ' (quick smoke run: short rounds, small data)' : ''}`,
        '',
        `Command: \`npm run bench:cluster${options}\` (bench/cluster.ts).`,
        `${machine()}; ${natsVersion} (our own servers on free loopback ports, JetStream file storage in a temporary directory); memdb from dist/ (Express, THROTTLE_LIMIT=0, LOG_LEVEL=warn, BULK_MAX=10000); load: ${LOAD_TOOL}. **Two cores for everything**: ${HAS_TASKSET && pinned ? 'with taskset, every memdb process on CPU 0 (idle but for the one under load), the NATS servers, wrk, this script and its writers on CPU 1' : 'no taskset: everything shares both cores'}. So a cluster number here includes NATS competing with the load generator for one core, and all three NATS servers of R3 on that same core: a ratio between configurations in this run says more than any absolute number. Other work on the machine (tests) may run meanwhile: a round during which it took over ${percent(DISTURBED)} of CPU 0 is repeated ("CPU 0 other" also counts the kernel's loopback work for the load); on CPU 1 it slows the load generator and NATS, which no column shows but "memdb busy": a memdb below ~90% busy was held back by something else (NATS round trips, its table's lock, or a starved wrk). "memdb CPU µs/req" is the server's CPU time (/proc/<pid>/stat) per answered request, and its ratio to embedded's: what a request costs memdb, whatever held the load back.`,
        '',
        `### Writes: POST /api/v1/data/items \`${JSON.stringify(USER)}\``,
        '',
        `One memdb replica per cluster: the replica that takes a write answers once it has applied it, and other replicas never hold it up (they only consume the stream), so more replicas would change the NATS servers' work, not this path. The three servers run at once, each seeded alike; per connection count a ${WARM_UP} s warm-up of each, then ${DURATION} s rounds in the order embedded, R1, R3, R3, R1, embedded: req/s is the mean of a configuration's two rounds, p50 their mean, p99 the worse. The last load spreads its 64 connections round 16 tables (items-0 to items-15), to compare with one table (before cluster writes stopped holding their table's lock across the round trip to NATS, one table took one write per round trip). Cluster replicas run with SNAPSHOT_EVERY=1000000000: no snapshot during the rounds, and a fresh replica replays the whole stream.`,
        '',
        markdownTable(writes),
        '',
        `### GET /api/v1/data/users/u500 (${GET_CONNECTIONS} connections), before any write round`,
        '',
        `Each server holds the same 1,000 users and 5,000 orders (seeded through its own API). A replica reads its local state (\`X-Memdb-Consistency: local\`, the default); NATS is not on the read path. A ${WARM_UP} s warm-up of each, then ${DURATION} s rounds in the order embedded, R1, R3, R3, R1, embedded, ${GET_CYCLES} times: req/s is the mean of a configuration's ${2 * GET_CYCLES} rounds. Target: ≥ ${GET_TARGET}× embedded: ${verdict}.`,
        '',
        markdownTable(gets),
        '',
        '### Catch-up: a fresh replica applying the stream',
        '',
        `Spawn (node dist/main.js) to the first 200 of GET /health/ready, polled every 50 ms (the timed replicas run with LOG_LEVEL=fatal: each 503 of readiness would log two error lines): ready once the replica has applied the last entry the stream held at its start (checked: its \`applied_seq\` is the stream's last sequence). "Empty stream" is the same start with nothing to apply (node, Nest, connecting to NATS), subtracted for the net rate. Single-record POSTs are one command each (written by this script, ${WRITERS} at once round ${FILL_TABLES} tables, to fill the stream faster; the rate of applying does not depend on it); a bulk POST of 1,000 records is one command too (so entries/s and records/s differ).`,
        '',
        markdownTable([single, heap.catchUp]),
        '',
        `### Memory with ${RECORDS} records`,
        '',
        `Records \`{"email":"u<i>@example.com","full_name":"User <i>","age":<i % 100>}\` written in bulk POSTs of ${BULK} to one table (ids and times given by the server). "Heap" is V8's heapUsed after forced full GCs (node --expose-gc with bench/heap-probe.js preloaded, asked over an IPC channel; nothing else in the server changes); "RSS" is VmRSS from /proc/<pid>/status read right after, ${SETTLE_MS / 1000} s after the last write: it includes memory V8 keeps after the GC and the node binary. "Empty" is the same process before its first record (for the fresh replica: the writer's empty figure, as it is not measured before it catches up).`,
        '',
        markdownTable(heap.rows),
      ].join('\n'),
    );
  } finally {
    for (const cluster of clusters) {
      await deleteStreams(cluster).catch((error: unknown) =>
        console.warn('deleting the streams:', error),
      );
      await cluster.stop();
    }
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
