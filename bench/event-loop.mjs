const base = 'http://localhost:8128/api/v1';
const post = (t, rows) => fetch(`${base}/data/${t}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(rows) });
for (let c = 0; c < 10; c++) await post('big', Array.from({ length: 50000 }, (_, i) => ({ k: i % 1000, v: c * 50000 + i })));
await post('small', [{ id: 'x' }]);
// probe latency while a big query runs
async function measure(url) {
  const lat = [];
  let done = false;
  const t0 = performance.now();
  const q = fetch(url).then(async (r) => { await r.text(); done = true; return [r.status, performance.now() - t0]; });
  while (!done) { const s = performance.now(); await fetch(`${base}/data/small/x`).then((r) => r.text()); lat.push(performance.now() - s); }
  const [status, ms] = await q;
  lat.sort((a, b) => a - b);
  console.log(url.slice(30), 'status', status, 'query ms', ms.toFixed(0), 'probes', lat.length, 'max probe ms', lat.at(-1).toFixed(1), 'p50', lat[Math.floor(lat.length / 2)].toFixed(1));
}
await measure(`${base}/data/big?v=gt.499990&count=exact`);
await measure(`${base}/data/big?sort=-v&limit=10`);
await measure(`${base}/join/big/big/k?limit=10`);
await measure(`${base}/join/big/big/k?type=full&sort=-left.v&limit=10`);
