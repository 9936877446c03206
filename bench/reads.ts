/**
 * The read path, in process (no HTTP), written to compare two versions of the code: the same
 * script runs against this checkout's `src` or another one (`--src`), and records each run under
 * a label so a "before" and an "after" sit side by side in bench/RESULTS.md (section `reads`).
 *
 * Measured on `c` (1,000,000 records `{ k, g, name }`), `users` (100,000) and `orders`
 * (1,000,000, each naming one user), and `tiny` (1 record):
 *   - a filtered page with its count (`k=gte.0&limit=100&count=exact`: the whole table is scanned),
 *   - the unfiltered first page (`limit=100`) with its count and with `count=none`,
 *   - a join page with its count (users.id = orders.user_id, inner, limit 100),
 *   - the whole list of `c` and the whole join, streamed (`limit=all`) and read to the end,
 *   - the snapshot cost: a page of `tiny` (per-query overhead), and one `patch` of `c` with no read
 *     open vs while a streamed read of `c` is open (its first chunk taken, not finished),
 *   - then, with indexes created: a filtered page answered by an index on `c.g`, and the join
 *     page probing an index on `orders.user_id`.
 * Each: 2 warm-ups, then the median of 7 runs with a GC before each; ms per query, µs per
 * operation for the small ones (a run: the mean of a batch of pages of `tiny`, or the median of
 * 100 patches each timed alone). Only StorageService's public API is used, and
 * queries are parsed by the controllers' parse functions (parseListQuery / parseJoinQuery with the
 * pipes' limits), all loaded from `--src`, so no internal object is built here.
 *
 * Run:   npm run bench:reads -- [--label before|after] [--src <dir>] [--scale <f>] [--no-write]
 *   --label  the column this run fills (default `after`); a run replaces only its own label's rows
 *   --src    the `src` directory to measure (default: this checkout's); a checkout root works too.
 *            A checkout without node_modules (a git worktree) uses this checkout's packages.
 *   --scale  multiplies the table sizes (e.g. 0.1 for a quick check); runs of different scales
 *            are not compared
 *   --no-write  print only; bench/RESULTS.md is left alone
 * Before/after:
 *   git worktree add /tmp/before <commit>
 *   npm run bench:reads -- --label before --src /tmp/before/src
 *   npm run bench:reads -- --label after
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { delimiter, join, resolve } from 'node:path';
import { machine, markdownTable, writeSection } from './results';

// Types only (erased when compiled): every runtime module comes from `--src`.
type StorageModule = typeof import('../src/database/storage.service');
type ParamsModule = typeof import('../src/database/query/query-params');
type ListDtoModule = typeof import('../src/records/dto/list-records-query.dto');
type JoinDtoModule = typeof import('../src/join/dto/join-query.dto');
type Storage = InstanceType<StorageModule['StorageService']>;
type RawQuery = Record<string, string>;

type Label = 'before' | 'after';
const LABELS: readonly Label[] = ['before', 'after'];
const SECTION = 'reads';
const DATA_MARK = '<!-- reads-data ';
const RESULTS_FILE = join(__dirname, 'RESULTS.md');

const WARMUPS = 2;
const RUNS = 7;
/** Pages of `tiny` per timed batch. */
const TINY_OPS = 2000;
/** Patches per run, each timed alone and summed. */
const PATCHES = 100;
/** Rows a streamed response reads before its first chunk goes out (~64 KiB of JSON). */
const FIRST_CHUNK_ROWS = 1000;

interface Options {
  readonly label: Label;
  readonly src: string;
  readonly scale: number;
  readonly write: boolean;
}

interface Measurement {
  readonly name: string;
  readonly unit: 'ms' | 'µs';
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** Rows read or total counted: the same in both runs when both read the same data. */
  readonly result: number;
}

interface RunData {
  readonly source: string;
  readonly src: string;
  readonly machine: string;
  readonly scale: number;
  readonly sizes: { readonly c: number; readonly users: number; readonly orders: number };
  readonly measurements: readonly Measurement[];
}

type Recorded = Partial<Record<Label, RunData>>;

const USAGE =
  'usage: bench/reads.ts [--label before|after] [--src <dir>] [--scale <factor>] [--no-write]';

