import fc from 'fast-check';
import { isDeepStrictEqual } from 'node:util';
import { TYPED_TABLE_SCHEMAS } from '../records/typed-tables';
import type { Command, Outcome } from './commands';
import type { TableData } from './persistence/snapshot';
import type { JsonObject, JsonValue, RecordValidator, StoredRecord } from './record.types';
import { versionOf, type VersionCondition } from './record-version';
import { StateMachine, UnappliableEntryError } from './state-machine';
import { Versions } from './versions';

/*
 * Properties of StateMachine.apply over random command logs: a few tables (`users` typed, two
 * untyped), four ids (so inserts race and bulk inserts repeat ids), unique indexes that writes
 * and patches clash with, patches that break the users schema, If-Match conditions that are
 * right (taken from the machine's current record as the log is generated), stale, wrong or `*`,
 * and command times that often lie behind the record's updated_at. The same log gives the same
 * outcomes and state, also read back as JSON or replayed after a snapshot; a failed command
 * changes nothing; updated_at always moves forward; an entry that cannot be applied is refused.
 */

const TABLES = ['users', 't1', 't2'] as const;
const IDS = ['a', 'b', 'c', 'd'] as const;
const EMAILS = ['ada@example.com', 'bob@example.com', 'cy@example.com'] as const;
/** Index fields, mostly ones whose values repeat; `id` and `bad..field` are refused. */
const INDEX_FIELDS = ['email', 'email', 'email', 'age', 'age', 'k', 'n.x', 'id', 'bad..field'];
const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const AT0 = new Date(T0).toISOString();
/** Command times within 12 ms: updates renew updated_at by 1 ms, so `at` often lies behind it. */
const atArb = fc.integer({ min: 0, max: 12 }).map((ms) => new Date(T0 + ms).toISOString());
/** Mostly `users` (typed, where patches can break the schema), sometimes a missing table. */
const tableArb: fc.Arbitrary<string> = fc.constantFrom('users', 'users', 'users', 't1', 't1', 't2');
const idArb: fc.Arbitrary<string> = fc.constantFrom(...IDS);

/** What a record's client fields are made from; `users` takes valid user fields from it. */
interface Seed {
  readonly email: string;
  readonly name: string;
  readonly age: number;
  readonly k: JsonValue;
  readonly nx: number | undefined;
}
const seedArb: fc.Arbitrary<Seed> = fc.record({
  email: fc.constantFrom(...EMAILS),
  name: fc.constantFrom('Ada', 'Bob'),
  age: fc.constantFrom(0, 30, 150),
  k: fc.constantFrom<JsonValue>(1, 2, 'x', true, null),
  nx: fc.constantFrom<number | undefined>(1, 2, undefined),
});

function fieldsFor(table: string, seed: Seed): JsonObject {
  if (table === 'users') return { email: seed.email, full_name: seed.name, age: seed.age };
  return { k: seed.k, email: seed.email, ...(seed.nx === undefined ? {} : { n: { x: seed.nx } }) };
}

/** Merge patches: some break a user (null required field, age out of range, unknown field). */
const patchArb: fc.Arbitrary<JsonObject> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ email: fc.constantFrom(...EMAILS) }) },
  { weight: 2, arbitrary: fc.record({ age: fc.constantFrom(30, 200, -1) }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom<JsonObject>({ email: null }, { full_name: null }, { age: null }),
  },
  { weight: 1, arbitrary: fc.record({ full_name: fc.constantFrom('Eve', '') }) },
  { weight: 1, arbitrary: fc.constant<JsonObject>({ extra: 1 }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constantFrom(1, 2, 'x') }) },
  { weight: 1, arbitrary: fc.record({ n: fc.record({ x: fc.constantFrom(1, 2, null) }) }) },
  { weight: 1, arbitrary: fc.constantFrom<JsonObject>({ n: null }, {}) },
);

