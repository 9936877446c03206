import { CommandLog } from './command-log';
import type { Command, LogEntry } from './commands';
import type { Journal } from './persistence/change';
import { StateMachine, UnappliableEntryError } from './state-machine';
import { Versions } from './versions';

const insert = (id: string): Command => ({
  v: 1,
  op: 'insert',
  table: 't',
  records: [{ id, created_at: '2026-01-01T00:00:00.000Z', updated_at: '2026-01-01T00:00:00.000Z' }],
  bulk: false,
});

/** A journal whose appends complete when the test says, in any order. */
class ManualJournal implements Journal {
  readonly pending = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  append(entry: LogEntry): Promise<void> {
    return new Promise((resolve, reject) => this.pending.set(entry.seq, { resolve, reject }));
  }
  durable(): Promise<void> {
    return Promise.resolve();
  }
}

function machine(validate?: () => never) {
  const schemas = new Map(validate ? [['t', validate]] : []);
  return new StateMachine(schemas, new Versions(), 1000, 100);
}

describe('CommandLog', () => {
  it('applies in sequence order whatever order the journal writes complete in, and skips a number it could not log', async () => {
    const state = machine();
    const log = new CommandLog(state);
    const journal = new ManualJournal();
    log.attach(journal);
    const applied: number[] = [];
    const submits = ['a', 'b', 'c'].map((id) =>
      Promise.resolve(log.submit(insert(id))).then(
        ({ seq }) => applied.push(seq),
        (error: Error) => applied.push(-Number(error.message)),
      ),
    );

    journal.pending.get(103)!.resolve();
    journal.pending.get(101)!.reject(new Error('101'));
    await new Promise((resolve) => setImmediate(resolve));
    // 102 not written yet: 103 waits for it.
    expect(applied).toEqual([-101]);
    expect(state.appliedSeq).toBe(101);
    journal.pending.get(102)!.resolve();
    await Promise.all(submits);

    expect(applied).toEqual([-101, 102, 103]);
    expect(state.appliedSeq).toBe(103);
    expect(state.table('t')!.get('a')).toBeUndefined();
    expect([...state.table('t')!.values()].map((r) => r.id)).toEqual(['b', 'c']);
  });

  it('wakes a waiter once its position is applied, and not before', async () => {
    const log = new CommandLog(machine());
    const reached = log.waitFor(102, 60_000);
    let done = false;
    void reached.then(() => (done = true));

    void log.submit(insert('a'));
    await new Promise((resolve) => setImmediate(resolve));
    expect(done).toBe(false);
    void log.submit(insert('b'));

    await expect(reached).resolves.toBe(true);
    await expect(log.waitFor(500, 10)).resolves.toBe(false);
  });

  it('stops at an entry it cannot apply: says so once, and refuses every later command', () => {
    const log = new CommandLog(
      machine(() => {
        throw new Error('validator bug');
      }),
    );
    const stopped = jest.fn();
    log.onStopped = stopped;

    void log.submit(insert('a'));
    const patch: Command = { v: 1, op: 'patch', table: 't', id: 'a', patch: {}, at: 'x' };
    expect(() => log.submit(patch)).toThrow(UnappliableEntryError);
    expect(() => log.submit(insert('b'))).toThrow(/log entry 102 cannot be applied: validator bug/);

    expect(stopped).toHaveBeenCalledTimes(1);
    expect(log.stopped).toBeInstanceOf(UnappliableEntryError);
  });
});

describe('CommandLog after a stop', () => {
  it('applies no entry logged behind the one it could not apply', async () => {
    const state = machine(() => {
      throw new Error('validator bug');
    });
    const log = new CommandLog(state);
    await Promise.resolve(log.submit(insert('a'))); // 101, before the journal
    const journal = new ManualJournal();
    log.attach(journal);
    const patch: Command = { v: 1, op: 'patch', table: 't', id: 'a', patch: {}, at: 'x' };
    const failing = Promise.resolve(log.submit(patch)).catch((error: Error) => error); // 102
    const behind = Promise.resolve(log.submit(insert('b'))).catch((error: Error) => error); // 103
    journal.pending.get(102)!.resolve();
    journal.pending.get(103)!.resolve();

    await expect(failing).resolves.toBeInstanceOf(UnappliableEntryError);
    await expect(behind).resolves.toMatchObject({ code: 'STORAGE_UNAVAILABLE' });
    expect(state.table('t')!.get('b')).toBeUndefined();
    expect(state.appliedSeq).toBe(101);
  });
});

describe('CommandLog.advanceTo', () => {
  it('wakes the requests waiting for a position reached without a command (a restore)', async () => {
    const log = new CommandLog(machine());
    const waiting = log.waitFor(105, 60_000);

    log.advanceTo(105);

    await expect(waiting).resolves.toBe(true);
  });

  it('stops waiting when the client leaves', async () => {
    const log = new CommandLog(machine());
    const left = new AbortController();
    const waiting = log.waitFor(105, 60_000, left.signal);

    left.abort();

    await expect(waiting).resolves.toBe(false);
    log.advanceTo(200);
  });
});
