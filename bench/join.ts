/**
 * The join, in process: 100k users x 1M orders (each order names one user), inner join on
 * users.id = orders.user_id, every row materialised. memdb's hashJoin over its stored records,
 * a minimal hand-written Map join (the baseline), alasql, and better-sqlite3 in memory with an
 * index when `npm run bench:sqlite-setup` has built it (bench/sqlite; `npm run bench:join` does).
 * Run: node --expose-gc --max-old-space-size=8192 -r ts-node/register/transpile-only bench/join.ts [users] [orders]
 */
import { createRequire } from 'module';
import { join } from 'path';
import { hashJoin } from '../src/database/hash-join';
import { StorageService } from '../src/database/storage.service';
import { machine, markdownTable, writeSection } from './results';

type Row = Record<string, unknown>;

function time<T>(run: () => T): { ms: number; result: T } {
  (global as { gc?: () => void }).gc?.();
  const started = process.hrtime.bigint();
  const result = run();
  return { ms: Number(process.hrtime.bigint() - started) / 1e6, result };
}

async function timeAsync<T>(run: () => Promise<T>): Promise<{ ms: number; result: T }> {
  (global as { gc?: () => void }).gc?.();
  const started = process.hrtime.bigint();
  const result = await run();
  return { ms: Number(process.hrtime.bigint() - started) / 1e6, result };
}

function mapJoin(users: Row[], orders: Row[]): { left: Row; right: Row }[] {
  const byId = new Map<unknown, Row>();
  for (const user of users) byId.set(user.id, user);
  const out: { left: Row; right: Row }[] = [];
  for (const order of orders) {
    const user = byId.get(order.user_id);
    if (user !== undefined) out.push({ left: user, right: order });
  }
  return out;
}