/** An If-Match condition, resolved against the machine when the log is generated. */
const condArb = fc.record({
  kind: fc.constantFrom(
    ...([
      'none',
      'none',
      'none',
      'any',
      'wrong',
      'right',
      'right',
      'right',
      'stale',
      'mixed',
    ] as const),
  ),
  pick: fc.nat(),
});
type Cond = typeof condArb extends fc.Arbitrary<infer T> ? T : never;

const templateArb = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('insert' as const),
      table: tableArb,
      items: fc.array(fc.record({ id: idArb, seed: seedArb }), { minLength: 1, maxLength: 1 }),
      bulk: fc.constant(false),
      at: atArb,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('insert' as const),
      table: tableArb,
      items: fc.array(fc.record({ id: idArb, seed: seedArb }), { minLength: 1, maxLength: 4 }),
      bulk: fc.constant(true),
      at: atArb,
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('replace' as const),
      table: tableArb,
      id: idArb,
      seed: seedArb,
      at: atArb,
      cond: condArb,
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant('patch' as const),
      table: tableArb,
      id: idArb,
      patch: patchArb,
      /** Set: the patch gives the record another record's email instead (a clash). */
      clash: fc.oneof(
        { weight: 2, arbitrary: fc.constant(null) },
        { weight: 1, arbitrary: fc.nat() },
      ),
      at: atArb,
      cond: condArb,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('delete' as const),
      table: tableArb,
      id: idArb,
      cond: condArb,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant('createTable' as const), table: tableArb }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('dropTable' as const), table: tableArb }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('createIndex' as const),
      table: tableArb,
      field: fc.constantFrom(...INDEX_FIELDS),
      unique: fc.constantFrom(true, true, false),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('dropIndex' as const),
      table: tableArb,
      field: fc.constantFrom(...INDEX_FIELDS),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('put' as const),
      table: tableArb,
      items: fc.array(fc.record({ id: idArb, seed: seedArb }), { minLength: 0, maxLength: 2 }),
      at: atArb,
    }),
  },
);
type Template = typeof templateArb extends fc.Arbitrary<infer T> ? T : never;

/** A log entry to be: its command template and how far its seq lies after the previous one. */
const entryArb = fc.record({ t: templateArb, gap: fc.integer({ min: 1, max: 3 }) });
type Entry = typeof entryArb extends fc.Arbitrary<infer T> ? T : never;
/**
 * A user with the i-th email (distinct, so a patch or replace can make them clash) and the same
 * age (so a unique index on it is refused).
 */
const user = (id: string, i: number) => ({
  id,
  seed: { email: EMAILS[i], name: 'Ada', age: 30, k: i, nx: i === 0 ? undefined : i },
});

/** Tables, unique indexes and distinct records made first (a subset of them, in this order). */
const PRELUDE: readonly Entry[] = (
  [
    { op: 'createTable', table: 'users' },
    { op: 'createIndex', table: 'users', field: 'email', unique: true },
    { op: 'insert', table: 'users', items: [user('a', 0), user('b', 1)], bulk: true, at: AT0 },
    { op: 'insert', table: 'users', items: [user('c', 2)], bulk: false, at: AT0 },
    { op: 'createTable', table: 't1' },
    { op: 'createIndex', table: 't1', field: 'k', unique: true },
    { op: 'createIndex', table: 't1', field: 'email', unique: true },
    { op: 'createIndex', table: 't1', field: 'n.x', unique: false },
    { op: 'insert', table: 't1', items: [user('a', 0), user('b', 1)], bulk: true, at: AT0 },
  ] satisfies Template[]
).map((t) => ({ t, gap: 1 }));
const logArb = fc
  .tuple(
    fc.subarray([...PRELUDE]),
    fc.array(entryArb, { minLength: 1, maxLength: 35, size: 'max' }),
  )
  .map(([prelude, rest]) => [...prelude, ...rest]);