function parseArgs(argv: readonly string[]): Options {
  let label: Label = 'after';
  let src = join(__dirname, '..', 'src');
  let scale = 1;
  let write = true;
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const value = (): string => {
      const given = inline ?? argv[++i];
      if (given === undefined) throw new Error(`${flag} needs a value\n${USAGE}`);
      return given;
    };
    if (flag === '--label') {
      const given = value();
      if (!(LABELS as readonly string[]).includes(given))
        throw new Error(`--label must be before or after\n${USAGE}`);
      label = given as Label;
    } else if (flag === '--src') {
      src = resolve(value());
    } else if (flag === '--scale') {
      scale = Number(value());
      if (!(scale >= 0.01 && scale <= 10)) throw new Error(`--scale must be from 0.01 to 10`);
    } else if (flag === '--no-write') {
      write = false;
    } else {
      throw new Error(`unknown argument ${argv[i]}\n${USAGE}`);
    }
  }
  // A checkout's root names its src.
  if (!existsSync(join(src, 'database')) && existsSync(join(src, 'src', 'database')))
    src = join(src, 'src');
  if (!existsSync(join(src, 'database', 'storage.service.ts')))
    throw new Error(`${src} has no database/storage.service.ts: give --src a memdb src directory`);
  return { label, src, scale, write };
}

interface Source {
  readonly StorageService: StorageModule['StorageService'];
  readonly list: (raw: RawQuery) => ReturnType<ParamsModule['parseListQuery']>;
  readonly join: (raw: RawQuery) => ReturnType<ParamsModule['parseJoinQuery']>;
}

/** StorageService and the controllers' query parsers, from `src`. */
function loadSource(src: string): Source {
  // Packages a checkout lacks (a git worktree has no node_modules) resolve from this one's.
  process.env.NODE_PATH = [join(__dirname, '..', 'node_modules'), process.env.NODE_PATH]
    .filter((path) => path !== undefined && path !== '')
    .join(delimiter);
  (Module as unknown as { _initPaths(): void })._initPaths();
  const load = createRequire(__filename);
  const storage = load(join(src, 'database', 'storage.service')) as StorageModule;
  const params = load(join(src, 'database', 'query', 'query-params')) as ParamsModule;
  const listDto = load(join(src, 'records', 'dto', 'list-records-query.dto')) as ListDtoModule;
  const joinDto = load(join(src, 'join', 'dto', 'join-query.dto')) as JoinDtoModule;
  // The limits ListQueryPipe and JoinQueryPipe pass.
  const listLimits = {
    defaultLimit: listDto.LIST_LIMIT_DEFAULT,
    maxLimit: listDto.LIST_LIMIT_MAX,
  };
  const joinLimits = {
    defaultLimit: joinDto.JOIN_LIMIT_DEFAULT,
    maxLimit: joinDto.JOIN_LIMIT_MAX,
  };
  return {
    StorageService: storage.StorageService,
    list: (raw) => params.parseListQuery(raw, listLimits),
    join: (raw) => params.parseJoinQuery(raw, joinLimits),
  };
}

