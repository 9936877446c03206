/**
 * Issue 13's change feed benchmark (GET /api/v1/changes as Server-Sent Events), in one run on
 * this machine (2 cores: memdb on one, every client on the other):
 *
 * 1. Write throughput with SUBSCRIBERS connected SSE subscribers vs none: POST
 *    /api/v1/data/items with a small JSON record (wrk, one thread, 16 then 50 connections). Two
 *    servers run at once, pinned to CPU 0 (idle but for the one under load): one with the
 *    subscribers connected throughout, one with none. Per connection count, rounds none, with,
 *    with, none (CYCLES times) after a warm-up of each; a round during which other work took over 35% of CPU 0 is
 *    repeated (bench/server.ts's steadyRound). The subscribers take the whole feed (no `tables`
 *    filter: every write's event reaches every one of them) and read every event; after each
 *    round the script waits for all of them to have the round's last event and checks each got
 *    exactly one event per position in the round (every write of this benchmark is one record,
 *    so one log entry and one change: last seq - first seq).
 * 2. Latency from a write's answer to its event at a subscriber: a prober (its own process)
 *    writes one record to the table `probe` at a time, one every PROBE_INTERVAL_MS at most,
 *    timing each answer; every subscriber times the receipt of that event. Same clock
 *    (CLOCK_MONOTONIC) in every process. Measured with no other load, and during the throughput
 *    rounds (the prober writes to the server under load in every round, with or without
 *    subscribers, so both sides carry it).
 * 3. Heap per subscriber: a fresh server (bench/heap-probe.js preloaded) measured with none,
 *    with SUBSCRIBERS idle subscribers, and after they left: V8 heapUsed after forced full GCs,
 *    and VmRSS.
 *
 * The subscribers (a raw http.get each, in bench/changes-clients.ts), the prober, wrk and this
 * script share CPU 1. Run: npm run bench:changes [-- --quick] [--duration 5]
 * [--connections 16,50] [--subscribers 200] [--cycles 2] [--adapter express|fastify] [--profile <dir>: a CPU profile of the server with
 * subscribers, for Chrome DevTools]
 */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { killOnExit } from '../scripts/processes';
import {
  PROBE_TABLE,
  now,
  type ProbeWrite,
  type Reply,
  type Request,
  type WindowReport,
} from './changes-clients';
import { machine, markdownTable, percent, writeSection } from './results';
import {
  DISTURBED,
  HAS_TASKSET,
  HAS_WRK,
  HEAP_PROBE_ARGS,
  LOAD_TOOL,
  USER,
  argument,
  cpuColumns,
  load,
  mean,
  meanRps,
  memoryOf,
  option,
  pin,
  pinSelf,
  processTicks,
  startServer,
  steadyRound,
  stopAndWait,
  worstP99,
  type Load,
  type Round,
  type RunningServer,
} from './server';

const QUICK = process.argv.includes('--quick');
const DURATION = argument('duration', QUICK ? 1 : 5);
const WARM_UP = QUICK ? 1 : 2;
/** wrk's connections: a list, `--connections 16,50`. */
const CONNECTIONS = option('connections', '16,50').split(',').map(Number);
const ADAPTER = option('adapter', 'express');
const SUBSCRIBERS = argument('subscribers', 200);
/** Rounds none, with, with, none this many times. */
const CYCLES = argument('cycles', QUICK ? 1 : 2);
/** with / none at or above this is on target. */
const TARGET = 0.7;
/** The prober's pace: one write at a time, one every this many ms at most. */
const PROBE_INTERVAL_MS = 10;
/** How long the prober writes with no other load. */
const QUIET_PROBE_MS = QUICK ? 1_000 : 10_000;
/** How long subscribers may take to get a round's last event once it is over. */
const DRAIN_TIMEOUT_MS = 120_000;
const SETTLE_MS = 2_000;
const TABLE = 'items';
const PROFILE = option('profile');
const SERVER_ENV = { CHANGES_MAX_SUBSCRIBERS: '100000', HTTP_ADAPTER: ADAPTER };

