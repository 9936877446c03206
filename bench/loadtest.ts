/**
 * npm run loadtest: builds the server, starts it on loopback (throttling off, logs at warn),
 * seeds it, runs a mixed read/write load with autocannon, samples the server's RSS, prints a
 * table and exits non-zero on any error, timeout or non-2xx answer.
 *   npm run loadtest -- --duration 60 --connections 100
 */
import { readFileSync } from 'node:fs';
import { runMixedLoad, seedLoadData } from './load-scenario';
import { argument, startServer } from './server';

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Math.round(Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024);
}

async function main(): Promise<void> {
  const duration = argument('duration', 60);
  const connections = argument('connections', 100);
  const server = await startServer();
  const { baseUrl } = server;
  const pid = server.process.pid as number;
  try {
    await seedLoadData(baseUrl);
    const samples: { second: number; rssMb: number }[] = [{ second: 0, rssMb: rssMb(pid) }];
    const started = Date.now();
    const sampler = setInterval(
      () =>
        samples.push({
          second: Math.round((Date.now() - started) / 1000),
          rssMb: rssMb(pid),
        }),
      Math.max(1000, (duration * 1000) / 12),
    );
    const summary = await runMixedLoad(baseUrl, { duration, connections });
    clearInterval(sampler);
    samples.push({ second: duration, rssMb: rssMb(pid) });

    console.log(
      `\nmixed load: ${connections} connections, ${duration} s, loopback (node ${process.version})`,
    );
    console.table({
      requests: summary.requests,
      'req/s (mean)': Math.round(summary.requestsPerSecond),
      'latency p50 ms': summary.latencyP50,
      'latency p99 ms': summary.latencyP99,
      errors: summary.errors,
      timeouts: summary.timeouts,
      'non-2xx': summary.non2xx,
    });
    console.log('status codes:', summary.statuses);
    console.log('server RSS (MiB) over time:');
    console.table(samples);
    const failed = summary.errors + summary.timeouts + summary.non2xx;
    if (failed > 0) {
      console.error(`FAILED: ${failed} errors, timeouts or non-2xx answers`);
      process.exitCode = 1;
    }
  } finally {
    server.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
