/**
 * HTTP throughput side by side, in one run on this machine: memdb (built) and a bare NestJS app
 * (the ceiling) on each adapter, Express and Fastify (HTTP_ADAPTER), and json-server 0.17.4 on
 * the same data. autocannon runs in
 * its own process; with taskset, the server gets CPU 0 and the load CPU 1. Each case: a
 * warm-up, then two rounds; the table shows the mean req/s of the rounds and the worse p99.
 * Run: npm run build && npx ts-node --transpile-only bench/http.ts [--duration 5] [--connections 50]
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { machine, markdownTable, writeSection } from './results';
import {
  ADAPTERS,
  USER,
  argument,
  autocannon,
  freePort,
  seedUsersAndOrders,
  type Load,
  type LoadResult,
} from './server';

const ROOT = join(__dirname, '..');
/** memdb's GET by id against the bare app on the same adapter (issues 5 and 6). */
const GET_TARGET = { Express: 0.85, Fastify: 0.7 } as const;

const hasTaskset = (() => {
  try {
    execFileSync('taskset', ['-c', '0', 'true']);
    return true;
  } catch {
    return false;
  }
})();

function pinned(cpu: number, command: string, args: string[]): [string, string[]] {
  return hasTaskset ? ['taskset', ['-c', String(cpu), command, ...args]] : [command, args];
}

