import type { INestApplication } from '@nestjs/common';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  appendFileSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import * as ts from 'typescript';
import {
  openAppendFile,
  type JournalFile,
  type OpenJournalFile,
} from '../src/database/persistence/file-journal';
import { PersistenceService } from '../src/database/persistence/persistence.service';
import { CapturingLogger, createTestApp, TEST_HTTP_ADAPTER } from './helpers/test-app';
import { tempDirs } from './helpers/temp-dirs';
import { freePort } from '../scripts/processes';

/**
 * What DATA_DIR promises, seen from outside: acknowledged writes survive a crash (SIGKILL of
 * the real process, in a loop, as Redis and SQLite test theirs) and a simulated power loss;
 * a clean restart gives back the same dataset; a torn last entry is dropped and cut off; damage
 * in the middle of the journal stops the start (naming file and offset) unless DATA_REPAIR;
 * compaction under concurrent writers loses nothing; stray temp files go; readiness waits
 * for the load.
 */

const ROOT = join(__dirname, '..');
const JOURNAL_1 = 'journal-00000001.log';
type Json = Record<string, unknown>;

/** The records a journal line inserts: a command's (`{seq, command}`), or a memdb 0.1 change's. */
function recordsOf(line: Json): Json[] | undefined {
  const command = (line.command ?? line) as Json;
  return command.records as Json[] | undefined;
}

const freshDir = tempDirs('memdb-');

/** A small seeded PRNG, so that a failing crash loop can be replayed (DURABILITY_SEED). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Polls `done` until it holds; fails, naming `what`, after `timeoutMs`. The tests that start the
 * real process wait with this (or for its output, its exit, its health) rather than for a fixed
 * time, and have a generous Jest timeout (60 s): a start takes seconds on a busy machine.
 */
async function waitUntil(done: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`Waited ${timeoutMs} ms for ${what} in vain`);
    await sleep(5);
  }
}

function sha256(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex');
}

/** Every table's listing (name, count, indexes) and records in order, and their hash. */
async function datasetOf(app: INestApplication): Promise<{ hash: string; dataset: Json }> {
  const http = app.getHttpServer();
  const tables = (await request(http).get('/api/v1/tables').expect(200)).body as { name: string }[];
  const data: Record<string, unknown> = {};
  for (const { name } of tables) {
    data[name] = (await request(http).get(`/api/v1/data/${name}?limit=all`).expect(200)).body;
  }
  const dataset = { tables, data };
  return { hash: sha256(dataset), dataset };
}

/**
 * Deep equality of JSON values that ignores which realm built them (Jest runs the test in a vm
 * context; fetch's res.json() builds objects in Node's own), and key order.
 */
function sameJson(a: unknown, b: unknown): boolean {
  const canonical = (value: unknown): unknown =>
    Array.isArray(value)
      ? value.map(canonical)
      : value !== null && typeof value === 'object'
        ? Object.fromEntries(
            Object.keys(value)
              .sort()
              .map((key) => [key, canonical((value as Json)[key])]),
          )
        : value;
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

function filesIn(dir: string): string[] {
  return readdirSync(dir).sort();
}

// --- the real process (crash loop, refusal to start) ---

interface Server {
  readonly child: ChildProcess;
  readonly base: string;
  readonly output: () => string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children = new Set<ChildProcess>();
afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
});

/**
 * The server as `node -r ts-node/register/transpile-only src/main.ts` runs it (`npm test` runs
 * from a fresh clone, without a build), transpiled once per run instead of at every start:
 * ts-node's transpiling is most of a start's 2.5 s, and the crash loop starts the server often.
 * Same transpiler (ts.transpileModule), same tsconfig; written under node_modules/.cache so that
 * packages resolve, with package.json beside it as for src/ and dist/ (APP_INFO reads it).
 */
let serverEntry: string | undefined;
function compiledServer(): string {
  if (serverEntry !== undefined) return serverEntry;
  const cacheDir = join(ROOT, 'node_modules', '.cache');
  mkdirSync(cacheDir, { recursive: true });
  const out = freshDir(cacheDir);
  const config = ts.getParsedCommandLineOfConfigFile(join(ROOT, 'tsconfig.json'), undefined, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (diagnostic) => {
      throw new Error(ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'));
    },
  })!;
  const compilerOptions = { ...config.options, sourceMap: false, inlineSourceMap: true };
  const transpile = (from: string, to: string) => {
    mkdirSync(to, { recursive: true });
    for (const entry of readdirSync(from, { withFileTypes: true })) {
      const path = join(from, entry.name);
      if (entry.isDirectory()) transpile(path, join(to, entry.name));
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.spec.ts')) {
        const { outputText } = ts.transpileModule(readFileSync(path, 'utf8'), {
          compilerOptions,
          fileName: path,
        });
        writeFileSync(join(to, entry.name.replace(/\.ts$/, '.js')), outputText);
      }
    }
  };
  transpile(join(ROOT, 'src'), join(out, 'src'));
  copyFileSync(join(ROOT, 'package.json'), join(out, 'package.json'));
  serverEntry = join(out, 'src', 'main.js');
  return serverEntry;
}

