import { CommandLog } from '../command-log';
import type { Command } from '../commands';
import type { StoredRecord } from '../record.types';
import { StateMachine } from '../state-machine';
import { Versions } from '../versions';
import { ChangeLog, type Change, type ChangeLogOptions, type Position } from './change-log';

const AT = '2026-01-01T00:00:00.000Z';
const rec = (id: string, extra: Record<string, unknown> = {}): StoredRecord =>
  ({ id, ...extra, created_at: AT, updated_at: AT }) as StoredRecord;
const insert = (table: string, ...ids: string[]): Command => ({
  v: 1,
  op: 'insert',
  table,
  records: ids.map((id) => rec(id)),
  bulk: ids.length > 1,
});
const START = 100;

function setup(options: ChangeLogOptions = { retain: 1000, retainBytes: 1 << 20 }) {
  const machine = new StateMachine(new Map(), new Versions(), 1000, START);
  const log = new CommandLog(machine);
  const changes = new ChangeLog(options, () => machine.appliedSeq);
  log.changes = changes;
  const submit = (command: Command) => log.submit(command) as { seq: number };
  return { machine, log, changes, submit };
}

const after = (seq: number, i = Infinity): Position => ({ seq, i });
const positions = (list: Change[]) => list.map((change) => change.pos);