async function start(
  command: string,
  args: string[],
  env: Record<string, string>,
  probe: string,
): Promise<ChildProcess> {
  const [cmd, argv] = pinned(0, command, args);
  const child = spawn(cmd, argv, { cwd: ROOT, env: { ...process.env, ...env }, stdio: 'ignore' });
  for (let i = 0; i < 200; i++) {
    if (
      await fetch(probe).then(
        (r) => r.status < 500,
        () => false,
      )
    )
      return child;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  child.kill();
  throw new Error(`${command} ${args.join(' ')} did not start`);
}

function measure(load: Load, duration: number, connections: number): LoadResult {
  autocannon(load, 2, connections);
  const rounds = [autocannon(load, duration, connections), autocannon(load, duration, connections)];
  return {
    rps: Math.round((rounds[0].rps + rounds[1].rps) / 2),
    p50: (rounds[0].p50 + rounds[1].p50) / 2,
    p99: Math.max(rounds[0].p99, rounds[1].p99),
    non2xx: rounds[0].non2xx + rounds[1].non2xx,
  };
}

async function main(): Promise<void> {
  const duration = argument('duration', 5);
  const connections = argument('connections', 50);
  const rows: Record<string, string | number>[] = [];
  const results = new Map<string, number>();
  const record = (server: string, operation: string, load: Load) => {
    const { rps, p99, non2xx } = measure(load, duration, connections);
    results.set(`${server}/${operation}`, rps);
    rows.push({ server, operation, 'req/s': rps, 'p99 ms': p99, 'non-2xx': non2xx });
    console.log(
      server,
      operation,
      rps,
      'req/s',
      'p99',
      p99,
      'ms',
      non2xx ? `${non2xx} non-2xx` : '',
    );
  };

  for (const [adapter, label] of ADAPTERS) {
    // memdb
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const child = await start(
      process.execPath,
      ['dist/main.js'],
      {
        PORT: String(port),
        HOST: '127.0.0.1',
        THROTTLE_LIMIT: '0',
        LOG_LEVEL: 'warn',
        BULK_MAX: '10000',
        HTTP_ADAPTER: adapter,
      },
      `${base}/health`,
    );
    try {
      await seedUsersAndOrders(base);
      const server = `memdb (${label})`;
      record(server, 'GET by id', { url: `${base}/api/v1/data/users/u500` });
      // Reads before writes: every POST adds a user, which the list and the join would scan.
      record(server, 'filtered list page', {
        url: `${base}/api/v1/data/users?age=gte.50&limit=20`,
      });
      record(server, 'join page', {
        url: `${base}/api/v1/join/users/orders/user_id?leftKey=id&limit=20`,
      });
      record(server, 'POST users', {
        url: `${base}/api/v1/data/users`,
        method: 'POST',
        body: USER,
      });
    } finally {
      child.kill();
    }

    // The same with the request log on (LOG_LEVEL=log, one text line per request to stdout,
    // which goes to /dev/null here): what logging costs.
    const logPort = await freePort();
    const logBase = `http://127.0.0.1:${logPort}`;
    const logged = await start(
      process.execPath,
      ['dist/main.js'],
      {
        PORT: String(logPort),
        HOST: '127.0.0.1',
        THROTTLE_LIMIT: '0',
        LOG_LEVEL: 'log',
        BULK_MAX: '10000',
        HTTP_ADAPTER: adapter,
      },
      `${logBase}/health`,
    );
    try {
      await seedUsersAndOrders(logBase);
      record(`memdb (${label}), request log on`, 'GET by id', {
        url: `${logBase}/api/v1/data/users/u500`,
      });
    } finally {
      logged.kill();
    }
  }

  for (const [adapter, label] of ADAPTERS) {
    // bare NestJS on the same adapter: the ceiling
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const child = await start(
      process.execPath,
      ['-r', 'ts-node/register/transpile-only', 'bench/peers/bare-nest.ts'],
      { PORT: String(port), HTTP_ADAPTER: adapter },
      `${base}/items/1`,
    );
    try {
      record(`bare NestJS (${label})`, 'GET by id', { url: `${base}/items/u500` });
      record(`bare NestJS (${label})`, 'POST users', {
        url: `${base}/users`,
        method: 'POST',
        body: USER,
      });
    } finally {
      child.kill();
    }
  }

  // json-server 0.17.4 on the same data
  const dir = mkdtempSync(join(tmpdir(), 'memdb-bench-'));
  const dbFile = join(dir, 'db.json');
  writeFileSync(
    dbFile,
    JSON.stringify({
      users: Array.from({ length: 1000 }, (_, i) => ({
        id: `u${i}`,
        email: `u${i}@example.com`,
        full_name: `User ${i}`,
        age: i % 100,
      })),
    }),
  );
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const child = await start(
    process.execPath,
    [
      join(ROOT, 'node_modules', 'json-server', 'lib', 'cli', 'bin.js'),
      '--quiet',
      '--port',
      String(port),
      dbFile,
    ],
    {},
    `${base}/users/u1`,
  );
  try {
    record('json-server 0.17.4', 'GET by id', { url: `${base}/users/u500` });
    record('json-server 0.17.4', 'filtered list page', {
      url: `${base}/users?age_gte=50&_limit=20`,
    });
    record('json-server 0.17.4', 'POST users', {
      url: `${base}/users`,
      method: 'POST',
      body: USER,
    });
  } finally {
    child.kill();
  }

  const ratio = (a: string, b: string) =>
    ((results.get(a) ?? 0) / (results.get(b) ?? 1)).toFixed(2);
  const ratios = [
    ...ADAPTERS.flatMap(([, label]) => [
      {
        ratio: `${label}: GET by id with the request log on / off (target >= 0.9)`,
        value: ratio(`memdb (${label}), request log on/GET by id`, `memdb (${label})/GET by id`),
      },
      {
        ratio: `${label}: memdb GET / bare Nest GET (target >= ${GET_TARGET[label]})`,
        value: ratio(`memdb (${label})/GET by id`, `bare NestJS (${label})/GET by id`),
      },
      {
        ratio: `${label}: memdb POST / bare Nest POST (target >= 0.8)`,
        value: ratio(`memdb (${label})/POST users`, `bare NestJS (${label})/POST users`),
      },
    ]),
    {
      ratio: 'memdb GET / json-server GET (target >= 1.8)',
      value: ratio('memdb (Express)/GET by id', 'json-server 0.17.4/GET by id'),
    },
    {
      ratio: 'memdb POST / json-server POST (target >= 15)',
      value: ratio('memdb (Express)/POST users', 'json-server 0.17.4/POST users'),
    },
    {
      ratio: 'memdb on Fastify / on Express, GET by id',
      value: ratio('memdb (Fastify)/GET by id', 'memdb (Express)/GET by id'),
    },
  ];
  console.table(rows);
  console.table(ratios);
  writeSection(
    'http',
    `## HTTP throughput\n\nCommand: \`npm run build && npx ts-node --transpile-only bench/http.ts --duration ${duration} --connections ${connections}\`.\n${machine()}; ${connections} connections; ${hasTaskset ? 'server pinned to CPU 0, autocannon to CPU 1' : 'no taskset: server and load share the cores'}; warm-up 2 s, then two ${duration} s rounds (mean req/s, worse p99).\n\n${markdownTable(rows)}\n\n${markdownTable(ratios)}`,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
