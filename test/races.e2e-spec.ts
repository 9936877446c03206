import type { INestApplication } from '@nestjs/common';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { openAppendFile, type OpenJournalFile } from '../src/database/persistence/file-journal';
import { createTestApp } from './helpers/test-app';

/**
 * Races between writers to one table, where they can actually happen. Without DATA_DIR a write
 * checks and changes in one synchronous step, so concurrent requests cannot interleave and
 * such tests pass with the table locks removed. Here every write awaits between its check and
 * its change: DATA_DIR with FSYNC=always, and journal writes that go through the thread pool
 * after a pause, so other requests run in between. Only the table's lock keeps them apart.
 */

type Rec = Record<string, unknown> & { id: string };

/** Long enough for every concurrent request to arrive while the first one awaits its write. */
const JOURNAL_WRITE_PAUSE_MS = 30;

/** Journal writes that always yield to the event loop (no writeSync), after a pause. */
const slowJournal: OpenJournalFile = async (path) => {
  const file = await openAppendFile(path);
  return {
    ...file,
    writeSync: undefined,
    write: async (buffer, offset, length) => {
      await new Promise((resolve) => setTimeout(resolve, JOURNAL_WRITE_PAUSE_MS));
      return file.write(buffer, offset, length);
    },
  };
};

/** Statuses in a stable order, for an exact comparison. */
const sorted = (statuses: number[]) => [...statuses].sort((a, b) => a - b);

describe('Concurrent writes to one table (DATA_DIR, writes await between check and change)', () => {
  let app: INestApplication;
  let http: ReturnType<INestApplication['getHttpServer']>;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'memdb-races-'));
    app = await createTestApp({
      env: { DATA_DIR: dir, FSYNC: 'always' },
      openJournalFile: slowJournal,
    });
    http = app.getHttpServer();
  });

  afterAll(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('PATCH: of 16 with the same If-Match, exactly one succeeds and the rest get 412', async () => {
    const created = await request(http)
      .post('/api/v1/data/patched')
      .send({ id: 'r', by: null })
      .expect(201);
    const etag = created.headers.etag as string;

    const answers = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        request(http).patch('/api/v1/data/patched/r').set('If-Match', etag).send({ by: i }),
      ),
    );

    expect(sorted(answers.map((res) => res.status))).toEqual([200, ...Array(15).fill(412)]);
    const winner = answers.find((res) => res.status === 200)!.body as Rec;
    for (const res of answers.filter((r) => r.status === 412)) {
      expect(res.body.code).toBe('PRECONDITION_FAILED');
    }
    const stored = await request(http).get('/api/v1/data/patched/r').expect(200);
    expect(stored.body).toEqual(winner);
    expect(stored.headers.etag).not.toBe(etag);
  });

  it('unique index: of 16 inserts of one value, exactly one is stored and the rest get 409', async () => {
    await request(http).post('/api/v1/tables').send({ name: 'members' }).expect(201);
    await request(http)
      .post('/api/v1/tables/members/indexes')
      .send({ field: 'email', unique: true })
      .expect(201);

    const answers = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        request(http).post('/api/v1/data/members').send({ email: 'same@example.com', n: i }),
      ),
    );

    expect(sorted(answers.map((res) => res.status))).toEqual([201, ...Array(15).fill(409)]);
    for (const res of answers.filter((r) => r.status === 409)) {
      expect(res.body.code).toBe('UNIQUE_VIOLATION');
    }
    const winner = answers.find((res) => res.status === 201)!.body as Rec;
    const all = await request(http).get('/api/v1/data/members?limit=all').expect(200);
    expect(all.body).toEqual([winner]);
  });

  it('bulk: of 8 batches sharing one id, exactly one is stored whole and the rest get 409', async () => {
    const batches = Array.from({ length: 8 }, (_, b) =>
      // The shared id sits at a different place in each batch.
      [`only-${b}-a`, `only-${b}-b`, `only-${b}-c`]
        .toSpliced(b % 4, 0, 'shared')
        .map((id) => ({ id, batch: b })),
    );

    const answers = await Promise.all(
      batches.map((batch) => request(http).post('/api/v1/data/batches').send(batch)),
    );

    expect(sorted(answers.map((res) => res.status))).toEqual([201, ...Array(7).fill(409)]);
    for (const res of answers.filter((r) => r.status === 409)) {
      expect(res.body.code).toBe('DUPLICATE_RECORD');
    }
    const winner = answers.findIndex((res) => res.status === 201);
    const all = await request(http).get('/api/v1/data/batches?limit=all').expect(200);
    expect(all.body).toEqual(answers[winner].body);
    expect((all.body as Rec[]).map(({ id, batch }) => ({ id, batch }))).toEqual(batches[winner]);
  });
});
