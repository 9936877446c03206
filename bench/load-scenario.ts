import autocannon from 'autocannon';

/** What a mixed load run counted. Timings are reported, never asserted. */
export interface LoadSummary {
  readonly requests: number;
  readonly errors: number;
  readonly timeouts: number;
  readonly non2xx: number;
  readonly statuses: Record<string, number>;
  readonly requestsPerSecond: number;
  readonly latencyP50: number;
  readonly latencyP99: number;
}

const SEEDED = 1000;
const USERS = 50;
const json = { 'content-type': 'application/json' };
const pick = (n: number) => Math.floor(Math.random() * n);

/** Seeds the tables the mixed load reads and writes. */
export async function seedLoadData(
  baseUrl: string,
  headers: Record<string, string> = {},
): Promise<void> {
  const post = async (table: string, rows: object[]) => {
    const res = await fetch(`${baseUrl}/api/v1/data/${table}`, {
      method: 'POST',
      headers: { ...json, ...headers },
      body: JSON.stringify(rows),
    });
    if (res.status !== 201)
      throw new Error(`seeding ${table} answered ${res.status}: ${await res.text()}`);
  };
  await post(
    'loadusers',
    Array.from({ length: USERS }, (_, i) => ({ id: `u${i}`, name: `user ${i}` })),
  );
  for (let start = 0; start < SEEDED; start += 500) {
    await post(
      'load',
      Array.from({ length: 500 }, (_, i) => ({
        id: `seed-${start + i}`,
        n: start + i,
        user: `u${(start + i) % USERS}`,
      })),
    );
  }
  // The join probes the orders of a user through an index, as an application would set it up.
  const index = await fetch(`${baseUrl}/api/v1/tables/load/indexes`, {
    method: 'POST',
    headers: { ...json, ...headers },
    body: JSON.stringify({ field: 'user' }),
  });
  if (index.status !== 201) throw new Error(`indexing answered ${index.status}`);
}

/**
 * Mixed reads and writes on loopback: GET by id, POST, PATCH, a filtered list page and a join
 * page, round-robin on each connection. Every request is one the service must answer with a 2xx.
 */
export async function runMixedLoad(
  baseUrl: string,
  { duration, connections }: { duration: number; connections: number },
): Promise<LoadSummary> {
  const result = await autocannon({
    url: baseUrl,
    connections,
    duration,
    timeout: 10,
    requests: [
      {
        method: 'GET',
        setupRequest: (req) => ({ ...req, path: `/api/v1/data/load/seed-${pick(SEEDED)}` }),
      },
      {
        method: 'POST',
        path: '/api/v1/data/load',
        headers: json,
        setupRequest: (req) => ({
          ...req,
          body: JSON.stringify({ n: pick(100_000), user: `u${pick(USERS)}` }),
        }),
      },
      {
        method: 'PATCH',
        headers: json,
        setupRequest: (req) => ({
          ...req,
          path: `/api/v1/data/load/seed-${pick(SEEDED)}`,
          body: JSON.stringify({ touched: pick(1000) }),
        }),
      },
      { method: 'GET', path: '/api/v1/data/load?n=gte.500&sort=-n&limit=20&fields=id,n' },
      {
        method: 'GET',
        setupRequest: (req) => ({
          ...req,
          path: `/api/v1/join/loadusers/load/id?rightKey=user&left.id=u${pick(USERS)}&limit=20`,
        }),
      },
    ],
  });
  const statuses: Record<string, number> = {};
  for (const [code, stats] of Object.entries(result.statusCodeStats ?? {}))
    statuses[code] = (stats as { count: number }).count;
  return {
    requests: result.requests.total,
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    statuses,
    requestsPerSecond: result.requests.average,
    latencyP50: result.latency.p50,
    latencyP99: result.latency.p99,
  };
}
