import type { INestApplication } from '@nestjs/common';
import {
  appendFileSync,
  cpSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import request from 'supertest';
import { openAppendFile, type OpenJournalFile } from '../src/database/persistence/file-journal';
import { PersistenceService } from '../src/database/persistence/persistence.service';
import { DatabaseCore } from '../src/database/database-core';
import { bytes } from './helpers/bodies';
import { tempDirs } from './helpers/temp-dirs';
import { createTestApp, PROBLEM_JSON } from './helpers/test-app';

/**
 * Compaction and restore hold writes (the WriteGate) only while they switch the journal's file
 * and take or swap table references; their I/O (creating the next journal, fsyncing the old
 * one and the directory, writing the snapshot) runs while writes go on. A write held longer
 * than LOCK_TIMEOUT_MS fails as a lock wait does. The journal seam below stops that I/O at
 * will: a write that had to wait for it would get 503 LOCK_TIMEOUT. At each stop DATA_DIR is
 * copied, as a crash there would leave it, and the copy must load to the state before or after.
 */

type Rec = Record<string, unknown> & { id: string };
const BACKUP = 'application/octet-stream';
/** Short, so that a write held through the seam's stops fails instead of waiting. */
const LOCK_TIMEOUT_MS = '250';

const freshDir = tempDirs('memdb-maintenance-');

/** A promise and the function that resolves it. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** A stop in the journal's I/O: `reached` once it is hit, held until `release()`. */
class Stop {
  private readonly hit = deferred();
  private readonly held = deferred();
  readonly reached = this.hit.promise;

  async wait(): Promise<void> {
    this.hit.resolve();
    await this.held.promise;
  }

  release(): void {
    this.held.resolve();
  }
}

/**
 * Journal files as usual, except that opening `journal-N.log` waits at `opening[N]`, and a
 * datasync of it at `syncing[N]` (while one is set).
 */
function stoppableJournal(): {
  open: OpenJournalFile;
  opening: Map<string, Stop>;
  syncing: Map<string, Stop>;
  /** Lets everything go on (a failed test must still be able to close its app). */
  releaseAll: () => void;
} {
  const opening = new Map<string, Stop>();
  const syncing = new Map<string, Stop>();
  const open: OpenJournalFile = async (path) => {
    await opening.get(basename(path))?.wait();
    const file = await openAppendFile(path);
    return {
      ...file,
      datasync: async () => {
        await syncing.get(basename(path))?.wait();
        await file.datasync();
      },
    };
  };
  const releaseAll = () => {
    for (const stop of [...opening.values(), ...syncing.values()]) stop.release();
  };
  return { open, opening, syncing, releaseAll };
}

/** DATA_DIR as a crash right now would leave it (the kernel keeps what was written). */
function crashCopy(dir: string): string {
  const copy = freshDir();
  cpSync(dir, copy, { recursive: true });
  return copy;
}

async function ids(app: INestApplication, table: string): Promise<string[]> {
  const res = await request(app.getHttpServer()).get(`/api/v1/data/${table}?limit=all`);
  if (res.status === 404) return [];
  expect(res.status).toBe(200);
  return (res.body as Rec[]).map((r) => r.id);
}

/** The ids of `table` once `dir` is loaded by a fresh app. */
async function idsAfterLoading(dir: string, table: string): Promise<string[]> {
  const app = await createTestApp({ env: { DATA_DIR: dir } });
  try {
    return await ids(app, table);
  } finally {
    await app.close();
  }
}

function post(app: INestApplication, table: string, id: string): Promise<number> {
  return request(app.getHttpServer())
    .post(`/api/v1/data/${table}`)
    .send({ id })
    .then((res) => res.status);
}

const range = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

describe('Writes during compaction and restore (DATA_DIR)', () => {
  it('fails a write held at the gate longer than LOCK_TIMEOUT_MS with 503 LOCK_TIMEOUT, changing nothing', async () => {
    const app = await createTestApp({
      env: { DATA_DIR: freshDir(), LOCK_TIMEOUT_MS, FSYNC: 'always' },
    });
    try {
      const http = app.getHttpServer();
      const release = deferred();
      const holding = app.get(DatabaseCore).exclusive(() => release.promise);

      const res = await request(http).post('/api/v1/data/t').send({ id: 'held' });
      release.resolve();
      await holding;

      expect(res.status).toBe(503);
      expect(res.headers['content-type']).toMatch(PROBLEM_JSON);
      expect(res.body).toEqual({
        type: 'urn:memdb:problem:lock-timeout',
        title: 'Service Unavailable',
        status: 503,
        detail: `Table 't' stayed locked for more than ${LOCK_TIMEOUT_MS} ms; try again`,
        code: 'LOCK_TIMEOUT',
        instance: '/api/v1/data/t',
      });
      await request(http).get('/api/v1/data/t/held').expect(404);
      await request(http).post('/api/v1/data/t').send({ id: 'later' }).expect(201);
    } finally {
      await app.close();
    }
  });

  it('compacts without holding writes through its I/O; a crash at each stop loses nothing', async () => {
    const dir = freshDir();
    const journal = stoppableJournal();
    const app = await createTestApp({
      env: { DATA_DIR: dir, LOCK_TIMEOUT_MS, FSYNC: 'no' },
      openJournalFile: journal.open,
    });
    try {
      expect(await post(app, 't', 'a0')).toBe(201);
      const opening = new Stop();
      const syncing = new Stop();
      journal.opening.set('journal-00000002.log', opening);
      journal.syncing.set('journal-00000001.log', syncing);
      const compacting = app.get(PersistenceService).compact();

      // Creating the next journal: writes still go to the current one.
      await opening.reached;
      expect(await Promise.all(range('b', 5).map((id) => post(app, 't', id)))).toEqual(
        Array(5).fill(201),
      );
      const whileOpening = crashCopy(dir);
      opening.release();

      // Switched; the old journal's last fsync: writes go to the new one.
      await syncing.reached;
      expect(await Promise.all(range('c', 5).map((id) => post(app, 't', id)))).toEqual(
        Array(5).fill(201),
      );
      const whileSyncing = crashCopy(dir);
      syncing.release();
      await compacting;

      const all = ['a0', ...range('b', 5), ...range('c', 5)];
      expect((await ids(app, 't')).sort()).toEqual(all);
      expect(readdirSync(dir).sort()).toEqual(['journal-00000002.log', 'snapshot-00000002.jsonl']);
      expect((await idsAfterLoading(whileOpening, 't')).sort()).toEqual(['a0', ...range('b', 5)]);
      expect((await idsAfterLoading(whileSyncing, 't')).sort()).toEqual(all);
    } finally {
      journal.releaseAll();
      await app.close();
    }
    expect((await idsAfterLoading(dir, 't')).sort()).toEqual([
      'a0',
      ...range('b', 5),
      ...range('c', 5),
    ]);
  });

  it('restores without holding writes through its I/O; a crash at each stop loads before or after', async () => {
    const dir = freshDir();
    const journal = stoppableJournal();
    const app = await createTestApp({
      env: { DATA_DIR: dir, LOCK_TIMEOUT_MS, FSYNC: 'always' },
      openJournalFile: journal.open,
    });
    const http = app.getHttpServer();
    /** Polls until the table holds exactly `expected` (writes are applied before answered). */
    const until = async (expected: string[]) => {
      let actual = await ids(app, 't');
      // Bounded only so that a failure shows what the table held instead of a test timeout.
      for (
        let tries = 0;
        tries < 300 && JSON.stringify(actual) !== JSON.stringify(expected);
        tries++
      ) {
        await new Promise((resolve) => setTimeout(resolve, 10));
        actual = await ids(app, 't');
      }
      expect(actual).toEqual(expected);
    };
    try {
      expect(await post(app, 't', 'a0')).toBe(201);
      const backup = (await bytes(request(http).get('/api/v1/admin/backup')).expect(200))
        .body as Buffer;
      expect(await post(app, 't', 'x')).toBe(201);
      const opening = new Stop();
      const syncing = new Stop();
      journal.opening.set('journal-00000002.log', opening);
      journal.syncing.set('journal-00000001.log', syncing);
      let answered = 0;
      const send = (id: string) =>
        post(app, 't', id).then((status) => {
          answered++;
          return status;
        });
      const restoring = request(http)
        .post('/api/v1/admin/restore')
        .set('Content-Type', BACKUP)
        .send(backup)
        .then((res) => res.status);

      // Creating the next journal, before the snapshot: writes go on, on the data being
      // replaced; FSYNC=always and the old journal's fsync is held: none is answered yet.
      await opening.reached;
      const before = range('b', 5).map(send);
      await until(['a0', 'x', ...range('b', 5)]);
      const whileOpening = crashCopy(dir);
      opening.release();

      // Snapshot written, journal switched, tables swapped, without waiting for that fsync.
      // Writes now apply to the restored data, and are not answered before the entries before
      // theirs, in the old journal, are on disk.
      await until(['a0']);
      const after = range('c', 5).map(send);
      await until(['a0', ...range('c', 5)]);
      expect(answered).toBe(0);
      const whileSyncing = crashCopy(dir);
      syncing.release();
      expect(await Promise.all([...before, ...after])).toEqual(Array(10).fill(201));
      expect(await restoring).toBe(200);

      expect(await ids(app, 't')).toEqual(['a0', ...range('c', 5)]);
      expect(await idsAfterLoading(whileOpening, 't')).toEqual(['a0', 'x', ...range('b', 5)]);
      expect(await idsAfterLoading(whileSyncing, 't')).toEqual(['a0', ...range('c', 5)]);
    } finally {
      journal.releaseAll();
      await app.close();
    }
    expect(await idsAfterLoading(dir, 't')).toEqual(['a0', ...range('c', 5)]);
  });

  it('loads a journal cut short by a crash while the next journal was being created', async () => {
    const dir = freshDir();
    const app = await createTestApp({ env: { DATA_DIR: dir } });
    try {
      for (const id of ['a', 'b']) expect(await post(app, 't', id)).toBe(201);
    } finally {
      await app.close();
    }
    const path = join(dir, 'journal-00000001.log');
    const whole = readFileSync(path);
    appendFileSync(path, whole.subarray(0, 20));
    writeFileSync(join(dir, 'journal-00000002.log'), '');

    expect(await idsAfterLoading(dir, 't')).toEqual(['a', 'b']);
    expect(statSync(path).size).toBe(whole.length);
  });

  it('restores under concurrent writers without losing a write made after the swap', async () => {
    const dir = freshDir();
    const app = await createTestApp({ env: { DATA_DIR: dir, FSYNC: 'always' } });
    const http = app.getHttpServer();
    let live = new Set<string>();
    try {
      await request(http)
        .post('/api/v1/data/kept')
        .send(range('k', 20).map((id) => ({ id })))
        .expect(201);
      const backup = (await bytes(request(http).get('/api/v1/admin/backup')).expect(200))
        .body as Buffer;
      await request(http).post('/api/v1/data/kept').send({ id: 'gone' }).expect(201);

      let restored = false;
      const sentAfter: string[] = [];
      // Each writer writes, one at a time, until it has made 10 writes after the restore.
      const writers = Array.from({ length: 8 }, async (_, w) => {
        const sent: string[] = [];
        let after = 0;
        for (let n = 0; after < 10; n++) {
          const id = `w${w}-${n}`;
          const afterRestore = restored;
          expect(await post(app, 'live', id)).toBe(201);
          sent.push(id);
          if (afterRestore) {
            sentAfter.push(id);
            after++;
          }
        }
        return sent;
      });
      await new Promise((resolve) => setTimeout(resolve, 50));
      await request(http)
        .post('/api/v1/admin/restore')
        .set('Content-Type', BACKUP)
        .send(backup)
        .expect(200);
      restored = true;
      const sent = await Promise.all(writers);

      live = new Set(await ids(app, 'live'));
      // Each writer's writes that survived the restore are those after some point: a suffix.
      for (const mine of sent) {
        const kept = mine.filter((id) => live.has(id));
        expect(kept).toEqual(mine.slice(mine.length - kept.length));
        expect(kept.length).toBeLessThan(mine.length);
      }
      expect(sentAfter).toHaveLength(80);
      expect(sentAfter.filter((id) => !live.has(id))).toEqual([]);
      expect(await ids(app, 'kept')).toEqual(range('k', 20));
    } finally {
      await app.close();
    }
    expect(new Set(await idsAfterLoading(dir, 'live'))).toEqual(live);
    expect(await idsAfterLoading(dir, 'kept')).toEqual(range('k', 20));
  });
});
