/**
 * How long small requests wait while a large scan, sort or join runs (issue 4: one large query
 * must not block the event loop for long). Starts the built server, loads 500k records, then
 * for each large query sends GETs by id back to back until it finishes, and reports the query
 * time and the probes' latency. Run: npm run build && npx ts-node --transpile-only bench/event-loop.ts
 */
import { startServer } from './server';

async function main(): Promise<void> {
  const server = await startServer({ BULK_MAX: '50000' });
  const base = `${server.baseUrl}/api/v1`;
  try {
    const post = (table: string, rows: object[]) =>
      fetch(`${base}/data/${table}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(rows),
      });
    for (let chunk = 0; chunk < 10; chunk++) {
      await post(
        'big',
        Array.from({ length: 50_000 }, (_, i) => ({ k: i % 1000, v: chunk * 50_000 + i })),
      );
    }
    await post('small', [{ id: 'x' }]);
    const rows: Record<string, string | number>[] = [];
    for (const [label, path] of [
      ['filtered scan, 500k records', '/data/big?v=gt.499990'],
      ['sorted page, 500k records', '/data/big?sort=-v&limit=10'],
      ['join page, 250M-row join', '/join/big/big/k?limit=10'],
      ['sorted 250M-row join (refused: 422)', '/join/big/big/k?sort=-left.v&limit=10'],
    ]) {
      const probes: number[] = [];
      let done = false;
      const started = performance.now();
      const query = fetch(`${base}${path}`).then(async (r) => {
        await r.text();
        done = true;
        return { status: r.status, ms: performance.now() - started };
      });
      while (!done) {
        const sent = performance.now();
        await fetch(`${base}/data/small/x`).then((r) => r.text());
        probes.push(performance.now() - sent);
      }
      const { status, ms } = await query;
      probes.sort((a, b) => a - b);
      rows.push({
        query: label,
        status,
        'query ms': Math.round(ms),
        probes: probes.length,
        'probe p50 ms': Number(probes[Math.floor(probes.length / 2)].toFixed(1)),
        'probe max ms': Number(probes[probes.length - 1].toFixed(1)),
      });
    }
    console.log(`event loop under large queries (node ${process.version})`);
    console.table(rows);
  } finally {
    server.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