/** Where the log starts: 0 (DATA_DIR) or a clock-like number (no DATA_DIR). */
const startArb = fc.constantFrom(0, 1_767_225_600_000_000);

const SCHEMAS: ReadonlyMap<string, RecordValidator> = new Map(Object.entries(TYPED_TABLE_SCHEMAS));

function newMachine(start = 0, schemas = SCHEMAS): StateMachine {
  return new StateMachine(schemas, new Versions(), 1000, start);
}

/** Versions seen so far (stale If-Match tags come from it). */
type History = string[];

function resolveCond(
  cond: Cond,
  machine: StateMachine,
  table: string,
  id: string,
  history: History,
): VersionCondition | undefined {
  const current = machine.table(table)?.get(id);
  const right = current === undefined ? 'no-such-record' : versionOf(current);
  switch (cond.kind) {
    case 'none':
      return undefined;
    case 'any':
      return '*';
    case 'wrong':
      return ['not-a-version'];
    case 'right':
      return [right];
    case 'stale':
      return history.length === 0 ? ['nothing-yet'] : [history[cond.pick % history.length]];
    default:
      return ['not-a-version', right];
  }
}

/** The command a template stands for, given the state the log has reached (for If-Match). */
function materialise(t: Template, machine: StateMachine, history: History): Command {
  switch (t.op) {
    case 'insert':
    case 'put': {
      const records = t.items.map(({ id, seed }): StoredRecord => ({
        id,
        ...fieldsFor(t.table, seed),
        created_at: t.at,
        updated_at: t.at,
      }));
      return t.op === 'insert'
        ? { v: 1, op: 'insert', table: t.table, records, bulk: t.bulk }
        : { v: 1, op: 'put', table: t.table, records };
    }
    case 'replace':
    case 'patch':
    case 'delete': {
      const ifMatch = resolveCond(t.cond, machine, t.table, t.id, history);
      const cond = ifMatch === undefined ? {} : { ifMatch };
      if (t.op === 'delete') return { v: 1, op: 'delete', table: t.table, id: t.id, ...cond };
      if (t.op === 'patch') {
        const patch = t.clash === null ? t.patch : clashOf(machine, t.table, t.id, t.clash);
        return { v: 1, op: 'patch', table: t.table, id: t.id, patch, at: t.at, ...cond };
      }
      const fields = fieldsFor(t.table, t.seed);
      return { v: 1, op: 'replace', table: t.table, id: t.id, fields, at: t.at, ...cond };
    }
    case 'createTable':
    case 'dropTable':
      return { v: 1, op: t.op, table: t.table };
    case 'createIndex':
      return { v: 1, op: 'createIndex', table: t.table, field: t.field, unique: t.unique };
    case 'dropIndex':
      return { v: 1, op: 'dropIndex', table: t.table, field: t.field };
  }
}

/** A patch giving record `id` the email of another record of the table (if there is one). */
function clashOf(machine: StateMachine, table: string, id: string, pick: number): JsonObject {
  const others = [...(machine.table(table)?.values() ?? [])].filter(
    (record) => record.id !== id && typeof record.email === 'string',
  );
  return others.length === 0
    ? { email: EMAILS[pick % EMAILS.length] }
    : { email: others[pick % others.length].email };
}

function remember(machine: StateMachine, history: History): void {
  for (const table of TABLES)
    for (const id of IDS) {
      const record = machine.table(table)?.get(id);
      if (record !== undefined) history.push(versionOf(record));
    }
  if (history.length > 200) history.splice(0, history.length - 200);
}

/** Frozen, so a command or a record the machine keeps that it tried to change would throw. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const member of Object.values(value)) deepFreeze(member);
  }
  return value;
}

/** A value as read back from a file: the log (commands) or a snapshot (tables). */
const fromLog = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