/**
 * Starts memdb in a child process on the adapter of this Jest project (HTTP_ADAPTER passed
 * through): the real-process tests run on Express and on Fastify, since an acknowledgement is
 * the adapter's answer, and with one transpile per run both fit the time budget.
 */
async function spawnServer(dataDir: string, env: Record<string, string> = {}): Promise<Server> {
  const port = await freePort();
  const child = spawn(process.execPath, [compiledServer()], {
    cwd: ROOT,
    // Only what it needs: an inherited memdb setting (API_KEYS, PORT…) would change the test.
    env: {
      PATH: process.env.PATH ?? '',
      DATA_REPAIR: 'false',
      HTTP_ADAPTER: TEST_HTTP_ADAPTER,
      DATA_DIR: dataDir,
      FSYNC: 'always',
      THROTTLE_LIMIT: '0',
      LOG_LEVEL: 'warn',
      PORT: String(port),
      HOST: '127.0.0.1',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    }),
  );
  return { child, base: `http://127.0.0.1:${port}`, output: () => output, exited };
}

/** Waits until /health/ready answers 200; fails if the process exits first. */
async function waitReady(server: Server, timeoutMs = 30_000): Promise<void> {
  let exit: { code: number | null } | undefined;
  void server.exited.then((e) => (exit = e));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exit !== undefined) {
      throw new Error(`memdb exited (${String(exit.code)}) before ready:\n${server.output()}`);
    }
    try {
      const res = await fetch(`${server.base}/health/ready`);
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      // Not listening yet.
    }
    await sleep(25);
  }
  throw new Error(`memdb was not ready within ${timeoutMs} ms:\n${server.output()}`);
}

async function startServer(dataDir: string): Promise<Server> {
  const server = await spawnServer(dataDir);
  await waitReady(server);
  return server;
}

async function kill(server: Server): Promise<void> {
  server.child.kill('SIGKILL');
  await server.exited;
}

/** A whole table from the real process ([] when it does not exist). */
async function fetchTable(base: string, table: string): Promise<Json[]> {
  const res = await fetch(`${base}/api/v1/data/${table}?limit=all`);
  if (res.status === 404) return [];
  if (res.status !== 200) throw new Error(`GET ${table}: ${res.status} ${await res.text()}`);
  return JSON.parse(await res.text()) as Json[];
}

// --- the crash loop's model of what may be on disk ---

/** What one record may be after a restart. */
type Outcome =
  | { readonly kind: 'absent' }
  /** Acknowledged: exactly what the answer said, timestamps included. */
  | { readonly kind: 'exact'; readonly record: Json }
  /** Sent but not acknowledged: these fields, with timestamps the server chose. */
  | { readonly kind: 'sent'; readonly fields: Json; readonly createdAt?: string };

interface Tracked {
  readonly table: string;
  readonly id: string;
  readonly owner: number;
  readonly bulk?: string;
  /** The last acknowledged (or, after a restart, observed) state. */
  confirmed: Outcome;
  /** The write in flight when the server was killed, if any: its result may or may not be there. */
  pending?: Outcome;
}

const TIMESTAMPS = new Set(['created_at', 'updated_at']);
const withoutTimestamps = (record: Json): Json =>
  Object.fromEntries(Object.entries(record).filter(([key]) => !TIMESTAMPS.has(key)));

function matches(actual: Json | undefined, outcome: Outcome): boolean {
  switch (outcome.kind) {
    case 'absent':
      return actual === undefined;
    case 'exact':
      return sameJson(actual, outcome.record);
    case 'sent':
      return (
        actual !== undefined &&
        sameJson(withoutTimestamps(actual), outcome.fields) &&
        typeof actual.created_at === 'string' &&
        typeof actual.updated_at === 'string' &&
        (outcome.createdAt === undefined || actual.created_at === outcome.createdAt)
      );
  }
}

class CrashModel {
  readonly records = new Map<string, Tracked>();
  readonly bulks = new Map<string, string[]>();
  /** Answers other than 2xx: none is expected. */
  readonly unexpected: string[] = [];
  acknowledged = 0;

  track(entry: Omit<Tracked, 'confirmed'> & { confirmed?: Outcome }): Tracked {
    const key = `${entry.table}/${entry.id}`;
    const tracked = this.records.get(key) ?? { confirmed: { kind: 'absent' }, ...entry };
    this.records.set(key, tracked);
    return tracked;
  }

