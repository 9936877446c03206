/**
 * What shared rate limits (REDIS_URL) cost a request, and how long a request waits when Redis
 * does not answer (issue 12: the throttler fails open within 50 ms; its deadline is 40 ms).
 * Starts the built server once per case and sends GET /api/v1/tables back to back on one
 * keep-alive connection.
 * Cases: no REDIS_URL (in-process counters), Redis up, Redis refusing connections, a port
 * that accepts and never answers, and a connection to Redis that goes silent mid-run (a
 * partition: one request a second meets the 40 ms deadline, the others pass at once, and after
 * 5 s the connection is replaced).
 * Needs Redis on 127.0.0.1:6379 (BENCH_REDIS_URL to change).
 * Run: npm run build && npx ts-node --transpile-only bench/redis-throttle.ts
 */
import {
  Blackhole,
  freePort,
  SilencingProxy,
} from '../src/common/throttling/redis-servers.spec-helper';
import { machine, markdownTable } from './results';
import { startServer } from './server';

const REDIS = new URL(process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379');
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 3000);

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];
}

async function measure(
  label: string,
  redisUrl: string | undefined,
  during?: (i: number) => void,
  minMs = 0,
): Promise<Record<string, string | number>> {
  const server = await startServer(
    {
      THROTTLE_LIMIT: '1000000000',
      THROTTLE_TTL_MS: '60000',
      REDIS_URL: redisUrl,
      REDIS_KEY_PREFIX: `memdb-bench:${process.pid}:${Date.now()}:`,
      LOG_LEVEL: 'error',
    },
    { quiet: true },
  );
  try {
    const url = `${server.baseUrl}/api/v1/tables`;
    // Warm-up, and past the first connection attempt (1 s), as a running server would be.
    const warmUntil = Date.now() + 1500;
    while (Date.now() < warmUntil) await (await fetch(url)).text();
    const times: number[] = [];
    let unthrottled = 0;
    const until = Date.now() + minMs;
    for (let i = 0; i < REQUESTS || Date.now() < until; i++) {
      during?.(i);
      const started = performance.now();
      const res = await fetch(url);
      await res.text();
      times.push(performance.now() - started);
      if (res.status !== 200) throw new Error(`${label}: status ${res.status}`);
      // Counted requests show a remaining budget below the limit; passed ones the whole of it.
      if (res.headers.get('x-ratelimit-remaining') === '1000000000') unthrottled++;
    }
    const sorted = [...times].sort((a, b) => a - b);
    const ms = (value: number) => value.toFixed(2);
    return {
      case: label,
      requests: times.length,
      'p50 ms': ms(percentile(sorted, 50)),
      'p99 ms': ms(percentile(sorted, 99)),
      'max ms': ms(sorted[sorted.length - 1]),
      'over 20 ms': times.filter((t) => t > 20).length,
      'passed uncounted': unthrottled,
    };
  } finally {
    server.stop();
  }
}

async function main(): Promise<void> {
  const rows = [];
  rows.push(await measure('no REDIS_URL (in-process)', undefined));
  rows.push(await measure('Redis up', REDIS.toString()));
  rows.push(await measure('Redis refusing connections', `redis://127.0.0.1:${await freePort()}`));
  const hole = new Blackhole();
  try {
    const port = await hole.listen();
    rows.push(await measure('Redis accepts, never answers', `redis://127.0.0.1:${port}`));
  } finally {
    await hole.close();
  }
  const proxy = new SilencingProxy({ host: REDIS.hostname, port: Number(REDIS.port || 6379) });
  try {
    const port = await proxy.listen();
    // Long enough for the connection to be replaced (after 5 s without an answer).
    rows.push(
      await measure(
        'Redis silent after 1000 requests, for 8 s',
        `redis://127.0.0.1:${port}`,
        (i) => i === 1000 && proxy.silence('all'),
        8000,
      ),
    );
  } finally {
    await proxy.close();
  }
  console.log(`GET /api/v1/tables, one connection, sequential. ${machine()}\n`);
  console.log(markdownTable(rows));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