/** The commit of `dir`, marked when its files differ from it. */
function describeSource(dir: string): string {
  try {
    const git = (...args: string[]) =>
      execFileSync('git', ['-C', dir, ...args], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim();
    const commit = git('rev-parse', '--short', 'HEAD');
    return git('status', '--porcelain', '--', '.') === ''
      ? commit
      : `${commit} + uncommitted changes`;
  } catch {
    return 'not a git checkout';
  }
}

const pad = (i: number) => String(i).padStart(7, '0');

async function fill(
  db: Storage,
  table: string,
  count: number,
  make: (i: number) => Record<string, string | number>,
): Promise<void> {
  for (let start = 0; start < count; start += 10_000) {
    await db.createMany(
      table,
      Array.from({ length: Math.min(10_000, count - start) }, (_, i) => make(start + i)),
    );
  }
}

const gc = (global as { gc?: () => void }).gc;

async function timed(run: () => Promise<unknown>): Promise<number> {
  const started = process.hrtime.bigint();
  await run();
  return Number(process.hrtime.bigint() - started) / 1e6;
}

interface Spec {
  readonly name: string;
  readonly unit: 'ms' | 'µs';
  /** One run: the ms one operation took (a run may time only part of its work), its result. */
  readonly run: () => Promise<{ ms: number; result: number }>;
}

/**
 * Each spec's median, min and max of RUNS runs after WARMUPS, per operation. Specs measured
 * together take turns run by run, so a drift of the machine touches them alike.
 */
async function measure(...specs: readonly Spec[]): Promise<Measurement[]> {
  for (let i = 0; i < WARMUPS; i++) for (const spec of specs) await spec.run();
  const times = specs.map((): number[] => []);
  const results = specs.map(() => 0);
  for (let i = 0; i < RUNS; i++) {
    for (const [s, spec] of specs.entries()) {
      gc?.();
      const sample = await spec.run();
      times[s].push((spec.unit === 'µs' ? 1000 : 1) * sample.ms);
      results[s] = sample.result;
    }
  }
  return specs.map(({ name, unit }, s) => {
    const sorted = times[s].sort((a, b) => a - b);
    const measured = {
      name,
      unit,
      median: round(median(sorted)),
      min: round(sorted[0]),
      max: round(sorted[sorted.length - 1]),
      result: results[s],
    };
    console.log(`${name}: ${cell(measured)} ${unit} (result ${measured.result})`);
    return measured;
  });
}

const median = (sorted: readonly number[]) => sorted[Math.floor(sorted.length / 2)];
/** Four significant digits: what RESULTS.md keeps. */
const round = (value: number) => Number(value.toPrecision(4));

/** Rows of a streamed result, PAUSE markers (symbols) skipped. */
function countRows(rows: Iterable<unknown>): number {
  let count = 0;
  for (const row of rows) if (typeof row !== 'symbol') count++;
  return count;
}

async function run(source: Source, scale: number): Promise<Measurement[]> {
  const sizes = sizesOf(scale);
  // Before issue 11 a store was built with `new StorageService(options)`.
  const Store = source.StorageService as unknown as {
    standalone?: (options: object) => InstanceType<StorageModule['StorageService']>;
    new (options: object): InstanceType<StorageModule['StorageService']>;
  };
  const db = Store.standalone?.({}) ?? new Store({});
  const loading = Date.now();
  await fill(db, 'c', sizes.c, (i) => ({
    id: `r${pad(i)}`,
    k: (i * 7919) % sizes.c,
    g: i % 100,
    name: `r${i}`,
  }));
  await fill(db, 'users', sizes.users, (i) => ({ id: `u${i}`, name: `user ${i}`, age: i % 90 }));
  await fill(db, 'orders', sizes.orders, (i) => ({
    id: `o${pad(i)}`,
    user_id: `u${i % sizes.users}`,
    total: i % 1000,
  }));
  await db.create('tiny', { id: 't0', k: 0 });
  console.log(`loaded ${JSON.stringify(sizes)} + tiny in ${Date.now() - loading} ms`);

  const joinQuery = (raw: RawQuery) => {
    // As JoinController: the keys come from the parsed query.
    const query = source.join({ leftKey: 'id', rightKey: 'user_id', type: 'inner', ...raw });
    if (query.leftKey === undefined || query.rightKey === undefined) throw new Error('no keys');
    const tables = {
      left: 'users',
      right: 'orders',
      leftKey: query.leftKey,
      rightKey: query.rightKey,
    };
    return { tables, query };
  };
  const page = async (read: () => Promise<{ total?: number; items: readonly unknown[] }>) => {
    let result = 0;
    const ms = await timed(async () => {
      const found = await read();
      result = found.total ?? found.items.length;
    });
    return { ms, result };
  };
  const stream = async (read: () => Promise<{ rows: Iterable<unknown> }>) => {
    let result = 0;
    const ms = await timed(async () => {
      result = countRows((await read()).rows);
    });
    return { ms, result };
  };

  const out: Measurement[] = [];
  const filtered = source.list({ k: 'gte.0', limit: '100', count: 'exact' });
  const first = source.list({ limit: '100' });
  const firstNoCount = source.list({ limit: '100', count: 'none' });
  const joinPage = joinQuery({ limit: '100' });
  const all = source.list({ limit: 'all' });
  const joinAll = joinQuery({ limit: 'all' });
  for (const spec of [
    {
      name: 'filtered page + count (k >= 0, limit 100)',
      run: () => page(() => db.list('c', filtered)),
    },
    { name: 'first page + count (limit 100)', run: () => page(() => db.list('c', first)) },
    {
      name: 'first page, count=none (limit 100)',
      run: () => page(() => db.list('c', firstNoCount)),
    },
    {
      name: 'join page + count (users.id = orders.user_id, inner, limit 100)',
      run: () => page(() => db.join(joinPage.tables, joinPage.query)),
    },
    { name: 'whole list of c, streamed (listAll)', run: () => stream(() => db.listAll('c', all)) },
    {
      name: 'whole join, streamed (joinAll)',
      run: () => stream(() => db.joinAll(joinAll.tables, joinAll.query)),
    },
  ]) {
    out.push(...(await measure({ ...spec, unit: 'ms' })));
  }

  // Snapshot cost: per-query overhead on a 1-record table, in batches.
  const tiny = source.list({ limit: '100' });
  out.push(
    ...(await measure({
      name: 'snapshot: page of a 1-record table (tiny, limit 100, count)',
      unit: 'µs',
      run: async () => {
        let found: { total?: number; items: readonly unknown[] } = { items: [] };
        const ms = await timed(async () => {
          for (let i = 0; i < TINY_OPS; i++) found = await db.list('tiny', tiny);
        });
        return { ms: ms / TINY_OPS, result: found.total ?? found.items.length };
      },
    })),
  );

  // Snapshot cost for writers. Each patch changes a record no earlier patch changed, from the
  // end of `c`: one an open read has not reached, changed for the first time since it opened.
  // A run's value is the median of its PATCHES patches, each timed alone (a GC that the
  // reader's garbage brings on would otherwise land on whichever patch it interrupts).
  let nextPatch = sizes.c - 1;
  const patchOne = (): Promise<number> => {
    const id = `r${pad(nextPatch--)}`;
    return timed(() => db.patch('c', id, { name: `patched ${id}` }));
  };
  const patches = async (around?: (patch: () => Promise<number>) => Promise<number>) => {
    const times: number[] = [];
    for (let i = 0; i < PATCHES; i++) times.push(await (around ?? ((p) => p()))(patchOne));
    return { ms: median(times.sort((a, b) => a - b)), result: PATCHES };
  };
  let taken = 0;
  /** Opens a streamed read of `c`, takes its first chunk, patches, then closes the read. */
  const whileReading = async (patch: () => Promise<number>): Promise<number> => {
    const open = await db.listAll('c', all);
    const rows = open.rows[Symbol.iterator]();
    // The first chunk, as a streamed response takes it: rows up to a PAUSE or a chunk's worth.
    for (taken = 0; taken < FIRST_CHUNK_ROWS; taken++) {
      const next = rows.next();
      if (next.done === true || typeof next.value === 'symbol') break;
    }
    const ms = await patch();
    rows.return?.();
    return ms;
  };
  // Writes warm up apart: the first patches of a process are far slower than later ones.
  for (let i = 0; i < 3; i++) {
    await patches();
    await patches(whileReading);
  }
  out.push(
    ...(await measure(
      { name: 'snapshot: patch of c, no read open', unit: 'µs', run: () => patches() },
      {
        name: `snapshot: patch of c, a streamed read of c open (first chunk taken)`,
        unit: 'µs',
        run: async () => ({ ...(await patches(whileReading)), result: taken }),
      },
    )),
  );

  // Index-backed reads (indexes created last: the join above is the plain hash join).
  await db.createIndex('c', 'g', false);
  await db.createIndex('orders', 'user_id', false);
  const byIndex = source.list({ g: 'eq.7', limit: '100', count: 'exact' });
  for (const spec of [
    {
      name: 'indexed filtered page + count (g = 7, index on g, limit 100)',
      run: () => page(() => db.list('c', byIndex)),
    },
    {
      name: 'join page + count, index on orders.user_id (limit 100)',
      run: () => page(() => db.join(joinPage.tables, joinPage.query)),
    },
  ]) {
    out.push(...(await measure({ ...spec, unit: 'ms' })));
  }
  return out;
}

function sizesOf(scale: number): RunData['sizes'] {
  return {
    c: Math.round(1_000_000 * scale),
    users: Math.round(100_000 * scale),
    orders: Math.round(1_000_000 * scale),
  };
}

// --- bench/RESULTS.md ---

function readRecorded(): Recorded {
  if (!existsSync(RESULTS_FILE)) return {};
  const text = readFileSync(RESULTS_FILE, 'utf8');
  const from = text.indexOf(`<!-- ${SECTION} -->`);
  const to = text.indexOf(`<!-- /${SECTION} -->`);
  if (from === -1 || to < from) return {};
  const section = text.slice(from, to);
  const mark = section.indexOf(DATA_MARK);
  if (mark === -1) return {};
  const end = section.indexOf(' -->', mark);
  return JSON.parse(section.slice(mark + DATA_MARK.length, end)) as Recorded;
}

function format(value: number): string {
  return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
}

function cell(m: Measurement | undefined): string {
  return m === undefined ? '—' : `${format(m.median)} (${format(m.min)}–${format(m.max)})`;
}

function comparison(recorded: Recorded): Record<string, string>[] {
  const { before, after } = recorded;
  const comparable = before !== undefined && after !== undefined && before.scale === after.scale;
  const names = [...(after?.measurements ?? []), ...(before?.measurements ?? [])]
    .map((m) => m.name)
    .filter((name, i, all) => all.indexOf(name) === i);
  return names.map((name) => {
    const b = before?.measurements.find((m) => m.name === name);
    const a = after?.measurements.find((m) => m.name === name);
    const result =
      a === undefined || b === undefined || a.result === b.result
        ? String((a ?? b)?.result ?? '')
        : `before ${b.result} / after ${a.result}`;
    return {
      measurement: name,
      unit: (a ?? b)?.unit ?? '',
      'before: median (min–max)': cell(b),
      'after: median (min–max)': cell(a),
      'after / before': comparable && a && b ? (a.median / b.median).toFixed(2) : '—',
      'result (rows or total)': result,
    };
  });
}

function describeRun(label: Label, data: RunData | undefined): string {
  if (data === undefined) return `- ${label}: not measured yet`;
  const { c, users, orders } = data.sizes;
  const en = (n: number) => n.toLocaleString('en');
  return `- ${label}: source \`${data.source}\` (\`${data.src}\`), ${data.machine}, scale ${data.scale}: \`c\` ${en(c)}, \`users\` ${en(users)}, \`orders\` ${en(orders)} records`;
}

function section(recorded: Recorded): string {
  const { before, after } = recorded;
  const note =
    before !== undefined && after !== undefined && before.scale !== after.scale
      ? '\n\nThe two runs have different scales: no ratio.'
      : '';
  return `## Reads: before and after snapshot reads

Commands: \`npm run bench:reads -- --label before --src <old checkout>/src\` and \`npm run bench:reads -- --label after\` (bench/reads.ts). In process (no HTTP), through StorageService's public API, with queries parsed by the controllers' parse functions. \`c\`: records \`{ k, g, name }\`; \`users\`; \`orders\`, each naming one user; \`tiny\`: 1 record. Each row: ${WARMUPS} warm-ups, then the median of ${RUNS} runs (min–max in brackets), a GC before each run; ms per query, µs per operation for the snapshot rows (a run: ${TINY_OPS.toLocaleString('en')} pages of \`tiny\`, their mean; or ${PATCHES} patches, each timed alone, their median). Streamed results are read to the end without waiting at PAUSE markers.

${describeRun('before', before)}
${describeRun('after', after)}

${markdownTable(comparison(recorded))}${note}

Target: the filtered page with its count, the unfiltered first page and the join page stay within 10% of before (after / before <= 1.10). Snapshot cost: the page of \`tiny\` is the per-query overhead (snapshot creation included); \`count=none\` on the 1M-record \`c\` stops after 100 rows, so a snapshot whose creation grew with the table would show there. The two patch rows are a writer's cost with no read open and while a streamed read of \`c\` is open (its first chunk taken, not finished; each patch changes a record the read has not reached yet, for the first time since the read opened): their difference is the copy-on-write cost.

${DATA_MARK}${JSON.stringify(recorded)} -->`;
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  if (gc === undefined) console.warn('no global.gc: run node with --expose-gc');
  const source = describeSource(options.src);
  console.log(`measuring ${options.src} (${source}) as "${options.label}"`);
  const measurements = await run(loadSource(options.src), options.scale);
  const data: RunData = {
    source,
    src: options.src,
    machine: machine(),
    scale: options.scale,
    sizes: sizesOf(options.scale),
    measurements,
  };
  const recorded: Recorded = { ...readRecorded(), [options.label]: data };
  console.table(comparison(recorded));
  if (options.write) writeSection(SECTION, section(recorded));
  else console.log('--no-write: bench/RESULTS.md left alone');
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