const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(1);

/** A client process of bench/changes-clients.ts, asked one thing at a time. */
class Clients {
  private constructor(private readonly child: ChildProcess) {}

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Forks `role` (subscribers or prober) with ts-node, pinned to CPU 1. */
  static async start(role: 'subscribers' | 'prober'): Promise<Clients> {
    const child = killOnExit(
      fork(join(__dirname, 'changes-clients.ts'), [role], {
        execArgv: ['-r', 'ts-node/register/transpile-only'],
      }),
    );
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    pin(child.pid!, 1);
    return new Clients(child);
  }

  ask<T extends Reply['type']>(message: Request, type: T): Promise<Extract<Reply, { type: T }>> {
    return new Promise((resolve, reject) => {
      const exit = (code: number | null) =>
        reject(new Error(`changes-clients exited (${code}) before answering ${message.type}`));
      this.child.once('exit', exit);
      this.child.once('message', (answer: Reply) => {
        this.child.off('exit', exit);
        if (answer.type !== type) reject(new Error(`expected ${type}, got ${answer.type}`));
        else resolve(answer as Extract<Reply, { type: T }>);
      });
      this.child.send(message);
    });
  }

  stop(): void {
    this.child.disconnect();
  }
}

/** The server's applied sequence (X-Memdb-Seq of a read): the last position written so far. */
async function seqOf(server: RunningServer): Promise<number> {
  const res = await fetch(`${server.baseUrl}/api/v1/tables`, { headers: { connection: 'close' } });
  await res.arrayBuffer();
  const seq = Number(res.headers.get('x-memdb-seq'));
  if (!(seq > 0)) throw new Error(`GET /api/v1/tables: no X-Memdb-Seq (${res.status})`);
  return seq;
}