  /**
   * Compares the restarted server's tables with the model, then takes what is there as the
   * new truth for the next round. Returns every discrepancy.
   */
  reconcile(tables: Record<string, Json[]>): string[] {
    const problems: string[] = [];
    const actual = new Map<string, Json>();
    for (const [table, records] of Object.entries(tables)) {
      for (const record of records) {
        const key = `${table}/${String(record.id)}`;
        if (actual.has(key)) problems.push(`${key} is listed twice`);
        actual.set(key, record);
        if (!this.records.has(key))
          problems.push(`${key} was never sent: ${JSON.stringify(record)}`);
      }
    }
    for (const [key, tracked] of this.records) {
      const found = actual.get(key);
      const allowed = [tracked.confirmed, ...(tracked.pending ? [tracked.pending] : [])];
      if (!allowed.some((outcome) => matches(found, outcome))) {
        problems.push(
          `${key} is ${JSON.stringify(found ?? 'absent')}, expected one of ${JSON.stringify(allowed)}`,
        );
      }
    }
    for (const [bulk, keys] of this.bulks) {
      const present = keys.filter((key) => actual.has(key)).length;
      if (present !== 0 && present !== keys.length)
        problems.push(`bulk ${bulk} is partial: ${present} of ${keys.length} records`);
    }
    for (const [key, tracked] of this.records) {
      const found = actual.get(key);
      tracked.confirmed =
        found === undefined ? { kind: 'absent' } : { kind: 'exact', record: found };
      tracked.pending = undefined;
    }
    return problems;
  }
}

/** The answer, or undefined when there was none (the server died). */
async function send(
  base: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: unknown } | undefined> {
  try {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await res.text();
    return { status: res.status, body: text === '' ? undefined : (JSON.parse(text) as unknown) };
  } catch {
    return undefined;
  }
}

/**
 * One writer of the crash loop: creates single records and small bulks with its own ids,
 * increments its own counter with PATCH and deletes its own records, one request at a time,
 * until the server dies. Every acknowledged write is recorded in the model.
 */
async function crashWriter(
  base: string,
  model: CrashModel,
  writer: number,
  round: number,
  random: () => number,
): Promise<void> {
  for (let n = 0; ; n++) {
    const dice = random();
    if (dice < 0.4) {
      const id = `r${round}-w${writer}-s${n}`;
      const fields = {
        id,
        writer,
        n,
        text: `line 1\nline 2 ✓ ${'x'.repeat(Math.floor(random() * 300))}`,
        nested: { list: [n, null, true, 1.5], empty: {} },
      };
      const tracked = model.track({ table: 'items', id, owner: writer });
      tracked.pending = { kind: 'sent', fields };
      const answer = await send(base, 'POST', '/api/v1/data/items', fields);
      if (answer === undefined) return;
      settle(model, [tracked], answer, 201, 'POST items');
    } else if (dice < 0.7) {
      const bulk = `r${round}-w${writer}-b${n}`;
      const size = 2 + Math.floor(random() * 4);
      const batch = Array.from({ length: size }, (_, i) => ({
        id: `${bulk}-${i}`,
        writer,
        bulk,
        i,
        payload: 'y'.repeat(Math.floor(random() * 200)),
      }));
      const tracked = batch.map((fields) => {
        const entry = model.track({ table: 'bulk', id: fields.id, owner: writer, bulk });
        entry.pending = { kind: 'sent', fields };
        return entry;
      });
      model.bulks.set(
        bulk,
        tracked.map((t) => `bulk/${t.id}`),
      );
      const answer = await send(base, 'POST', '/api/v1/data/bulk', batch);
      if (answer === undefined) return;
      settle(model, tracked, answer, 201, 'POST bulk');
    } else if (dice < 0.88) {
      const id = `counter-w${writer}`;
      const tracked = model.track({ table: 'items', id, owner: writer });
      const current = tracked.confirmed;
      if (current.kind !== 'exact') {
        const fields = { id, writer, count: 0 };
        tracked.pending = { kind: 'sent', fields };
        const answer = await send(base, 'POST', '/api/v1/data/items', fields);
        if (answer === undefined) return;
        settle(model, [tracked], answer, 201, 'POST counter');
      } else {
        const count = (current.record.count as number) + 1;
        tracked.pending = {
          kind: 'sent',
          fields: { ...withoutTimestamps(current.record), count },
          createdAt: current.record.created_at as string,
        };
        const answer = await send(base, 'PATCH', `/api/v1/data/items/${id}`, { count });
        if (answer === undefined) return;
        settle(model, [tracked], answer, 200, 'PATCH counter');
      }
    } else {
      const mine = [...model.records.values()].filter(
        (t) =>
          t.owner === writer &&
          t.table === 'items' &&
          !t.id.startsWith('counter-') &&
          t.confirmed.kind === 'exact' &&
          t.pending === undefined,
      );
      if (mine.length === 0) continue;
      const tracked = mine[Math.floor(random() * mine.length)];
      tracked.pending = { kind: 'absent' };
      const answer = await send(base, 'DELETE', `/api/v1/data/items/${tracked.id}`);
      if (answer === undefined) return;
      settle(model, [tracked], answer, 204, 'DELETE item');
    }
  }
}

