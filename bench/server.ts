import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';

export interface RunningServer {
  readonly baseUrl: string;
  readonly process: ChildProcess;
  stop(): void;
}

/** A free loopback port. */
export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Whether `taskset` can pin processes to CPUs here (Linux with util-linux). */
export const HAS_TASKSET = (() => {
  try {
    execFileSync('taskset', ['-c', '0', 'true'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/** Pins this process to `cpu` when taskset exists; says whether it did. */
export function pinSelf(cpu: number): boolean {
  if (!HAS_TASKSET) return false;
  execFileSync('taskset', ['-p', '-c', String(cpu), String(process.pid)], { stdio: 'ignore' });
  return true;
}

/**
 * Starts the built server (dist/) on a free loopback port and waits for /health; with `cpu`,
 * pinned to that CPU where taskset exists.
 */
export async function startServer(
  env: Record<string, string> = {},
  { cpu }: { cpu?: number } = {},
): Promise<RunningServer> {
  const port = await freePort();
  const main = [join(__dirname, '..', 'dist', 'main.js')];
  const [command, args] =
    cpu !== undefined && HAS_TASKSET
      ? ['taskset', ['-c', String(cpu), process.execPath, ...main]]
      : [process.execPath, main];
  const child = spawn(command, args, {
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      THROTTLE_LIMIT: '0',
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'inherit', 'inherit'],
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

/** A numeric `--name value` command-line option. */
export function argument(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  return index === -1 ? fallback : Number(process.argv[index + 1]);
}

/** One autocannon target: a URL, and for POST a JSON body. */
export interface Load {
  readonly url: string;
  readonly method?: 'GET' | 'POST';
  readonly body?: object;
}

export interface LoadResult {
  readonly rps: number;
  readonly p99: number;
  readonly non2xx: number;
}

/** One autocannon run in its own process, pinned to `cpu` where taskset exists. */
export function autocannon(
  { url, method = 'GET', body }: Load,
  duration: number,
  connections: number,
  cpu = 1,
): LoadResult {
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
  ) as { requests: { average: number }; latency: { p99: number }; non2xx: number };
  return { rps: out.requests.average, p99: out.latency.p99, non2xx: out.non2xx };
}