async function createTables(server: RunningServer): Promise<void> {
  for (const table of [TABLE, PROBE_TABLE]) {
    const res = await fetch(`${server.baseUrl}/api/v1/data/${table}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(USER),
    });
    await res.arrayBuffer();
    if (res.status !== 201) throw new Error(`POST ${table}: ${res.status}`);
  }
}

const feedUrl = (server: RunningServer) => `${server.baseUrl}/api/v1/changes`;

/** p (0..1) of sorted values. */
function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;
}

/** Answer-to-event latencies of the prober's writes, and the receipts missing. */
interface Latencies {
  readonly probes: number;
  /** ms from each write's answer to its event at each subscriber. */
  readonly values: number[];
  readonly missing: number;
  /** The prober's own answer times, ms. */
  readonly answers: number[];
}

function latencies(
  writes: readonly ProbeWrite[],
  window: WindowReport,
  after: number,
  through: number,
): Latencies {
  const values: number[] = [];
  let missing = 0;
  let probes = 0;
  for (const write of writes) {
    if (write.seq <= after || write.seq > through) continue;
    probes++;
    const receipts = window.receipts[write.seq] ?? [];
    missing += SUBSCRIBERS - receipts.length;
    for (const at of receipts) values.push(at - write.answeredAt);
  }
  return {
    probes,
    values,
    missing,
    answers: writes.map((w) => w.answeredAt - w.sentAt),
  };
}

function merge(all: readonly Latencies[]): Latencies {
  return {
    probes: all.reduce((n, l) => n + l.probes, 0),
    values: all.flatMap((l) => l.values),
    missing: all.reduce((n, l) => n + l.missing, 0),
    answers: all.flatMap((l) => l.answers),
  };
}

function latencyRow(scenario: string, l: Latencies): Record<string, string | number> {
  const sorted = [...l.values].sort((a, b) => a - b);
  const answers = [...l.answers].sort((a, b) => a - b);
  const ms = (v: number) => v.toFixed(2);
  return {
    scenario,
    'probe writes': l.probes,
    'events timed': sorted.length,
    'p50 ms': ms(percentile(sorted, 0.5)),
    'p90 ms': ms(percentile(sorted, 0.9)),
    'p99 ms': ms(percentile(sorted, 0.99)),
    'max ms': ms(sorted.at(-1) ?? NaN),
    'event before the answer': percent(sorted.filter((v) => v < 0).length / (sorted.length || 1)),
    missing: l.missing,
    'probe write p50 / p99 ms': `${ms(percentile(answers, 0.5))} / ${ms(percentile(answers, 0.99))}`,
  };
}

/** What the subscribers got in one round: checked against the positions written. */
interface Delivery {
  readonly expected: number;
  readonly report: WindowReport;
  readonly complete: boolean;
}

interface Side {
  readonly label: string;
  readonly server: RunningServer;
  readonly subscribed: boolean;
}

/** One side's rounds at one connection count. */
interface Rounds {
  readonly rounds: Round[];
  readonly deliveries: Delivery[];
  readonly latencies: Latencies[];
  /** Share of a core the subscribers' process took in each round. */
  readonly clientsBusy: number[];
}

/** Both sides' rounds (none, with) at one connection count. */
interface Level {
  readonly connections: number;
  readonly sides: readonly [Rounds, Rounds];
}

/** One round on `side`: the prober runs throughout; with subscribers, their delivery is checked. */
async function round(
  side: Side,
  into: Rounds,
  connections: number,
  subscribers: Clients,
  prober: Clients,
  target: Load,
): Promise<void> {
  const after = await seqOf(side.server);
  if (side.subscribed) await subscribers.ask({ type: 'window', after }, 'window');
  await prober.ask(
    {
      type: 'start',
      url: `${side.server.baseUrl}/api/v1/data/${PROBE_TABLE}`,
      intervalMs: PROBE_INTERVAL_MS,
    },
    'started',
  );
  const [ticks, started] = [processTicks(subscribers.pid), now()];
  const result = steadyRound(side.server.process.pid, target, DURATION, connections);
  // /proc's clock ticks are 10 ms.
  into.clientsBusy.push(
    (((processTicks(subscribers.pid) ?? NaN) - (ticks ?? NaN)) * 10) / (now() - started),
  );
  const { writes, failed } = await prober.ask({ type: 'stop' }, 'stopped');
  const through = await seqOf(side.server);
  into.rounds.push(result);
  let line = `  ${side.label}: ${JSON.stringify(result)}; prober ${writes.length} writes (${failed} failed)`;
  if (side.subscribed) {
    const started = now();
    const report = await subscribers.ask(
      { type: 'drain', through, timeoutMs: DRAIN_TIMEOUT_MS },
      'drained',
    );
    const expected = through - after;
    const complete = report.drained && report.counts.every((c) => c === expected);
    into.deliveries.push({ expected, report, complete });
    into.latencies.push(latencies(writes, report, after, through));
    line += `; ${expected} events each: ${complete ? 'all delivered' : `INCOMPLETE (min ${Math.min(...report.counts)}, max ${Math.max(...report.counts)})`}, drained in ${Math.round(now() - started)} ms`;
  }
  console.log(line);
}

/** Phase 1 and, on the subscribed server, phase 2 under load. */
async function throughput(subscribers: Clients, prober: Clients) {
  const sides: Side[] = [];
  try {
    for (const [label, subscribed] of [
      ['no subscribers', false],
      [`${SUBSCRIBERS} SSE subscribers (whole feed)`, true],
    ] as const) {
      // --profile: a CPU profile of the server with subscribers, written when it stops.
      const nodeArgs = subscribed && PROFILE ? ['--cpu-prof', '--cpu-prof-dir', PROFILE] : [];
      const server = await startServer(SERVER_ENV, { cpu: 0, nodeArgs });
      sides.push({ label, server, subscribed });
      await createTables(server);
    }
    const opened = await subscribers.ask(
      { type: 'open', url: feedUrl(sides[1].server), count: SUBSCRIBERS },
      'opened',
    );
    console.log(`${opened.count} subscribers opened in ${Math.round(opened.ms)} ms`);

    const target = (server: RunningServer): Load => ({
      url: `${server.baseUrl}/api/v1/data/${TABLE}`,
      method: 'POST',
      body: USER,
    });
    const levels: Level[] = [];
    for (const connections of CONNECTIONS) {
      const fresh = (): Rounds => ({ rounds: [], deliveries: [], latencies: [], clientsBusy: [] });
      const level: Level = { connections, sides: [fresh(), fresh()] };
      levels.push(level);
      for (const side of sides) load(target(side.server), WARM_UP, connections);
      // The warm-up's events are read before the first round starts.
      await subscribers.ask(
        { type: 'drain', through: await seqOf(sides[1].server), timeoutMs: DRAIN_TIMEOUT_MS },
        'drained',
      );
      console.log(`POST /api/v1/data/${TABLE}, ${connections} connections`);
      const order = Array.from({ length: CYCLES }, () => [0, 1, 1, 0]).flat();
      for (const i of order) {
        const side = sides[i];
        await round(side, level.sides[i], connections, subscribers, prober, target(side.server));
      }
    }
    console.log('latency, no other load');
    const quiet = await quietLatency(sides[1].server, subscribers, prober);
    return { sides, levels, quiet };
  } finally {
    await subscribers.ask({ type: 'close' }, 'closed').catch(() => undefined);
    for (const { server } of sides) await stopAndWait(server);
  }
}

/** The prober alone against `server` (its subscribers connected) for QUIET_PROBE_MS. */
async function quietLatency(
  server: RunningServer,
  subscribers: Clients,
  prober: Clients,
): Promise<Latencies> {
  const after = await seqOf(server);
  await subscribers.ask({ type: 'window', after }, 'window');
  await prober.ask(
    {
      type: 'start',
      url: `${server.baseUrl}/api/v1/data/${PROBE_TABLE}`,
      intervalMs: PROBE_INTERVAL_MS,
    },
    'started',
  );
  await new Promise((resolve) => setTimeout(resolve, QUIET_PROBE_MS));
  const { writes } = await prober.ask({ type: 'stop' }, 'stopped');
  const through = await seqOf(server);
  const report = await subscribers.ask(
    { type: 'drain', through, timeoutMs: DRAIN_TIMEOUT_MS },
    'drained',
  );
  const expected = through - after;
  if (!report.counts.every((c) => c === expected))
    throw new Error(
      `quiet latency: subscribers got ${Math.min(...report.counts)} to ${Math.max(...report.counts)} of ${expected} events`,
    );
  return latencies(writes, report, after, through);
}

/** Phase 3: heap and RSS of a fresh server with no subscribers, SUBSCRIBERS idle ones, none again. */
async function heap(subscribers: Clients): Promise<Record<string, string | number>[]> {
  const server = await startServer(SERVER_ENV, { cpu: 0, nodeArgs: HEAP_PROBE_ARGS, ipc: true });
  try {
    await createTables(server);
    const none = await memoryOf(server, SETTLE_MS);
    await subscribers.ask({ type: 'open', url: feedUrl(server), count: SUBSCRIBERS }, 'opened');
    const open = await memoryOf(server, SETTLE_MS);
    await subscribers.ask({ type: 'close' }, 'closed');
    const after = await memoryOf(server, SETTLE_MS);
    const kb = (bytes: number) => (bytes / 1024 / SUBSCRIBERS).toFixed(1);
    return [
      {
        state: 'no subscribers',
        'heap MB': mb(none.heap),
        'RSS MB': mb(none.rss),
        'heap KB / subscriber': '',
        'RSS KB / subscriber': '',
      },
      {
        state: `${SUBSCRIBERS} idle subscribers`,
        'heap MB': mb(open.heap),
        'RSS MB': mb(open.rss),
        'heap KB / subscriber': kb(open.heap - none.heap),
        'RSS KB / subscriber': kb(open.rss - none.rss),
      },
      {
        state: 'after they disconnected',
        'heap MB': mb(after.heap),
        'RSS MB': mb(after.rss),
        'heap KB / subscriber': '',
        'RSS KB / subscriber': '',
      },
    ];
  } finally {
    await stopAndWait(server);
  }
}

function throughputRow(
  label: string,
  connections: number,
  side: Rounds,
  none: Rounds,
): Record<string, string | number> {
  const delivered =
    side.deliveries.length > 0
      ? side.deliveries.every((d) => d.complete)
        ? `all: ${side.deliveries.map((d) => d.expected).join(', ')} events × ${SUBSCRIBERS}`
        : `**incomplete**: ${side.deliveries.map((d) => `${Math.min(...d.report.counts)}–${Math.max(...d.report.counts)} of ${d.expected}`).join(', ')}`
      : '—';
  return {
    configuration: label,
    connections,
    'req/s': meanRps(side.rounds),
    'vs none': (meanRps(side.rounds) / meanRps(none.rounds)).toFixed(2),
    'p50 ms': mean(side.rounds.map((r) => r.p50)).toFixed(1),
    'p99 ms': worstP99(side.rounds),
    'rounds (req/s)': side.rounds.map((r) => r.rps).join(' '),
    ...cpuColumns(side.rounds, DURATION, none.rounds),
    'non-2xx': side.rounds.reduce((n, r) => n + r.non2xx, 0),
    'events delivered (per round)': delivered,
    'last event after the round, ms (worst)':
      side.deliveries.length > 0
        ? Math.round(Math.max(...side.deliveries.map((d) => d.report.drainMs)))
        : '—',
    'subscribers process busy (CPU 1)':
      side.deliveries.length > 0 ? percent(mean(side.clientsBusy)) : '—',
  };
}

async function main(): Promise<void> {
  if (!HAS_WRK) throw new Error('bench:changes needs wrk: apt-get install wrk');
  const pinned = pinSelf(1);
  console.log(`load: ${LOAD_TOOL}; ${SUBSCRIBERS} subscribers; quick: ${QUICK}`);
  const subscribers = await Clients.start('subscribers');
  const prober = await Clients.start('prober');
  try {
    const { sides, levels, quiet } = await throughput(subscribers, prober);
    const memory = await heap(subscribers);

    const writes = levels.flatMap(({ connections, sides: [none, subscribed] }) => [
      throughputRow(sides[0].label, connections, none, none),
      throughputRow(sides[1].label, connections, subscribed, none),
    ]);
    const lat = [
      latencyRow(`${SUBSCRIBERS} subscribers, no other load`, quiet),
      ...levels.map(({ connections, sides: [, subscribed] }) =>
        latencyRow(
          `${SUBSCRIBERS} subscribers, during the write rounds (${connections} connections)`,
          merge(subscribed.latencies),
        ),
      ),
    ];
    console.table(writes);
    console.table(lat);
    console.table(memory);

    const ratios = levels.map(
      ({ sides: [none, subscribed] }) => meanRps(subscribed.rounds) / meanRps(none.rounds),
    );
    const complete = levels.every((l) => l.sides[1].deliveries.every((d) => d.complete));
    const verdict = `With ${SUBSCRIBERS} subscribers: ${levels.map((l, i) => `${ratios[i].toFixed(2)}× the writes/s of none at ${l.connections} connections`).join(', ')} (target ≥ ${TARGET}×: ${ratios.every((r) => r >= TARGET) ? 'on target' : '**below the target**'}); ${complete ? 'every subscriber got every event of every round' : '**some subscribers missed events**'}.`;
    console.log(verdict);
    const options = QUICK
      ? ' -- --quick'
      : ` -- --duration ${DURATION} --connections ${CONNECTIONS.join(',')} --subscribers ${SUBSCRIBERS} --cycles ${CYCLES}${ADAPTER === 'express' ? '' : ` --adapter ${ADAPTER}`}`;
    writeSection(
      'changes',
      [
        `## Issue 13: the change feed with subscribers${QUICK ? ' (quick smoke run: short rounds)' : ''}`,
        '',
        `Command: \`npm run bench:changes${options}\` (bench/changes.ts, clients in bench/changes-clients.ts).`,
        `${machine()}; memdb from dist/ (${ADAPTER === 'express' ? 'Express' : 'Fastify'}, THROTTLE_LIMIT=0, LOG_LEVEL=warn, CHANGES_MAX_SUBSCRIBERS=100000, other CHANGES_* at their defaults); load: ${LOAD_TOOL}. **Two cores**: ${HAS_TASKSET && pinned ? 'with taskset, memdb on CPU 0 (two servers, idle but for the one under load); wrk, the subscribers (one Node process), the prober (another) and this script on CPU 1' : 'no taskset: everything shares both cores'}. So the clients compete with wrk for one core: with subscribers, wrk has less of CPU 1, and "memdb busy" below ~90% means memdb was held back by its clients rather than by its own work; "memdb CPU µs/req" (the server's CPU time per answered write, from /proc, and its ratio to none) is what a write costs memdb whatever held the load back. Other work on the machine (tests) may run meanwhile: compare ratios within this run, not absolute numbers across runs; a round during which other work took over ${percent(DISTURBED)} of CPU 0 is repeated ("CPU 0 other" also counts the kernel's loopback work).`,
        '',
        `### Writes: POST /api/v1/data/${TABLE} \`${JSON.stringify(USER)}\`, ${CONNECTIONS.join(' and ')} connections`,
        '',
        `Subscribers: \`GET /api/v1/changes\` with \`Accept: text/event-stream\` and no \`tables\` filter (the whole feed: every write of this benchmark reaches every subscriber), each a raw \`http.get\` on its own socket that splits the stream into frames and reads each one's \`event:\` and \`id:\` lines. Two servers run at once, one with the ${SUBSCRIBERS} subscribers connected throughout, one with none; per connection count a ${WARM_UP} s warm-up of each, then ${DURATION} s rounds in the order none, with, with, none (${CYCLES}×): req/s is the mean of a configuration's rounds, p50 their mean, p99 the worst. A prober (below) writes to the server under load in every round, on both sides. After each round with subscribers, the script waits until every subscriber has the round's last event ("last event after the round": how far behind the slowest subscriber was when the load stopped; "subscribers process busy": the CPU the subscribers' process took, as a share of one core, so whether they kept up without starving wrk) and checks each got exactly one change event per log position of the round (each write is one record: one entry, one change).`,
        '',
        markdownTable(writes),
        '',
        verdict,
        '',
        `### Latency from a write's answer to its event at a subscriber`,
        '',
        `A prober process writes one record at a time to the table \`${PROBE_TABLE}\` (one every ${PROBE_INTERVAL_MS} ms at most) and notes when each answer arrived and its \`X-Memdb-Seq\`; each subscriber notes when the chunk holding that position's event arrived. Both clocks are CLOCK_MONOTONIC (process.hrtime) on this machine. The latency is receipt minus answer, for every subscriber and write (${SUBSCRIBERS} values per write); it can be negative, as the server pushes the event in the same turn it sends the answer. "No other load": ${QUIET_PROBE_MS / 1000} s of the prober alone; "during the write rounds": the prober in the rounds above, so the event waits behind wrk's writes' events too, and the subscribers' process shares CPU 1 with wrk.`,
        '',
        markdownTable(lat),
        '',
        `### Memory per subscriber`,
        '',
        `A fresh server (bench/heap-probe.js preloaded: V8's heapUsed after forced full GCs, over an IPC channel; VmRSS from /proc right after), ${SETTLE_MS / 1000} s after each change: no subscribers, ${SUBSCRIBERS} idle subscribers (connected, nothing written), and after they disconnected.`,
        '',
        markdownTable(memory),
      ].join('\n'),
    );
  } finally {
    subscribers.stop();
    prober.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
