/**
 * Streaming whole results end to end (issue 5): the built server holds 100k users and 1M
 * orders; the 1M-row join users.id = orders.user_id is read over HTTP as NDJSON and as a JSON
 * array (limit=all), while four clients send GETs by id back to back. Reports time, bytes, the
 * server's peak RSS against its RSS with the data loaded, and the GETs' latency. Then a 5M-row
 * join (1,000 x 5,000 records sharing one key), which one JSON.stringify could not hold.
 *
 * Run: npm run bench:streaming
 */
import { spawn } from 'node:child_process';
import { Agent, get } from 'node:http';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { machine, markdownTable, writeSection } from './results';
import { argument, pinSelf, startServer } from './server';

const USERS = argument('users', 100_000);
const ORDERS = argument('orders', 1_000_000);
const BATCH = 20_000;
/** Clients sending GETs by id back to back while a result streams. */
const PROBES = argument('probes', 4);

/** The server's resident set, from /proc (MiB). */
function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted.length === 0
    ? 0
    : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

const agent = new Agent({ keepAlive: true, maxSockets: 16 });

function fetchStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    get(url, { agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    }).on('error', reject);
  });
}

interface StreamRun {
  readonly ms: number;
  readonly bytes: number;
  readonly rows: number;
  readonly peakRss: number;
  readonly probes: readonly number[];
}