describe('ChangeLog', () => {
  it('gives every change of an applied entry a position <seq>.<i>, in order, with its data', () => {
    const { changes, submit } = setup();
    const bulk = submit(insert('t', 'a', 'b', 'c'));
    const patch = submit({ v: 1, op: 'patch', table: 't', id: 'b', patch: { n: 1 }, at: AT });
    const del = submit({ v: 1, op: 'delete', table: 't', id: 'c' });
    const index = submit({ v: 1, op: 'createIndex', table: 't', field: 'n', unique: false });

    const read = changes.read(after(START), 100);
    expect(read.reset).toBeUndefined();
    expect(positions(read.changes)).toEqual([
      `${bulk.seq}.0`,
      `${bulk.seq}.1`,
      `${bulk.seq}.2`,
      `${patch.seq}.0`,
      `${del.seq}.0`,
      `${index.seq}.0`,
    ]);
    expect(read.changes.map((c) => [c.event, c.op])).toEqual([
      ['change', 'insert'],
      ['change', 'insert'],
      ['change', 'insert'],
      ['change', 'update'],
      ['change', 'delete'],
      ['table', 'create_index'],
    ]);
    const updated = JSON.parse(read.changes[3].data);
    expect(updated).toMatchObject({
      pos: `${patch.seq}.0`,
      seq: patch.seq,
      table: 't',
      op: 'update',
      id: 'b',
    });
    expect(updated.record).toMatchObject({ id: 'b', n: 1 });
    // The record before a change is kept for filters (a record leaving one).
    expect(read.changes[3].before).toMatchObject({ id: 'b' });
    expect(read.changes[3].before).not.toHaveProperty('n');
    expect(JSON.parse(read.changes[4].data)).toMatchObject({ op: 'delete', id: 'c', record: null });
    expect(JSON.parse(read.changes[5].data)).toEqual({
      pos: `${index.seq}.0`,
      seq: index.seq,
      table: 't',
      op: 'create_index',
      field: 'n',
    });
    expect(read.next).toEqual(after(index.seq));
  });

  it('gives nothing for a command that changed nothing (a 409), but moves past it', () => {
    const { changes, submit } = setup();
    const first = submit(insert('t', 'a'));
    const duplicate = submit(insert('t', 'a'));
    const read = changes.read(after(first.seq), 100);
    expect(read.changes).toEqual([]);
    expect(read.reset).toBeUndefined();
    expect(read.next).toEqual(after(duplicate.seq));
  });

  it('resumes after one change within an entry, or after the whole entry', () => {
    const { changes, submit } = setup();
    const bulk = submit(insert('t', 'a', 'b', 'c'));
    const next = submit(insert('t', 'd'));
    expect(positions(changes.read(after(bulk.seq, 0), 100).changes)).toEqual([
      `${bulk.seq}.1`,
      `${bulk.seq}.2`,
      `${next.seq}.0`,
    ]);
    expect(positions(changes.read(after(bulk.seq), 100).changes)).toEqual([`${next.seq}.0`]);
  });

  it('gives at most `limit` changes, and goes on exactly where it stopped', () => {
    const { changes, submit } = setup();
    const bulk = submit(insert('t', 'a', 'b', 'c', 'd', 'e'));
    const first = changes.read(after(START), 2);
    expect(positions(first.changes)).toEqual([`${bulk.seq}.0`, `${bulk.seq}.1`]);
    const second = changes.read(first.next, 2);
    expect(positions(second.changes)).toEqual([`${bulk.seq}.2`, `${bulk.seq}.3`]);
    const third = changes.read(second.next, 2);
    expect(positions(third.changes)).toEqual([`${bulk.seq}.4`]);
  });

  it('filters changes and still moves past the ones it left out', () => {
    const { changes, submit } = setup();
    submit(insert('a', 'x'));
    const b = submit(insert('b', 'y'));
    const last = submit(insert('a', 'z'));
    const read = changes.read(after(START), 100, (change) => change.table === 'b');
    expect(positions(read.changes)).toEqual([`${b.seq}.0`]);
    expect(read.next).toEqual(after(last.seq));
  });

  it('resets a resume point older than what is kept (CHANGES_RETAIN entries), naming where it goes on', () => {
    const { changes, submit } = setup({ retain: 2, retainBytes: 1 << 20 });
    const first = submit(insert('t', 'a'));
    const second = submit(insert('t', 'b'));
    const third = submit(insert('t', 'c'));
    const fourth = submit(insert('t', 'd'));
    // first and second were dropped: resuming after second is still exact.
    expect(changes.read(after(second.seq), 100).reset).toBeUndefined();
    const old = changes.read(after(first.seq), 100);
    expect(old.reset).toEqual({ reason: 'too_old', oldest: second.seq, continueFrom: second.seq });
    expect(positions(old.changes)).toEqual([`${third.seq}.0`, `${fourth.seq}.0`]);
    // Within the dropped entry: also too old.
    expect(changes.read(after(second.seq, 0), 100).reset?.reason).toBe('too_old');
  });

  it('keeps at most CHANGES_RETAIN_MB of changes', () => {
    const { changes, submit } = setup({ retain: 1000, retainBytes: 2000 });
    const big = (id: string): Command => ({
      v: 1,
      op: 'insert',
      table: 't',
      records: [rec(id, { pad: 'x'.repeat(600) })],
      bulk: false,
    });
    const seqs = ['a', 'b', 'c', 'd', 'e'].map((id) => submit(big(id)).seq);
    const read = changes.read(after(START), 100);
    expect(read.reset?.reason).toBe('too_old');
    // About 760 bytes each: two fit in 2000.
    expect(positions(read.changes)).toEqual([`${seqs[3]}.0`, `${seqs[4]}.0`]);
  });

  it('resets a resume point ahead of the log, going on from the last applied entry', () => {
    const { changes, submit } = setup();
    const write = submit(insert('t', 'a'));
    const read = changes.read(after(write.seq + 50), 100);
    expect(read.reset).toEqual({ reason: 'ahead', oldest: START, continueFrom: write.seq });
    expect(read.changes).toEqual([]);
    expect(read.next).toEqual(after(write.seq));
  });

  it('resets a resume point before a restore', () => {
    const { changes, submit, log } = setup();
    const before = submit(insert('t', 'a'));
    const restoreSeq = log.reserve();
    log.advanceTo(restoreSeq);
    const later = submit(insert('t', 'b'));
    const read = changes.read(after(before.seq), 100);
    expect(read.reset).toEqual({ reason: 'restore', oldest: restoreSeq, continueFrom: restoreSeq });
    expect(positions(read.changes)).toEqual([`${later.seq}.0`]);
    expect(changes.read(changes.oldest, 100).reset).toBeUndefined();
  });

  it('resets on a restore command (cluster mode) and tells subscribers of every entry', () => {
    const { changes, submit } = setup();
    const told: number[] = [];
    const stop = changes.subscribe(() => told.push(changes.read(after(START), 100).next.seq));
    const first = submit(insert('t', 'a'));
    const restore = submit({
      v: 1,
      op: 'restore',
      tables: [{ name: 't', indexes: [], records: [rec('z')] }],
    });
    stop();
    submit(insert('t', 'b'));
    expect(told).toEqual([first.seq, restore.seq]);
    expect(changes.read(after(first.seq), 100).reset?.reason).toBe('restore');
    expect(changes.subscribers).toBe(0);
  });
});
