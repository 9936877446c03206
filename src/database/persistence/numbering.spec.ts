import { Logger } from '@nestjs/common';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IdempotencyStore } from '../../idempotency/idempotency.store';
import type { Receipt, StorageService } from '../storage.service';
import { openAppendFile, type OpenJournalFile } from './file-journal';
import { storeOn } from './store-on.spec-helper';

/** A store on `dir` (FSYNC=always) with the answers Idempotency-Key keeps. */
function withAnswers(dir: string | undefined, openJournalFile?: OpenJournalFile) {
  const answers = new IdempotencyStore({ ttlMs: 60_000, maxBytes: 1 << 20 });
  return { ...storeOn(dir, { lockTimeoutMs: 1000, openJournalFile, answers }), answers };
}

async function seqOfWrite(storage: StorageService, table: string, id: string): Promise<number> {
  const receipt: Receipt = {};
  await storage.create(table, { id }, receipt);
  return receipt.seq!;
}

describe('Sequence numbers around a restore', () => {
  let dir: string;
  beforeAll(() => Logger.overrideLogger(false));
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'memdb-numbering-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('never gives out again a number acknowledged while a restore ran, after a crash before its switch', async () => {
    const { storage, persistence } = withAnswers(dir);
    await persistence.start();
    await storage.create('t', { id: 'a' });
    // The restore's snapshot is in place; its switch waits (for writes in flight, in real life).
    let reached!: () => void;
    const stalled = new Promise<void>((resolve) => (reached = resolve));
    (persistence as unknown as { switchJournal: () => Promise<never> }).switchJournal = () => {
      reached();
      return new Promise<never>(() => undefined);
    };
    void persistence.restore([{ name: 'r', indexes: [], records: [] }]).catch(() => undefined);
    await stalled;
    const acknowledged = [await seqOfWrite(storage, 't', 'b'), await seqOfWrite(storage, 't', 'c')];
    // A crash now: the files as they are.
    const copy = mkdtempSync(join(tmpdir(), 'memdb-numbering-crash-'));
    try {
      cpSync(dir, copy, { recursive: true });
      const restarted = withAnswers(copy);
      await restarted.persistence.start();

      const next = await seqOfWrite(restarted.storage, 'u', 'z');

      expect(next).toBeGreaterThan(Math.max(...acknowledged));
      await restarted.persistence.onApplicationShutdown();
    } finally {
      rmSync(copy, { recursive: true, force: true });
      // Its restore never ends (the maintenance lock stays held): close the journal directly.
      await (persistence as unknown as { journal: { close(): Promise<void> } }).journal.close();
    }
  });

  it('switches journals even while a kept answer is being written (no gate holds those)', async () => {
    // A journal whose writes take a moment, as a slow disk would: the append stays in flight.
    const slow: OpenJournalFile = async (path) => {
      const file = await openAppendFile(path);
      return {
        ...file,
        writeSync: undefined,
        write: async (buffer, offset, length) => {
          await new Promise((resolve) => setTimeout(resolve, 20));
          return file.write(buffer, offset, length);
        },
      };
    };
    const { core, persistence, answers } = withAnswers(dir, slow);
    await persistence.start();
    const exclusive = core.exclusive.bind(core);
    core.exclusive = (step) => {
      // An answer is stored (and journaled) in the same turn as the switch begins.
      const decision = answers.begin('scope', 'key', 'request');
      if (decision.outcome === 'run') {
        answers.complete(decision.attempt, {
          status: 201,
          headers: { 'x-memdb-seq': '1' },
          body: Buffer.from('{}'),
        });
      }
      return exclusive(step);
    };

    await expect(persistence.restore([{ name: 'r', indexes: [], records: [] }])).resolves.toEqual({
      tables: 1,
      records: 0,
    });
    await persistence.onApplicationShutdown();
  });

  it('wakes requests waiting for the position a restore takes (memory only)', async () => {
    const { storage, persistence } = withAnswers(undefined);
    const target = storage.appliedSeq + 1;
    const waiting = storage.waitForSeq(target, 60_000);
    const receipt: Receipt = {};

    await persistence.restore([{ name: 'r', indexes: [], records: [] }], receipt);

    expect(receipt.seq).toBe(target);
    await expect(waiting).resolves.toBe(true);
  });
});