/** Records an answer: acknowledged writes become what must survive. */
function settle(
  model: CrashModel,
  tracked: Tracked[],
  answer: { status: number; body: unknown },
  expected: number,
  what: string,
): void {
  if (answer.status !== expected) {
    model.unexpected.push(`${what}: ${answer.status} ${JSON.stringify(answer.body)}`);
    for (const t of tracked) t.pending = undefined;
    return;
  }
  model.acknowledged++;
  const records = Array.isArray(answer.body) ? (answer.body as Json[]) : [answer.body as Json];
  tracked.forEach((t, i) => {
    t.confirmed = expected === 204 ? { kind: 'absent' } : { kind: 'exact', record: records[i] };
    t.pending = undefined;
  });
}

// --- in process, with a journal file that simulates a power loss ---

/** The app as main.ts serves it (createTestApp), optionally not yet loaded or with a journal seam. */
function buildApp(
  env: Record<string, string>,
  options: { openJournalFile?: OpenJournalFile; start?: boolean } = {},
): Promise<INestApplication> {
  return createTestApp({ env, ...options });
}

/**
 * Opens journals normally and remembers, per file, how many bytes a completed datasync covers:
 * what would still be there after a power loss (the rest was only in the kernel's cache).
 */
function powerLossJournal(): { open: OpenJournalFile; durableBytes: Map<string, number> } {
  const durableBytes = new Map<string, number>();
  const open: OpenJournalFile = async (path) => {
    const file = await openAppendFile(path);
    let written = (await file.stat()).size;
    durableBytes.set(path, written);
    const wrapped: JournalFile = {
      write: async (buffer, offset, length) => {
        const result = await file.write(buffer, offset, length);
        written += result.bytesWritten;
        return result;
      },
      datasync: async () => {
        const covered = written;
        await file.datasync();
        durableBytes.set(path, Math.max(durableBytes.get(path) ?? 0, covered));
      },
      truncate: async (length) => {
        await file.truncate(length);
        written = length;
        durableBytes.set(path, Math.min(durableBytes.get(path) ?? 0, length));
      },
      stat: () => file.stat(),
      close: () => file.close(),
    };
    return wrapped;
  };
  return { open, durableBytes };
}

