import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../scripts/processes';
import { percent } from './results';

/** memdb's two HTTP adapters (HTTP_ADAPTER) and their labels. */
export const ADAPTERS = [
  ['express', 'Express'],
  ['fastify', 'Fastify'],
] as const;

/** The body the HTTP benchmarks POST to /api/v1/data/users (and to the peers' users). */
export const USER = { email: 'ada@example.com', full_name: 'Ada Lovelace', age: 36 };

export interface RunningServer {
  readonly baseUrl: string;
  readonly process: ChildProcess;
  stop(): void;
}

export { freePort };

/** Whether `taskset` can pin processes to CPUs here (Linux with util-linux). */
export const HAS_TASKSET = (() => {
  try {
    execFileSync('taskset', ['-c', '0', 'true'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/**
 * Pins process `pid`, all its threads (a Go server's too), to `cpu` when taskset exists; says
 * whether it did.
 */
export function pin(pid: number, cpu: number): boolean {
  if (!HAS_TASKSET) return false;
  execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' });
  return true;
}

/** Pins this process to `cpu` when taskset exists; says whether it did. */
export function pinSelf(cpu: number): boolean {
  return pin(process.pid, cpu);
}

/**
 * Starts the built server (dist/) on a free loopback port and waits for /health; with `cpu`,
 * pinned to that CPU where taskset exists. `root`: the checkout whose dist/main.js runs (its
 * working directory too), this one by default. `quiet`: its stdout (the request log) goes to
 * /dev/null. `nodeArgs` go to node before the script; `ipc` opens an IPC channel to it (for
 * bench/heap-probe.js). An env value of undefined removes the variable (LOG_LEVEL: the server's
 * default).
 */
export async function startServer(
  env: Record<string, string | undefined> = {},
  {
    cpu,
    root = join(__dirname, '..'),
    quiet = false,
    nodeArgs = [],
    ipc = false,
  }: { cpu?: number; root?: string; quiet?: boolean; nodeArgs?: string[]; ipc?: boolean } = {},
): Promise<RunningServer> {
  const port = await freePort();
  const main = [...nodeArgs, join(root, 'dist', 'main.js')];
  const [command, args] =
    cpu !== undefined && HAS_TASKSET
      ? ['taskset', ['-c', String(cpu), process.execPath, ...main]]
      : [process.execPath, main];
  const merged: Record<string, string | undefined> = {
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    THROTTLE_LIMIT: '0',
    LOG_LEVEL: 'warn',
    ...env,
  };
  const child = spawn(command, args, {
    cwd: root,
    env: Object.fromEntries(Object.entries(merged).filter(([, value]) => value !== undefined)),
    stdio: ['ignore', quiet ? 'ignore' : 'inherit', 'inherit', ...(ipc ? ['ipc' as const] : [])],
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    if (
      await fetch(`${baseUrl}/health`).then(
        (r) => r.ok,
        () => false,
      )
    )
      break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { baseUrl, process: child, stop: () => child.kill('SIGTERM') };
}

/** Waits for readiness: with DATA_DIR, /health answers before the files are loaded. */
export async function waitReady(baseUrl: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`${baseUrl}/health/ready`, { headers: { connection: 'close' } }).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${baseUrl} did not become ready`);
}

/** Stops the server gracefully (SIGTERM) and waits for it to exit; SIGKILL after 15 s. */
export async function stopAndWait(server: RunningServer): Promise<void> {
  const child = server.process;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve();
    }, 15_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  server.stop();
  await exited;
}

/** A numeric `--name value` command-line option. */
export function argument(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  return index === -1 ? fallback : Number(process.argv[index + 1]);
}

/** A `--name value` string option (undefined when absent and no fallback). */
export function option(name: string, fallback: string): string;
export function option(name: string, fallback?: string): string | undefined;
export function option(name: string, fallback?: string): string | undefined {
  const index = process.argv.indexOf(`--${name}`);
  return index === -1 ? fallback : process.argv[index + 1];
}

/** One autocannon target: a URL, and for POST a JSON body. */
export interface Load {
  readonly url: string;
  readonly method?: 'GET' | 'POST';
  readonly body?: object;
  /** POST round `url`-0 to `url`-<paths - 1> (several tables); wrk only. */
  readonly paths?: number;
}

export interface LoadResult {
  readonly rps: number;
  /** Latency percentiles, ms. */
  readonly p50: number;
  readonly p99: number;
  readonly non2xx: number;
}

/** One autocannon run in its own process, pinned to `cpu` where taskset exists. */
export function autocannon(
  { url, method = 'GET', body, paths }: Load,
  duration: number,
  connections: number,
  cpu = 1,
): LoadResult {
  if (paths !== undefined) throw new Error('autocannon: paths needs wrk');
  const args = [
    join(__dirname, '..', 'node_modules', 'autocannon', 'autocannon.js'),
    '--json',
    '-c',
    String(connections),
    '-d',
    String(duration),
  ];
  if (method === 'POST')
    args.push('-m', 'POST', '-H', 'content-type=application/json', '-b', JSON.stringify(body));
  args.push(url);
  const [command, argv] = HAS_TASKSET
    ? ['taskset', ['-c', String(cpu), process.execPath, ...args]]
    : [process.execPath, args];
  const out = JSON.parse(
    execFileSync(command, argv, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }),
  ) as { requests: { average: number }; latency: { p50: number; p99: number }; non2xx: number };
  return {
    rps: out.requests.average,
    p50: out.latency.p50,
    p99: out.latency.p99,
    non2xx: out.non2xx,
  };
}

/** Whether wrk (the HTTP load generator) is installed. */
export const HAS_WRK = (() => {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
    return true;
  } catch (error) {
    // wrk --version prints its version and exits 1
    return (error as { status?: number }).status === 1;
  }
})();

/**
 * One wrk run (one thread: the load is pinned to one CPU) in its own process, pinned to `cpu`
 * where taskset exists. bench/wrk-report.lua makes a POST of the body and prints the summary as
 * JSON; non2xx counts answers of status 400 and above (wrk's status errors). Latencies in ms,
 * rounded to 0.1 ms.
 */
export function wrk(
  { url, method = 'GET', body, paths }: Load,
  duration: number,
  connections: number,
  cpu = 1,
): LoadResult {
  const args = [
    '-t1',
    `-c${connections}`,
    `-d${duration}s`,
    '-s',
    join(__dirname, 'wrk-report.lua'),
    url,
    ...(method === 'POST' ? ['--', JSON.stringify(body)] : []),
    ...(method === 'POST' && paths !== undefined ? [String(paths)] : []),
  ];
  const [command, argv] = HAS_TASKSET
    ? ['taskset', ['-c', String(cpu), 'wrk', ...args]]
    : ['wrk', args];
  const out = execFileSync(command, argv, { encoding: 'utf8' });
  const line = out.split('\n').find((l) => l.startsWith('{"wrk":'));
  if (line === undefined) throw new Error(`wrk printed no summary:\n${out}`);
  const summary = JSON.parse(line) as {
    requests: number;
    durationUs: number;
    status: number;
    socket: number;
    p50Us: number;
    p99Us: number;
  };
  if (summary.socket > 0) console.warn(`wrk: ${summary.socket} socket errors or timeouts (${url})`);
  const ms = (us: number) => Math.round(us / 100) / 10;
  return {
    rps: Math.round(summary.requests / (summary.durationUs / 1e6)),
    p50: ms(summary.p50Us),
    p99: ms(summary.p99Us),
    non2xx: summary.status,
  };
}

/** Busy and total clock ticks of CPU 0 (/proc/stat), or undefined off Linux. */
export function cpu0(): { busy: number; total: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('cpu0 '));
    if (line === undefined) return undefined;
    const ticks = line.trim().split(/\s+/).slice(1).map(Number);
    const total = ticks.reduce((a, b) => a + b, 0);
    return { busy: total - ticks[3] - (ticks[4] ?? 0), total };
  } catch {
    return undefined;
  }
}

/** CPU ticks (user + system) used so far by process `pid`, or undefined off Linux. */
export function processTicks(pid: number | undefined): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return undefined;
  }
}

/**
 * A load round, the share of CPU 0 busy with anything but the server under load, and the CPU
 * time the server used (ms; /proc's clock ticks, 10 ms each).
 */
export interface Round extends LoadResult {
  readonly otherOnCpu0?: number;
  readonly serverCpuMs?: number;
}

/** /proc's clock ticks per second (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

/**
 * Runs `load` against the server process `pid` (pinned to CPU 0) and measures how much else ran
 * on CPU 0 meanwhile (other processes, kernel threads, the loopback work of the load itself).
 */
export function roundOnCpu0(pid: number | undefined, load: () => LoadResult): Round {
  const [cpuBefore, serverBefore] = [cpu0(), processTicks(pid)];
  const result = load();
  const [cpuAfter, serverAfter] = [cpu0(), processTicks(pid)];
  if (!HAS_TASKSET || !cpuBefore || !cpuAfter || serverBefore === undefined || !serverAfter)
    return result;
  const server = serverAfter - serverBefore;
  const other = cpuAfter.busy - cpuBefore.busy - server;
  return {
    ...result,
    otherOnCpu0: Math.max(0, other / (cpuAfter.total - cpuBefore.total)),
    serverCpuMs: (server * 1000) / TICKS_PER_SECOND,
  };
}

/** The load generator the HTTP benches use, for their reports. */
export const LOAD_TOOL = HAS_WRK ? 'wrk 4 (1 thread)' : 'autocannon (wrk not installed)';

/** One load run with wrk, or autocannon when wrk is not installed (pinned to CPU 1). */
export function load(target: Load, duration: number, connections: number): LoadResult {
  return HAS_WRK ? wrk(target, duration, connections) : autocannon(target, duration, connections);
}

/** Share of CPU 0 taken by other work above which steadyRound repeats a round. */
export const DISTURBED = 0.35;

/**
 * One load round against the server process `pid` (pinned to CPU 0), repeated (twice at most)
 * when other work took more than DISTURBED of CPU 0 meanwhile: the least disturbed counts.
 */
export function steadyRound(
  pid: number | undefined,
  target: Load,
  duration: number,
  connections: number,
): Round {
  const once = () => roundOnCpu0(pid, () => load(target, duration, connections));
  let result = once();
  for (let retry = 0; retry < 2 && (result.otherOnCpu0 ?? 0) > DISTURBED; retry++) {
    console.log('  disturbed round, repeating:', result);
    const again = once();
    if ((again.otherOnCpu0 ?? 0) < (result.otherOnCpu0 ?? 0)) result = again;
  }
  return result;
}

/** The mean of `values`. */
export const mean = (values: readonly number[]) =>
  values.reduce((a, b) => a + b, 0) / values.length;

/**
 * Columns describing the server's CPU in `rounds` of `duration` s each: its CPU time per answered
 * request (and its ratio to `base`'s rounds, when given), how busy it kept CPU 0, and the worst
 * share of CPU 0 that other work took. "—" where /proc or taskset were missing.
 */
export function cpuColumns(
  rounds: readonly Round[],
  duration: number,
  base?: readonly Round[],
): Record<string, string> {
  const others = rounds.map((r) => r.otherOnCpu0);
  const cpu = rounds.map((r) => r.serverCpuMs);
  // The server's CPU time per request: what a request costs it, whatever held the load back.
  const perRequest = (rs: readonly Round[]) =>
    mean(rs.map((r) => ((r.serverCpuMs ?? NaN) * 1000) / (r.rps * duration)));
  const measured = cpu.every((c) => c !== undefined);
  return {
    'memdb CPU µs/req': measured
      ? `${Math.round(perRequest(rounds))}${base ? ` (${(perRequest(rounds) / perRequest(base)).toFixed(2)}×)` : ''}`
      : '—',
    'memdb busy (CPU 0)': measured ? percent(mean(cpu as number[]) / (duration * 1000)) : '—',
    'CPU 0 other (worst)': others.every((o) => o !== undefined)
      ? percent(Math.max(...(others as number[])))
      : '—',
  };
}

/** V8's heapUsed after forced full GCs and VmRSS just after, in bytes. */
export interface Memory {
  readonly heap: number;
  readonly rss: number;
}

/** bench/heap-probe.js: preload it (with these node arguments) and start the server with `ipc`. */
export const HEAP_PROBE_ARGS = ['--expose-gc', '-r', join(__dirname, 'heap-probe.js')];

/**
 * Heap after GC (asked of bench/heap-probe.js over the IPC channel) and RSS (/proc) of a server
 * started with HEAP_PROBE_ARGS and `ipc`, after `settleMs` (timers, sockets) have passed.
 */
export async function memoryOf(server: RunningServer, settleMs: number): Promise<Memory> {
  await new Promise((resolve) => setTimeout(resolve, settleMs));
  const child = server.process;
  const heap = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no answer from heap-probe.js')), 60_000);
    child.once('message', (message: { heap: NodeJS.MemoryUsage }) => {
      clearTimeout(timer);
      resolve(message.heap.heapUsed);
    });
    child.send('heap');
  });
  const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
  const kb = Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1]);
  return { heap, rss: kb * 1024 };
}

/** Mean req/s of rounds, rounded. */
export const meanRps = (rounds: readonly LoadResult[]) =>
  Math.round(rounds.reduce((sum, r) => sum + r.rps, 0) / rounds.length);
/** The worst p99 of rounds (ms). */
export const worstP99 = (rounds: readonly LoadResult[]) => Math.max(...rounds.map((r) => r.p99));

/** 1,000 users (u0..u999) and 5,000 orders through the bulk POST (needs BULK_MAX >= 5000). */
export async function seedUsersAndOrders(base: string): Promise<void> {
  const users = Array.from({ length: 1000 }, (_, i) => ({
    id: `u${i}`,
    email: `u${i}@example.com`,
    full_name: `User ${i}`,
    age: i % 100,
  }));
  const orders = Array.from({ length: 5000 }, (_, i) => ({
    user_id: `u${i % 1000}`,
    product_name: 'p',
    quantity: 1,
    total_price: i,
    order_date: '2026-11-25T20:00:00Z',
  }));
  for (const [table, records] of [
    ['users', users],
    ['orders', orders],
  ] as const) {
    const res = await fetch(`${base}/api/v1/data/${table}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(records),
    });
    if (res.status !== 201) throw new Error(`seeding ${table}: ${res.status}`);
  }
}