/** An outcome as a plain value: ok, value, or the error's class, code, message and details. */
function outcomeOf(outcome: Outcome): unknown {
  if (outcome.ok) return { ok: true, value: outcome.value };
  const { error } = outcome;
  return {
    ok: false,
    class: error.constructor.name,
    code: error.code,
    message: error.message,
    details: { ...error },
  };
}

function stateOf(machine: StateMachine): unknown {
  return { tables: machine.copyTables(), list: machine.list(), applied: machine.appliedSeq };
}

/** Deep, strict equality (isDeepStrictEqual is fast); a diff from expect when they differ. */
function expectSame(actual: unknown, expected: unknown, what: string): void {
  if (isDeepStrictEqual(actual, expected)) return;
  expect({ what, value: actual }).toStrictEqual({ what, value: expected });
  throw new Error(`${what} differ (isDeepStrictEqual)`);
}

/** Error codes seen over a property's runs: the generator must reach every outcome. */
function tally(counts: Map<string, number>, outcome: Outcome, command: Command): void {
  const key = outcome.ok
    ? `ok:${command.op}${'ifMatch' in command && Array.isArray(command.ifMatch) ? ':if-match' : ''}`
    : `${outcome.error.code}:${command.op}`;
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

/**
 * Materialises a log's commands against `machine` (If-Match tags from its current records) and
 * applies them to it in order, with increasing, not always contiguous, sequence numbers.
 */
class Driver {
  seq: number;
  private readonly history: History = [];

  constructor(
    readonly machine: StateMachine,
    start: number,
  ) {
    this.seq = start;
  }

  /** The next entry's seq and command, as the log would hold them. */
  next({ t, gap }: Entry): { seq: number; command: Command } {
    this.seq += gap;
    return { seq: this.seq, command: deepFreeze(materialise(t, this.machine, this.history)) };
  }

  apply(seq: number, command: Command): Outcome {
    const outcome = this.machine.apply(seq, command);
    remember(this.machine, this.history);
    return outcome;
  }
}

/** Every record by table and id. */
function recordsOf(machine: StateMachine): Map<string, StoredRecord> {
  const records = new Map<string, StoredRecord>();
  for (const { name, records: rows } of machine.copyTables())
    for (const record of rows) records.set(`${name}/${record.id}`, record);
  return records;
}

const RUNS = { numRuns: 150 };
/** More runs where the logs' coverage of outcomes is checked (the rarest is seen ~15 times). */
const COVERAGE_RUNS = { numRuns: 200 };

describe('StateMachine.apply (properties)', () => {
  it('is deterministic: the same log, read back as JSON, gives the same outcomes and state', () => {
    const counts = new Map<string, number>();
    fc.assert(
      fc.property(startArb, logArb, (start, log) => {
        const a = new Driver(newMachine(start), start);
        const b = newMachine(start);
        log.forEach((entry, step) => {
          const { seq, command } = a.next(entry);
          const logged = JSON.stringify(command);
          const outcome = a.apply(seq, command);
          tally(counts, outcome, command);
          const replayed = b.apply(seq, JSON.parse(logged) as Command);
          expectSame(outcomeOf(replayed), outcomeOf(outcome), `outcome of step ${step} ${logged}`);
          expectSame(stateOf(b), stateOf(a.machine), `state after step ${step} ${logged}`);
        });
      }),
      COVERAGE_RUNS,
    );
    // The logs reach every state-dependent outcome, and If-Match tags that match.
    const missing = [
      'ok:insert',
      'ok:put',
      'ok:replace:if-match',
      'ok:patch:if-match',
      'ok:delete:if-match',
      'ok:createTable',
      'ok:dropTable',
      'ok:createIndex',
      'ok:dropIndex',
      'TABLE_NOT_FOUND:patch',
      'RECORD_NOT_FOUND:replace',
      'DUPLICATE_RECORD:insert',
      'UNIQUE_VIOLATION:insert',
      'UNIQUE_VIOLATION:patch',
      'UNIQUE_VIOLATION:createIndex',
      'PRECONDITION_FAILED:patch',
      'PRECONDITION_FAILED:delete',
      'RECORD_INVALID:patch',
      'TABLE_EXISTS:createTable',
      'INDEX_EXISTS:createIndex',
      'INDEX_NOT_FOUND:dropIndex',
      'INVALID_NAME:createIndex',
    ].filter((key) => !counts.has(key));
    expect(missing).toEqual([]);
  });

  it('changes nothing on a failed command, and takes its seq either way', () => {
    let failures = 0;
    fc.assert(
      fc.property(startArb, logArb, (start, log) => {
        const a = new Driver(newMachine(start), start);
        log.forEach((entry, step) => {
          const { seq, command } = a.next(entry);
          const before = fromLog({
            tables: a.machine.copyTables(),
            list: a.machine.list(),
          });
          const outcome = a.apply(seq, command);
          expect(a.machine.appliedSeq).toBe(seq);
          if (outcome.ok) return;
          failures++;
          expectSame(
            { tables: a.machine.copyTables(), list: a.machine.list() },
            before,
            `state after failed step ${step} ${JSON.stringify(command)} (${outcome.error.code})`,
          );
        });
      }),
      RUNS,
    );
    expect(failures).toBeGreaterThan(100);
  });

  it('moves updated_at forward on every replace and patch, even when `at` is earlier; created_at never changes', () => {
    let updates = 0;
    let backwards = 0;
    fc.assert(
      fc.property(startArb, logArb, (start, log) => {
        const a = new Driver(newMachine(start), start);
        const problems: unknown[] = [];
        log.forEach((entry, step) => {
          const { seq, command } = a.next(entry);
          const before = recordsOf(a.machine);
          const outcome = a.apply(seq, command);
          const after = recordsOf(a.machine);
          const what = `step ${step} ${JSON.stringify(command)}`;
          let target: string | undefined;
          if (outcome.ok && (command.op === 'replace' || command.op === 'patch')) {
            target = `${command.table}/${command.id}`;
            const previous = before.get(target)!;
            const record = after.get(target)!;
            const last = Date.parse(previous.updated_at);
            const at = Date.parse(command.at);
            updates++;
            if (at <= last) backwards++;
            // updated_at = max(command time, previous updated_at + 1 ms): always later.
            const expected = new Date(Math.max(at, last + 1)).toISOString();
            if (
              record !== outcome.value ||
              record.updated_at !== expected ||
              !(Date.parse(record.updated_at) > last)
            )
              problems.push({ what, previous, record, value: outcome.value, expected });
          }
          if (command.op === 'put') return; // stores records as they are
          for (const [key, record] of after) {
            const previous = before.get(key);
            if (previous === undefined) continue;
            if (record.created_at !== previous.created_at)
              problems.push({ what, key, created_at: [previous.created_at, record.created_at] });
            // No record but the command's own changes at all.
            if (key !== target && record !== previous)
              problems.push({ what, key, changed: [previous, record] });
          }
        });
        expect(problems).toEqual([]);
      }),
      RUNS,
    );
    expect(updates).toBeGreaterThan(100);
    expect(backwards).toBeGreaterThan(20);
  });

  it('gives the same outcomes and state after a snapshot (JSON) loaded into a fresh machine', () => {
    fc.assert(
      fc.property(startArb, logArb, fc.nat(), (start, log, cutAt) => {
        const cut = cutAt % (log.length + 1);
        const a = new Driver(newMachine(start), start);
        for (const entry of log.slice(0, cut)) {
          const { seq, command } = a.next(entry);
          a.apply(seq, command);
        }
        const file = JSON.stringify(a.machine.copyTables());
        const b = newMachine();
        b.load(JSON.parse(file) as TableData[], a.machine.appliedSeq);
        expectSame(stateOf(b), stateOf(a.machine), `state loaded after ${cut} entries`);
        log.slice(cut).forEach((entry, step) => {
          const { seq, command } = a.next(entry);
          const logged = JSON.stringify(command);
          const outcome = a.apply(seq, command);
          const replayed = b.apply(seq, JSON.parse(logged) as Command);
          const what = `step ${cut + step} (snapshot after ${cut}) ${logged}`;
          expectSame(outcomeOf(replayed), outcomeOf(outcome), `outcome of ${what}`);
          expectSame(stateOf(b), stateOf(a.machine), `state after ${what}`);
        });
      }),
      RUNS,
    );
  });

  it('refuses an entry out of order, of an unknown version or op, naming its seq and changing nothing', () => {
    const badArb = fc.constantFrom(
      'same seq',
      'earlier seq',
      'v: 2',
      'v: 0',
      "v: '1'",
      'no v',
      'bogus op',
      'bad shape',
    );
    fc.assert(
      fc.property(startArb, logArb, templateArb, badArb, (start, log, template, bad) => {
        const a = new Driver(newMachine(start), start);
        for (const entry of log) {
          const { seq, command } = a.next(entry);
          a.apply(seq, command);
        }
        const { command: valid } = a.next({ t: template, gap: 1 });
        const applied = a.machine.appliedSeq;
        let seq = applied + 1;
        let command: unknown = valid;
        switch (bad) {
          case 'same seq':
            seq = applied;
            break;
          case 'earlier seq':
            seq = applied - 1 - (log.length % 3);
            break;
          case 'v: 2':
            command = { ...valid, v: 2 };
            break;
          case 'v: 0':
            command = { ...valid, v: 0 };
            break;
          case "v: '1'":
            command = { ...valid, v: '1' };
            break;
          case 'no v':
            command = { ...valid, v: undefined };
            break;
          case 'bogus op':
            command = { ...valid, op: 'truncate' };
            break;
          default:
            // Its op's fields missing (a table op, which has none, without its table).
            command = ['createTable', 'dropTable'].includes(valid.op)
              ? { v: 1, op: valid.op }
              : { v: 1, op: valid.op, table: (valid as { table: string }).table };
        }
        const before = fromLog(stateOf(a.machine));
        let thrown: unknown;
        try {
          a.machine.apply(seq, command as Command);
        } catch (error) {
          thrown = error;
        }
        expect(thrown).toBeInstanceOf(UnappliableEntryError);
        expect((thrown as UnappliableEntryError).seq).toBe(seq);
        expect((thrown as Error).message).toContain(`log entry ${seq} cannot be applied`);
        expectSame(stateOf(a.machine), before, `state after refused entry (${bad})`);
        // Nothing half-done: the entry that should have come applies as on any machine.
        expect(() => a.apply(applied + 1, valid)).not.toThrow();
        expect(a.machine.appliedSeq).toBe(applied + 1);
      }),
      RUNS,
    );
  });

  it('names the version it does not know, and the bug behind an error that is not a DatabaseError', () => {
    const boom: RecordValidator = () => {
      throw new Error('validator bug');
    };
    const machine = newMachine(10, new Map([['t', boom]]));
    machine.apply(11, { v: 1, op: 'insert', table: 't', records: [recordOf('a')], bulk: false });
    const before = fromLog(stateOf(machine));

    expect(() => machine.apply(12, { v: 2 } as unknown as Command)).toThrow(
      /^log entry 12 cannot be applied: command format version 2 is not one this server knows .*upgrade memdb/,
    );
    const patch: Command = { v: 1, op: 'patch', table: 't', id: 'a', patch: {}, at: AT0 };
    expect(() => machine.apply(12, patch)).toThrow(UnappliableEntryError);
    expect(() => machine.apply(12, patch)).toThrow('log entry 12 cannot be applied: validator bug');
    expect(stateOf(machine)).toEqual(before);
  });
});

function recordOf(id: string): StoredRecord {
  return { id, created_at: AT0, updated_at: AT0 };
}
