import type { INestApplication } from '@nestjs/common';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { encodeEntry } from '../src/database/persistence/log-format';
import { UnappliableEntryError } from '../src/database/state-machine';
import { createTestApp } from './helpers/test-app';

/**
 * DATA_DIR files written by an earlier release keep loading. `fixtures/data-dir-v1` was written
 * by memdb 0.1.0 (the release before the command log of issue 11): a snapshot (two typed
 * tables, a table with a unique index) and a journal after it (a merge patch, a delete, a new
 * table, a table created and dropped). Never regenerate it: it stands for users' files.
 */
describe('DATA_DIR written by memdb 0.1.0', () => {
  jest.setTimeout(60_000);
  let app: INestApplication;
  let http: ReturnType<INestApplication['getHttpServer']>;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'memdb-v1-'));
    cpSync(join(__dirname, 'fixtures', 'data-dir-v1'), dir, { recursive: true });
    app = await createTestApp({ env: { DATA_DIR: dir } });
    http = app.getHttpServer();
  });

  afterAll(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('loads every table with its records and indexes, as the snapshot and journal left them', async () => {
    const tables = await request(http).get('/api/v1/tables').expect(200);

    expect(tables.body).toEqual([
      { name: 'notes', records: 1, indexes: [{ field: 'title', unique: true }] },
      { name: 'orders', records: 1, indexes: [] },
      { name: 'users', records: 2, indexes: [] },
    ]);
  });

  it('replays the journal over the snapshot: patches applied, deletes and drops kept', async () => {
    const note = await request(http).get('/api/v1/data/notes/n1').expect(200);
    expect(note.body).toEqual({
      id: 'n1',
      title: 'first, edited',
      nested: { deep: { x: 1 } },
      created_at: expect.any(String),
      updated_at: expect.any(String),
    });
    expect(Date.parse(note.body.updated_at as string)).toBeGreaterThan(
      Date.parse(note.body.created_at as string),
    );
    await request(http).get('/api/v1/data/notes/n2').expect(404);
    await request(http).get('/api/v1/data/gone/g1').expect(404);
    const users = await request(http).get('/api/v1/data/users?sort=id').expect(200);
    expect((users.body as { id: string; email: string }[]).map((u) => [u.id, u.email])).toEqual([
      ['u1', 'ada@example.com'],
      ['u2', 'bob@example.com'],
    ]);
    const join = await request(http)
      .get('/api/v1/join/users/orders/user_id?leftKey=id')
      .expect(200);
    expect(join.body).toEqual([
      {
        left: expect.objectContaining({ id: 'u1' }),
        right: expect.objectContaining({ id: 'o1', total_price: 199.5 }),
      },
    ]);
  });

  it('goes on enforcing the loaded unique index and accepting writes', async () => {
    await request(http)
      .post('/api/v1/data/notes')
      .send({ id: 'n3', title: 'first, edited' })
      .expect(409);
    await request(http).post('/api/v1/data/notes').send({ id: 'n3', title: 'third' }).expect(201);
  });

  it('numbers the old entries in order and goes on from there; old and new entries load together', async () => {
    const write = await request(http)
      .post('/api/v1/data/notes')
      .send({ id: 'n4', title: 'fourth' });
    expect(write.status).toBe(201);
    // The v1 snapshot stands at 0 and its journal holds a few changes: numbered 1, 2, ...
    const seq = Number(write.headers['x-memdb-seq']);
    expect(seq).toBeGreaterThan(2);
    expect(seq).toBeLessThan(100);
    await app.close();

    app = await createTestApp({ env: { DATA_DIR: dir } });
    http = app.getHttpServer();
    const again = await request(http).get('/api/v1/data/notes/n4').expect(200);
    expect(Number(again.headers['x-memdb-seq'])).toBe(seq);
    await request(http).get('/api/v1/data/notes/n3').expect(200);
    await request(http).get('/api/v1/data/notes/n2').expect(404);
  });
});

describe('A log entry this server cannot apply', () => {
  jest.setTimeout(60_000);

  it.each([
    [
      'a newer command version',
      { v: 2, op: 'insert', table: 't', records: [], bulk: false },
      /version 2/,
    ],
    ['an unknown command', { v: 1, op: 'explode', table: 't' }, /not a valid 'explode' command/],
  ])(
    'stops the start on %s, naming the file, the offset and the entry',
    async (_, command, why) => {
      const dir = mkdtempSync(join(tmpdir(), 'memdb-future-'));
      try {
        const good = encodeEntry({ seq: 1, command: { v: 1, op: 'createTable', table: 't' } });
        writeFileSync(
          join(dir, 'journal-00000001.log'),
          Buffer.concat([good, encodeEntry({ seq: 2, command })]),
        );

        const started = createTestApp({ env: { DATA_DIR: dir } });

        await expect(started).rejects.toThrow(UnappliableEntryError);
        await expect(started).rejects.toThrow(
          new RegExp(`log entry 2 cannot be applied: journal-00000001.log at byte ${good.length}`),
        );
        await expect(started).rejects.toThrow(why);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