describe('Durability (DATA_DIR)', () => {
  it('loses no acknowledged write when the real process is SIGKILLed mid-write, round after round', async () => {
    const seed = Number(process.env.DURABILITY_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const random = mulberry32(seed);
    const dir = freshDir();
    const model = new CrashModel();
    const rounds = 5;
    let unanswered = 0;
    let server = await startServer(dir);
    try {
      for (let round = 0; round < rounds; round++) {
        const writers = Array.from({ length: 8 }, (_, w) =>
          crashWriter(server.base, model, w, round, mulberry32(seed + round * 100 + w)),
        );
        // Killed mid-write at a random point, counted in acknowledged writes rather than time.
        const killAt = model.acknowledged + 8 + Math.floor(random() * 60);
        await waitUntil(() => model.acknowledged >= killAt, `${killAt} acknowledged writes`);
        await kill(server);
        await Promise.all(writers);
        unanswered += [...model.records.values()].filter((t) => t.pending).length;

        server = await startServer(dir);
        const tables = {
          items: await fetchTable(server.base, 'items'),
          bulk: await fetchTable(server.base, 'bulk'),
        };
        const problems = model.reconcile(tables);
        expect({ seed, round, problems }).toEqual({ seed, round, problems: [] });
      }
      expect({ seed, unexpected: model.unexpected }).toEqual({ seed, unexpected: [] });
      // The loop did exercise something: many writes acknowledged, some cut off by the kill.
      expect(model.acknowledged).toBeGreaterThan(rounds * 8);
      expect(unanswered).toBeGreaterThan(0);
    } finally {
      await kill(server);
    }
  }, 120_000);

  it('keeps every write acknowledged under FSYNC=always through a simulated power loss', async () => {
    const dir = freshDir();
    const journal = powerLossJournal();
    const app = await buildApp(
      { DATA_DIR: dir, FSYNC: 'always' },
      { openJournalFile: journal.open },
    );
    const http = app.getHttpServer();
    const acknowledged: Json[] = [];
    let stop = false;
    const writers = Array.from({ length: 8 }, async (_, w) => {
      for (let n = 0; !stop; n++) {
        const res = await request(http)
          .post('/api/v1/data/power')
          .send({ id: `w${w}-${n}`, w, n });
        expect(res.status).toBe(201);
        acknowledged.push(res.body as Json);
      }
    });
    await waitUntil(() => acknowledged.length >= 50, '50 acknowledged writes');
    // The power goes now: what was acknowledged so far must be within what was synced.
    const before = [...acknowledged];
    const path = join(dir, JOURNAL_1);
    const durable = journal.durableBytes.get(path)!;
    stop = true;
    await Promise.all(writers);
    await app.close();
    expect(statSync(path).size).toBeGreaterThanOrEqual(durable);
    truncateSync(path, durable);

    const after = await createTestApp({ env: { DATA_DIR: dir } });
    try {
      const res = await request(after.getHttpServer())
        .get('/api/v1/data/power?limit=all')
        .expect(200);
      const stored = new Map((res.body as Json[]).map((r) => [r.id, r]));
      expect(before.length).toBeGreaterThan(20);
      expect(before.filter((r) => !sameJson(stored.get(r.id), r))).toEqual([]);
    } finally {
      await after.close();
    }
  }, 30_000);

  it.each(['always', 'everysec', 'no'])(
    'gives back the same dataset (digest) after a clean restart with FSYNC=%s',
    async (fsync) => {
      const dir = freshDir();
      const env = { DATA_DIR: dir, FSYNC: fsync };
      const app = await createTestApp({ env });
      const http = app.getHttpServer();
      const users = Array.from({ length: 40 }, (_, i) => ({
        id: `u${i}`,
        email: `user${i}@example.com`,
        age: 20 + (i % 7),
        tags: i % 3 === 0 ? ['a', 'b'] : [],
        bio: i % 5 === 0 ? 'two\nlines, "quoted", \u2028 and ✓' : null,
        score: i * 1.25,
      }));
      await request(http).post('/api/v1/data/people').send(users).expect(201);
      await request(http)
        .post('/api/v1/tables/people/indexes')
        .send({ field: 'email', unique: true })
        .expect(201);
      await request(http).post('/api/v1/tables/people/indexes').send({ field: 'age' }).expect(201);
      await request(http)
        .post('/api/v1/tables/people/indexes')
        .send({ field: 'score' })
        .expect(201);
      await request(http).delete('/api/v1/tables/people/indexes/score').expect(204);
      for (let i = 0; i < 20; i++) {
        await request(http)
          .post('/api/v1/data/purchases')
          .send({ user_id: `u${i % 10}`, quantity: i, total: i * 9.99, meta: { nested: { i } } })
          .expect(201);
      }
      for (let i = 0; i < 10; i++) {
        await request(http)
          .patch(`/api/v1/data/people/u${i}`)
          .send({ age: 99, tags: ['patched'] })
          .expect(200);
      }
      await request(http)
        .put('/api/v1/data/people/u11')
        .send({ email: 'replaced@example.com', age: 1 })
        .expect(200);
      for (const i of [3, 12, 25, 39]) {
        await request(http).delete(`/api/v1/data/people/u${i}`).expect(204);
      }
      await request(http).post('/api/v1/tables').send({ name: 'empty' }).expect(201);
      await request(http).post('/api/v1/data/temp').send({ id: 't1' }).expect(201);
      await request(http).post('/api/v1/tables/temp/indexes').send({ field: 'x' }).expect(201);
      await request(http).delete('/api/v1/tables/temp').expect(204);
      await request(http).post('/api/v1/data/phoenix').send({ id: 'old' }).expect(201);
      await request(http).delete('/api/v1/tables/phoenix').expect(204);
      await request(http).post('/api/v1/data/phoenix').send({ id: 'new' }).expect(201);
      const before = await datasetOf(app);
      await app.close();

      const again = await createTestApp({ env });
      try {
        const after = await datasetOf(again);
        expect(after.dataset).toEqual(before.dataset);
        expect(after.hash).toBe(before.hash);
        // Sanity: the dataset is the varied one written above.
        const names = (before.dataset.tables as { name: string }[]).map((t) => t.name);
        expect(names).toEqual(['empty', 'people', 'phoenix', 'purchases']);
        expect((before.dataset.data as Record<string, Json[]>).phoenix).toEqual([
          expect.objectContaining({ id: 'new' }),
        ]);
        // Indexes work after the restart too: the unique one still refuses a duplicate.
        await request(again.getHttpServer())
          .post('/api/v1/data/people')
          .send({ email: 'user0@example.com' })
          .expect(409);
      } finally {
        await again.close();
      }
    },
    30_000,
  );

  it('drops a torn last entry, cuts the journal back to whole entries, and keeps going', async () => {
    const dir = freshDir();
    const env = { DATA_DIR: dir, FSYNC: 'always' };
    const path = join(dir, JOURNAL_1);
    const app = await createTestApp({ env });
    for (let i = 0; i < 5; i++) {
      await request(app.getHttpServer())
        .post('/api/v1/data/notes')
        .send({ id: `n${i}`, text: `note ${i}` })
        .expect(201);
    }
    const before = await datasetOf(app);
    await app.close();
    const whole = readFileSync(path);
    appendFileSync(path, whole.subarray(0, 20));

    const logger = new CapturingLogger();
    const restarted = await createTestApp({ env, logger });
    const after = await datasetOf(restarted);
    expect(after.dataset).toEqual(before.dataset);
    expect(statSync(path).size).toBe(whole.length);
    expect(logger.lines).toContainEqual(
      expect.objectContaining({
        level: 'warn',
        message: expect.stringContaining(`${JOURNAL_1} ended in a partial entry`),
      }),
    );
    await request(restarted.getHttpServer())
      .post('/api/v1/data/notes')
      .send({ id: 'n5', text: 'after the repair' })
      .expect(201);
    const withNew = await datasetOf(restarted);
    await restarted.close();

    const third = await createTestApp({ env });
    try {
      expect((await datasetOf(third)).dataset).toEqual(withNew.dataset);
      const notes = (withNew.dataset.data as Record<string, Json[]>).notes;
      expect(notes.map((n) => n.id)).toEqual(['n0', 'n1', 'n2', 'n3', 'n4', 'n5']);
    } finally {
      await third.close();
    }
  }, 30_000);

  describe('damage in the middle of the journal', () => {
    let dir: string;
    let offset: number;
    let idsBefore: string[];
    const logger = new CapturingLogger();
    const repairLine = () =>
      String(
        logger.lines.find((line) => String(line.message).startsWith('DATA_REPAIR'))?.message ?? '',
      );

    /** A journal of 6 records, one entry each, with a byte flipped in the 4th record's entry. */
    beforeAll(async () => {
      dir = freshDir();
      const app = await createTestApp({ env: { DATA_DIR: dir } });
      for (let i = 0; i < 6; i++) {
        await request(app.getHttpServer())
          .post('/api/v1/data/things')
          .send({ id: `t${i}` })
          .expect(201);
      }
      await app.close();
      const path = join(dir, JOURNAL_1);
      const bytes = readFileSync(path);
      const lines: { start: number; json: Json }[] = [];
      for (let start = 0; start < bytes.length;) {
        const end = bytes.indexOf(0x0a, start);
        lines.push({ start, json: JSON.parse(bytes.toString('utf8', start + 9, end)) as Json });
        start = end + 1;
      }
      const damaged = lines.findIndex((line) => recordsOf(line.json)?.[0]?.id === 't3');
      expect(damaged).toBeGreaterThan(0);
      expect(damaged).toBeLessThan(lines.length - 1);
      offset = lines[damaged].start;
      idsBefore = lines
        .slice(0, damaged)
        .flatMap((line) => (recordsOf(line.json) ?? []).map((r) => r.id))
        .map(String);
      expect(idsBefore).toEqual(['t0', 't1', 't2']);
      // Inside the JSON ({"op":…): a letter becomes another letter, so only the checksum tells.
      bytes[offset + 12] ^= 0x01;
      writeFileSync(path, bytes);
    });

    it('refuses to start, naming the journal file and the byte offset', async () => {
      await expect(createTestApp({ env: { DATA_DIR: dir } })).rejects.toThrow(
        `${JOURNAL_1} is damaged at byte ${offset}: checksum mismatch`,
      );
    });

    it('makes the real process exit 1 with the file and offset on stderr', async () => {
      const server = await spawnServer(dir);
      const { code } = await server.exited;
      expect(code).toBe(1);
      expect(server.output()).toContain(
        `memdb failed to start: ${JOURNAL_1} is damaged at byte ${offset}: checksum mismatch`,
      );
    }, 60_000);

    // Runs last: it cuts the journal.
    it('starts with DATA_REPAIR=true, keeping the records before the damage and saying what it dropped', async () => {
      const size = statSync(join(dir, JOURNAL_1)).size;
      const app = await createTestApp({ env: { DATA_DIR: dir, DATA_REPAIR: 'true' }, logger });
      try {
        const res = await request(app.getHttpServer())
          .get('/api/v1/data/things?limit=all')
          .expect(200);
        expect((res.body as Json[]).map((r) => r.id)).toEqual(idsBefore);
        expect(repairLine()).toMatch(
          new RegExp(
            `^DATA_REPAIR: cut ${JOURNAL_1} at byte ${offset} \\(checksum mismatch\\): dropped ${size - offset} bytes`,
          ),
        );
        expect(statSync(join(dir, JOURNAL_1)).size).toBe(offset);
        // Writes go on after the cut and survive a restart.
        await request(app.getHttpServer())
          .post('/api/v1/data/things')
          .send({ id: 'z' })
          .expect(201);
      } finally {
        await app.close();
      }
      const again = await createTestApp({ env: { DATA_DIR: dir } });
      try {
        const res = await request(again.getHttpServer())
          .get('/api/v1/data/things?limit=all')
          .expect(200);
        expect((res.body as Json[]).map((r) => r.id)).toEqual([...idsBefore, 'z']);
      } finally {
        await again.close();
      }
    });

    it('says how many readable entries after the damage it dropped', () => {
      expect(repairLine()).toContain('the damaged entry and 2 readable entries after it');
    });
  });

  it('shuts down gracefully on SIGTERM: in-flight writes finish, exit 0, nothing acknowledged lost', async () => {
    const dir = freshDir();
    // FSYNC=no: only the shutdown's own flush and sync stand between the writes and the disk.
    const server = await spawnServer(dir, { FSYNC: 'no' });
    await waitReady(server);
    const acknowledged: string[] = [];
    let refused = 0;
    let stop = false;
    const writers = Array.from({ length: 8 }, async (_, w) => {
      for (let i = 0; !stop; i++) {
        const res = await send(server.base, 'POST', '/api/v1/data/graceful', { id: `g${w}-${i}` });
        if (res?.status === 201) acknowledged.push(`g${w}-${i}`);
        else if (res === undefined || res.status === 503) refused++;
        else throw new Error(`unexpected answer ${res.status}`);
        if (res === undefined || res.status === 503) break;
      }
    });
    // SIGTERM while the writers are busy: each has a write in flight from now on.
    await waitUntil(() => acknowledged.length >= 8, '8 acknowledged writes');
    server.child.kill('SIGTERM');
    const exit = await server.exited;
    stop = true;
    await Promise.all(writers);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(acknowledged.length).toBeGreaterThan(0);
    expect(refused).toBeGreaterThan(0);

    const again = await startServer(dir);
    try {
      const ids = new Set((await fetchTable(again.base, 'graceful')).map((r) => r.id as string));
      expect(acknowledged.filter((id) => !ids.has(id))).toEqual([]);
    } finally {
      await kill(again);
    }
  }, 60_000);

  it('cuts off a request that outlives SHUTDOWN_TIMEOUT_MS, saves, and still exits 0 in time', async () => {
    const dir = freshDir();
    const server = await spawnServer(dir, { FSYNC: 'no', SHUTDOWN_TIMEOUT_MS: '1000' });
    await waitReady(server);
    expect((await send(server.base, 'POST', '/api/v1/data/kept', { id: 'k' }))?.status).toBe(201);
    // An upload that never finishes keeps its request in flight.
    const { request: rawRequest } = await import('node:http');
    const stalled = rawRequest(`${server.base}/api/v1/admin/restore`, {
      method: 'POST',
      headers: {
        'content-type': 'application/octet-stream',
        'content-length': '100000',
        // Node's server answers 100 Continue as it hands the request to the app: from then on
        // the request is in flight there.
        expect: '100-continue',
      },
    });
    stalled.on('error', () => undefined);
    const inFlight = new Promise<void>((resolve) => stalled.once('continue', resolve));
    stalled.flushHeaders();
    await inFlight;
    await new Promise<void>((resolve) => stalled.write('x'.repeat(10), () => resolve()));
    const signalled = Date.now();
    server.child.kill('SIGTERM');
    const exit = await server.exited;
    const took = Date.now() - signalled;
    stalled.destroy();
    expect(exit).toEqual({ code: 0, signal: null });
    // It ends although the upload never would (a generous bound: this is not a timing test).
    expect(took).toBeLessThan(5000);
    const again = await startServer(dir);
    try {
      expect((await fetchTable(again.base, 'kept')).map((r) => r.id)).toEqual(['k']);
    } finally {
      await kill(again);
    }
  }, 60_000);

  it('compacts under 20 concurrent writers without losing or changing a record', async () => {
    const dir = freshDir();
    const env = { DATA_DIR: dir, FSYNC: 'everysec', COMPACT_MIN_BYTES: '1kb', COMPACT_RATIO: '1' };
    const app = await createTestApp({ env });
    const http = app.getHttpServer();
    const persistence = app.get(PersistenceService);
    const perWriter = 30;
    const acknowledged: Json[] = [];
    let writing = true;
    const writers = Array.from({ length: 20 }, async (_, w) => {
      for (let n = 0; n < perWriter; n++) {
        const res = await request(http)
          .post('/api/v1/data/events')
          .send({ id: `w${w}-${n}`, w, n, body: 'z'.repeat(50) });
        expect(res.status).toBe(201);
        acknowledged.push(res.body as Json);
      }
    });
    let compactions = 0;
    const compactor = (async () => {
      while (writing) {
        await persistence.compact();
        compactions++;
        await sleep(10);
      }
    })();
    await Promise.all(writers);
    writing = false;
    await compactor;
    // Waits for one the timer may have started, and writes a last one of the final state.
    await persistence.compact();

    const { hash, dataset } = await datasetOf(app);
    const events = (dataset.data as Record<string, Json[]>).events;
    const byId = (a: Json, b: Json) => String(a.id).localeCompare(String(b.id));
    expect(events).toHaveLength(20 * perWriter);
    expect([...events].sort(byId)).toEqual([...acknowledged].sort(byId));
    expect(compactions).toBeGreaterThanOrEqual(3);
    const files = filesIn(dir);
    const snapshots = files.filter((f) => /^snapshot-\d{8}\.jsonl$/.test(f));
    expect(snapshots).toHaveLength(1);
    const generation = snapshots[0].slice('snapshot-'.length, -'.jsonl'.length);
    expect(Number(generation)).toBeGreaterThan(compactions);
    // Only the newest generation is left: its snapshot and its journal.
    expect(files).toEqual([`journal-${generation}.log`, `snapshot-${generation}.jsonl`]);
    await app.close();

    const again = await createTestApp({ env });
    try {
      const after = await datasetOf(again);
      expect((after.dataset.data as Record<string, Json[]>).events).toHaveLength(20 * perWriter);
      expect(after.hash).toBe(hash);
    } finally {
      await again.close();
    }
  }, 30_000);

  it('removes stray temp files at start and loads the data', async () => {
    const dir = freshDir();
    const env = { DATA_DIR: dir };
    const app = await createTestApp({ env });
    await request(app.getHttpServer()).post('/api/v1/data/kept').send({ id: 'k' }).expect(201);
    await app.close();
    writeFileSync(join(dir, 'snapshot-00000002.jsonl.tmp'), '0123abcd {"t":"header"');
    writeFileSync(join(dir, 'leftover.tmp'), '');

    const again = await createTestApp({ env });
    try {
      expect(filesIn(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
      expect(filesIn(dir)).toEqual([JOURNAL_1]);
      await request(again.getHttpServer()).get('/api/v1/data/kept/k').expect(200);
    } finally {
      await again.close();
    }
  });

  it('is not ready while loading, and ready with storage up once loaded', async () => {
    const dir = freshDir();
    const first = await createTestApp({ env: { DATA_DIR: dir } });
    await request(first.getHttpServer())
      .post('/api/v1/data/things')
      .send([{ id: 'a' }, { id: 'b' }])
      .expect(201);
    await first.close();

    const app = await buildApp({ DATA_DIR: dir }, { start: false });
    try {
      const http = app.getHttpServer();
      const loading = await request(http).get('/health/ready').expect(503);
      expect(loading.body.error.storage).toMatchObject({
        status: 'down',
        reason: expect.stringMatching(/load/),
      });
      await request(http).get('/health').expect(200);
      await request(http).get('/api/v1/data/things').expect(503);

      await app.get(PersistenceService).start();
      const ready = await request(http).get('/health/ready').expect(200);
      expect(ready.body.info.storage).toEqual({ status: 'up', tables: 1, records: 2 });
      expect(existsSync(join(dir, JOURNAL_1))).toBe(true);
    } finally {
      await app.close();
    }
  });

  it('answers every read route 503 STORAGE_UNAVAILABLE while loading, as it does data reads', async () => {
    const dir = freshDir();
    const first = await createTestApp({ env: { DATA_DIR: dir } });
    const http1 = first.getHttpServer();
    await request(http1).post('/api/v1/data/things').send({ id: 'a', k: 1 }).expect(201);
    await request(http1).post('/api/v1/tables/things/indexes').send({ field: 'k' }).expect(201);
    await first.close();

    const app = await buildApp({ DATA_DIR: dir }, { start: false });
    try {
      const http = app.getHttpServer();
      const reads = [
        '/api/v1/tables',
        '/api/v1/tables/things',
        '/api/v1/tables/things/indexes',
        '/api/v1/data/things',
        '/api/v1/data/things?limit=all',
        '/api/v1/data/things/a',
        '/api/v1/join/things/things/k',
        '/api/v1/admin/backup',
      ];
      const problem = (path: string) => ({
        type: 'urn:memdb:problem:storage-unavailable',
        title: 'Service Unavailable',
        status: 503,
        detail: expect.stringContaining('the data is still loading from DATA_DIR'),
        code: 'STORAGE_UNAVAILABLE',
        instance: path.split('?')[0],
      });
      for (const path of reads) {
        const res = await request(http).get(path);
        expect({ path, status: res.status, body: res.body as Json }).toEqual({
          path,
          status: 503,
          body: problem(path),
        });
        expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      }

      await app.get(PersistenceService).start();
      for (const path of reads) await request(http).get(path).expect(200);
    } finally {
      await app.close();
    }
  });
});
