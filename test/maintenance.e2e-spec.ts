import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { StorageService } from '../src/database/storage.service';
import { createTestApp, PROBLEM_JSON } from './helpers/test-app';

/**
 * Compaction and restore hold writes (the WriteGate) for an instant; a write held longer than
 * LOCK_TIMEOUT_MS fails as a lock wait does.
 */

/** Short, so that a write held on purpose fails instead of waiting. */
const LOCK_TIMEOUT_MS = '250';

const dirs: string[] = [];
function freshDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'memdb-maintenance-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A promise and the function that resolves it. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('Writes during compaction and restore (DATA_DIR)', () => {
  it('fails a write held at the gate longer than LOCK_TIMEOUT_MS with 503 LOCK_TIMEOUT, changing nothing', async () => {
    const app = await createTestApp({
      env: { DATA_DIR: freshDir(), LOCK_TIMEOUT_MS, FSYNC: 'always' },
    });
    try {
      const http = app.getHttpServer();
      const release = deferred();
      const holding = app.get(StorageService).exclusive(() => release.promise);

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
});