async function main(): Promise<void> {
  const userCount = Number(process.argv[2] ?? 100_000);
  const orderCount = Number(process.argv[3] ?? 1_000_000);
  const db = StorageService.standalone({});
  for (let start = 0; start < userCount; start += 10_000) {
    await db.createMany(
      'users',
      Array.from({ length: Math.min(10_000, userCount - start) }, (_, i) => ({
        id: `u${start + i}`,
        name: `user ${start + i}`,
        age: (start + i) % 90,
      })),
    );
  }
  for (let start = 0; start < orderCount; start += 10_000) {
    await db.createMany(
      'orders',
      Array.from({ length: Math.min(10_000, orderCount - start) }, (_, i) => ({
        user_id: `u${(start + i) % userCount}`,
        product_name: 'p',
        quantity: 1,
        total_price: i,
      })),
    );
  }
  const tables = db as unknown as {
    tables: Map<string, { values(): Iterable<Row>; size: number }>;
  };
  const usersTable = tables.tables.get('users');
  const ordersTable = tables.tables.get('orders');
  if (!usersTable || !ordersTable) throw new Error('tables missing');
  const users = [...usersTable.values()];
  const orders = [...ordersTable.values()];

  const rows: Record<string, string | number>[] = [];
  const add = (engine: string, ms: number, count: number) => {
    rows.push({
      engine,
      ms: Math.round(ms),
      'rows/s': Math.round(count / (ms / 1000)),
      rows: count,
    });
    console.log(engine, Math.round(ms), 'ms', count, 'rows');
  };

  // Alternating rounds, median of five after one warm-up each: GC and JIT make single runs noisy.
  const baselineMs: number[] = [];
  const memdbMs: number[] = [];
  let rowsOut = 0;
  for (let round = 0; round < 6; round++) {
    const baseline = time(() => mapJoin(users, orders));
    const memdb = await timeAsync(() =>
      hashJoin(
        { size: users.length, values: () => users },
        { size: orders.length, values: () => orders },
        { leftKey: 'id', rightKey: 'user_id', type: 'inner' },
      ),
    );
    rowsOut = memdb.result.length;
    if (round === 0) continue;
    baselineMs.push(baseline.ms);
    memdbMs.push(memdb.ms);
  }
  const median = (values: number[]) =>
    [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
  add('minimal Map join (baseline)', median(baselineMs), rowsOut);
  add('memdb hashJoin', median(memdbMs), rowsOut);

  // alasql on plain copies (it keeps its own tables).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const alasql = require('alasql') as (sql: string, params?: unknown[]) => unknown[];
  const alaUsers = users.map((u) => ({ id: u.id, name: u.name, age: u.age }));
  const alaOrders = orders.map((o) => ({ user_id: o.user_id, total_price: o.total_price }));
  const ala = time(() =>
    alasql('SELECT * FROM ? AS u JOIN ? AS o ON u.id = o.user_id', [alaUsers, alaOrders]),
  );
  add('alasql 4', ala.ms, ala.result.length);

  try {
    // Opt-in: `npm run bench:sqlite-setup` builds it into bench/sqlite/node_modules (resolution
    // from there falls back to bench/node_modules and the root node_modules).
    const Database = createRequire(join(__dirname, 'sqlite', 'package.json'))(
      'better-sqlite3',
    ) as new (file: string) => {
      exec(sql: string): void;
      prepare(sql: string): { run(...args: unknown[]): void; all(): unknown[] };
      transaction(fn: () => void): () => void;
    };
    const sqlite = new Database(':memory:');
    sqlite.exec(
      'CREATE TABLE users (id TEXT PRIMARY KEY, name TEXT, age INTEGER); CREATE TABLE orders (user_id TEXT, total_price REAL); CREATE INDEX orders_user ON orders(user_id);',
    );
    const insertUser = sqlite.prepare('INSERT INTO users VALUES (?, ?, ?)');
    const insertOrder = sqlite.prepare('INSERT INTO orders VALUES (?, ?)');
    sqlite.transaction(() => {
      for (const u of users) insertUser.run(u.id, u.name, u.age);
      for (const o of orders) insertOrder.run(o.user_id, o.total_price);
    })();
    const statement = sqlite.prepare('SELECT * FROM users u JOIN orders o ON u.id = o.user_id');
    // Like the others: one warm-up, then the median of three.
    const runs = [0, 1, 2, 3].map(() => time(() => statement.all())).slice(1);
    add(
      'better-sqlite3 12 .all() (index)',
      median(runs.map((run) => run.ms)),
      runs[0].result.length,
    );
  } catch (error) {
    console.log(
      'better-sqlite3 not measured (npm run bench:sqlite-setup):',
      (error as Error).message.split('\n')[0],
    );
  }

  const base = rows.find((r) => r.engine.toString().startsWith('minimal'))?.ms as number;
  const mine = rows.find((r) => r.engine === 'memdb hashJoin')?.ms as number;
  const ratios = rows.map((r) => ({
    engine: r.engine,
    'memdb is faster by': ((r.ms as number) / mine).toFixed(2),
    'vs baseline': ((r.ms as number) / base).toFixed(2),
  }));
  console.table(rows);
  console.table(ratios);
  writeSection(
    'join',
    `## Join in process\n\nCommand: \`npm run bench:join\` (${userCount.toLocaleString('en')} users x ${orderCount.toLocaleString('en')} orders, inner join, all rows materialised; median of five alternating rounds after a warm-up for the Map join and memdb, median of three after a warm-up for better-sqlite3, one run for alasql). ${machine()}.\n\n${markdownTable(rows)}\n\n${markdownTable(ratios)}\n\nTargets (issue 5): memdb <= 1.3x the Map join; >= 4x faster than alasql; >= 15x faster than better-sqlite3 .all(). better-sqlite3 12 (13 needs Node 22) is installed by \`npm run bench:sqlite-setup\` into bench/sqlite (a native build from source, about a minute the first time), which \`npm run bench:join\` runs first; \`npm ci\` never installs it.`,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