/** Reads `url` to its end, counting lines, while sampling RSS and probing with GETs by id. */
async function streamWithProbes(
  url: string,
  accept: string,
  pid: number,
  probeUrl: (i: number) => string,
  probeClients: number,
): Promise<StreamRun> {
  let peakRss = rssMiB(pid);
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssMiB(pid))), 20);
  let done = false;
  const probes: number[] = [];
  const probe = async (worker: number): Promise<void> => {
    for (let i = worker; !done; i += probeClients) {
      const started = performance.now();
      const status = await fetchStatus(probeUrl(i));
      if (status !== 200) throw new Error(`probe answered ${status}`);
      probes.push(performance.now() - started);
    }
  };
  const started = performance.now();
  // The stream is read by curl (a separate, native process: a Node reader would be the
  // bottleneck), counting bytes and newlines as they arrive.
  const result = new Promise<{ bytes: number; rows: number }>((resolve, reject) => {
    const reader = spawn(
      'bash',
      [
        '-c',
        `set -o pipefail; curl -sSfN -H 'Accept: ${accept}' -w '%{stderr}%{size_download}' '${url}' | wc -l`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    reader.stdout.on('data', (chunk: Buffer) => (out += String(chunk)));
    reader.stderr.on('data', (chunk: Buffer) => (err += String(chunk)));
    reader.on('close', (code) =>
      code === 0
        ? resolve({ bytes: Number(err.trim()), rows: Number(out.trim()) })
        : reject(new Error(`stream reader failed (${code}): ${err}`)),
    );
  });
  const workers = Array.from({ length: probeClients }, (_, i) => probe(i));
  const { bytes, rows } = await result;
  const ms = performance.now() - started;
  done = true;
  await Promise.all(workers);
  clearInterval(sampler);
  return { ms, bytes, rows, peakRss, probes: [...probes].sort((a, b) => a - b) };
}

async function post(base: string, table: string, rows: object[]): Promise<void> {
  const res = await fetch(`${base}/data/${table}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(rows),
  });
  if (res.status !== 201) throw new Error(`${table}: ${res.status} ${await res.text()}`);
}

async function main(): Promise<void> {
  // Server on CPU 0, this client (the stream reader and the GET clients) on CPU 1.
  const pinning = pinSelf(1)
    ? 'Server pinned to CPU 0, clients to CPU 1.'
    : 'No taskset: server and clients share the cores.';
  const server = await startServer(
    {
      BULK_MAX: String(BATCH),
      BODY_LIMIT: String(16 * 1024 * 1024),
      MAX_MEMORY_MB: '6000',
    },
    { cpu: 0 },
  );
  const pid = server.process.pid!;
  const base = `${server.baseUrl}/api/v1`;
  const table: Record<string, string | number>[] = [];
  try {
    for (let from = 0; from < USERS; from += BATCH) {
      await post(
        base,
        'users',
        Array.from({ length: Math.min(BATCH, USERS - from) }, (_, j) => {
          const i = from + j;
          return {
            id: `u${i}`,
            email: `user${i}@example.com`,
            full_name: `User ${i}`,
            age: 18 + (i % 60),
          };
        }),
      );
    }
    for (let from = 0; from < ORDERS; from += BATCH) {
      await post(
        base,
        'orders',
        Array.from({ length: Math.min(BATCH, ORDERS - from) }, (_, j) => {
          const i = from + j;
          return {
            user_id: `u${i % USERS}`,
            product_name: `Product ${i % 997}`,
            quantity: 1 + (i % 5),
            total_price: (i % 10_000) / 100,
            order_date: '2026-11-25T12:00:00.000Z',
          };
        }),
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const loaded = rssMiB(pid);
    const join = `${base}/join/users/orders/user_id?leftKey=id`;
    const userUrl = (i: number) => `${base}/data/users/u${(i * 7919) % USERS}`;

    const million = `${(ORDERS / 1e6).toFixed(0)}M-row join`;
    const runs: [string, string, string, number][] = [
      [`${million}, NDJSON, alone`, join, 'application/x-ndjson', 0],
      [`${million}, NDJSON`, join, 'application/x-ndjson', PROBES],
      [`${million}, JSON array (limit=all)`, `${join}&limit=all`, 'application/json', PROBES],
    ];
    const report = (label: string, run: StreamRun, base: number, rows: number) => {
      table.push({
        result: label,
        rows,
        MB: (run.bytes / 1e6).toFixed(0),
        seconds: (run.ms / 1000).toFixed(2),
        'rows/s': Math.round((rows / run.ms) * 1000).toLocaleString('en-US'),
        'RSS before (MiB)': base.toFixed(0),
        'peak RSS (MiB)': run.peakRss.toFixed(0),
        'peak - before (MiB)': (run.peakRss - base).toFixed(0),
        'GETs during': run.probes.length,
        'GET p50 (ms)': percentile(run.probes, 0.5).toFixed(1),
        'GET p99 (ms)': percentile(run.probes, 0.99).toFixed(1),
        'GET max (ms)': (run.probes.at(-1) ?? 0).toFixed(1),
      });
      console.log(table.at(-1));
    };
    for (const [label, url, accept, probes] of runs) {
      const before = rssMiB(pid);
      const run = await streamWithProbes(url, accept, pid, userUrl, probes);
      // A JSON array has no newlines between rows: count them from the bytes instead.
      report(label, run, before, accept === 'application/json' ? ORDERS : run.rows);
    }

    // 5M rows from two small tables: every pair shares the key.
    await post(
      base,
      'ka',
      Array.from({ length: 1000 }, (_, i) => ({ id: `a${i}`, k: 1 })),
    );
    for (let chunk = 0; chunk < 5; chunk++) {
      await post(
        base,
        'kb',
        Array.from({ length: 1000 }, (_, i) => ({ id: `b${chunk}-${i}`, k: 1 })),
      );
    }
    const before = rssMiB(pid);
    const big = await streamWithProbes(
      `${base}/join/ka/kb/k`,
      'application/x-ndjson',
      pid,
      userUrl,
      PROBES,
    );
    report('5M-row join of 1k x 5k records, NDJSON', big, before, big.rows);

    const markdown = [
      '## Streaming whole results',
      '',
      `\`npm run bench:streaming\` · ${machine()} · ${USERS.toLocaleString('en-US')} users, ${ORDERS.toLocaleString('en-US')} orders loaded over HTTP; server RSS with the data loaded: ${loaded.toFixed(0)} MiB. ${PROBES} clients send GETs by id back to back while each result (but the first) streams to one client. ${pinning}`,
      '',
      markdownTable(table),
      '',
      'Targets: a 1M-row join streams with peak RSS ≤ the dataset + 150 MB; 5M rows work; GETs by id during the stream keep p99 < 100 ms.',
    ].join('\n');
    writeSection('streaming', markdown);
    console.log(`\n${markdown}`);
  } finally {
    agent.destroy();
    server.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
