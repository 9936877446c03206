import type { INestApplication } from '@nestjs/common';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { openAppendFile, type OpenJournalFile } from '../src/database/persistence/file-journal';
import { bytes } from './helpers/bodies';
import { createTestApp, PROBLEM_JSON } from './helpers/test-app';

/** Generous: the byte-flip test sends hundreds of restores, and CI shares two busy cores. */
jest.setTimeout(60_000);

type Rec = Record<string, unknown> & { id: string };
const BACKUP = 'application/octet-stream';

async function everything(http: unknown): Promise<unknown> {
  const tables = (
    await request(http as never)
      .get('/api/v1/tables')
      .expect(200)
  ).body as {
    name: string;
  }[];
  const out: Record<string, unknown> = { tables };
  for (const { name } of tables) {
    out[name] = (
      await request(http as never)
        .get(`/api/v1/data/${name}?limit=all`)
        .expect(200)
    ).body;
  }
  return out;
}

// Hundreds of requests in some tests: generous on a busy 2-core machine.
jest.setTimeout(60_000);

describe('Backup and restore: /api/v1/admin', () => {
  let app: INestApplication;
  let http: ReturnType<INestApplication['getHttpServer']>;
  let dir: string;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'memdb-backup-'));
    app = await createTestApp({ env: { DATA_DIR: dir } });
    http = app.getHttpServer();
    await request(http)
      .post('/api/v1/data/people')
      .send(Array.from({ length: 50 }, (_, i) => ({ id: `p${i}`, n: i, tags: ['a', i] })))
      .expect(201);
    await request(http).post('/api/v1/tables/people/indexes').send({ field: 'n', unique: true });
    await request(http).post('/api/v1/tables').send({ name: 'empty' }).expect(201);
  });

  afterEach(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('downloads a backup and restores it exactly, replacing what changed since', async () => {
    const before = await everything(http);
    const backup = await bytes(request(http).get('/api/v1/admin/backup')).expect(200);
    expect(backup.headers['content-type']).toBe(BACKUP);
    expect(backup.headers['content-disposition']).toMatch(
      /^attachment; filename="memdb-backup-.+\.jsonl"$/,
    );

    await request(http).delete('/api/v1/data/people/p3').expect(204);
    await request(http).post('/api/v1/data/other').send({ id: 'x' }).expect(201);
    const restored = await request(http)
      .post('/api/v1/admin/restore')
      .set('Content-Type', BACKUP)
      .send(backup.body as Buffer)
      .expect(200);
    expect(restored.body).toEqual({ tables: 2, records: 50 });
    expect(await everything(http)).toEqual(before);

    // The restore is durable: it survives a restart.
    await app.close();
    app = await createTestApp({ env: { DATA_DIR: dir } });
    http = app.getHttpServer();
    expect(await everything(http)).toEqual(before);
  });

  it('refuses every byte-flipped backup with a 400 and leaves live data as it was', async () => {
    const backup = (await bytes(request(http).get('/api/v1/admin/backup')).expect(200))
      .body as Buffer;
    await request(http).post('/api/v1/data/people').send({ id: 'live' }).expect(201);
    const live = await everything(http);
    // Every 7th byte (and the last ones), flipped one at a time.
    const positions = [
      ...Array.from({ length: Math.floor(backup.length / 7) }, (_, i) => i * 7),
      backup.length - 2,
      backup.length - 1,
    ];
    for (const at of positions) {
      const damaged = Buffer.from(backup);
      damaged[at] ^= 0x20;
      const res = await request(http)
        .post('/api/v1/admin/restore')
        .set('Content-Type', BACKUP)
        .send(damaged);
      expect({ at, status: res.status }).toEqual({ at, status: 400 });
      expect(res.headers['content-type']).toMatch(PROBLEM_JSON);
    }
    expect(await everything(http)).toEqual(live);
  });

  it.each([
    ['an empty upload', Buffer.alloc(0)],
    ['JSON', Buffer.from('{"tables":[]}')],
    ['a cut backup', null],
  ])('refuses %s with a 400', async (_label, body) => {
    const backup = (await bytes(request(http).get('/api/v1/admin/backup')).expect(200))
      .body as Buffer;
    const upload = body ?? backup.subarray(0, Math.floor(backup.length / 2));
    const res = await request(http)
      .post('/api/v1/admin/restore')
      .set('Content-Type', BACKUP)
      .send(upload)
      .expect(400);
    expect(res.body.code).toBe('INVALID_BACKUP');
  });

  it('refuses well-formed backups that break the rules of writes', async () => {
    const { encodeEntry } = await import('../src/database/persistence/log-format');
    const file = (tables: { name: string; indexes: unknown[]; records: unknown[] }[]) =>
      Buffer.concat([
        encodeEntry({
          t: 'header',
          format: 'memdb-snapshot',
          version: 1,
          tables: tables.length,
          records: tables.reduce((sum, t) => sum + t.records.length, 0),
        }),
        ...tables.flatMap((t) => [
          encodeEntry({ t: 'table', name: t.name, indexes: t.indexes }),
          encodeEntry({ t: 'records', records: t.records }),
        ]),
        encodeEntry({
          t: 'end',
          tables: tables.length,
          records: tables.reduce((sum, t) => sum + t.records.length, 0),
        }),
      ]);
    const stamp = {
      created_at: '2026-01-01T00:00:00.000Z',
      updated_at: '2026-01-01T00:00:00.000Z',
    };
    const live = await everything(http);
    for (const bad of [
      [{ name: '../etc', indexes: [], records: [] }],
      [
        {
          name: 't',
          indexes: [],
          records: [
            { ...stamp, id: 'a' },
            { ...stamp, id: 'a' },
          ],
        },
      ],
      [{ name: 't', indexes: [], records: [{ ...stamp, id: '' }] }],
      [{ name: 't', indexes: [], records: [{ ...stamp, id: 'a', ['__proto__']: { x: 1 } }] }],
      [{ name: 'users', indexes: [], records: [{ ...stamp, id: 'u', email: 'not an email' }] }],
      [{ name: 't', indexes: [], records: [null] }],
      [{ name: 't', indexes: [null], records: [] }],
      [{ name: 't', indexes: [{ field: 3, unique: false }], records: [] }],
      [{ name: 't', indexes: [{ field: 'k', unique: 'yes' }], records: [] }],
      [{ name: 't', indexes: [], records: [{ ...stamp, id: 'a', updated_at: 'not a date' }] }],
      [
        {
          name: 't',
          indexes: [{ field: 'k', unique: true }],
          records: [
            { ...stamp, id: 'a', k: 1 },
            { ...stamp, id: 'b', k: 1 },
          ],
        },
      ],
    ]) {
      const res = await request(http)
        .post('/api/v1/admin/restore')
        .set('Content-Type', BACKUP)
        .send(file(bad));
      expect({ bad, status: res.status }).toEqual({ bad, status: 400 });
    }
    expect(await everything(http)).toEqual(live);
  });

  it('takes a backup equal to one point-in-time state while writes continue', async () => {
    let writing = true;
    let written = 0;
    let started!: () => void;
    const going = new Promise<void>((resolve) => (started = resolve));
    const writer = (async () => {
      while (writing) {
        await request(http)
          .post('/api/v1/data/stream')
          .send({ id: `s${written}` })
          .expect(201);
        written++;
        if (written === 10) started();
      }
    })();
    // The backup starts once the writer is going (or fails with the writer's error).
    await Promise.race([writer, going]);
    const backup = (await bytes(request(http).get('/api/v1/admin/backup')).expect(200))
      .body as Buffer;
    writing = false;
    await writer;
    const { parseSnapshot } = await import('../src/database/persistence/snapshot');
    const tables = await parseSnapshot(backup, 'backup');
    const stream = tables.find((t) => t.name === 'stream')?.records ?? [];
    // A prefix of the writes, in order, without gaps: the state at one instant.
    expect(stream.map((r) => r.id)).toEqual(stream.map((_, i) => `s${i}`));
    expect(stream.length).toBeLessThan(written);
  });
});

describe('Admin routes with API keys', () => {
  it('need the admin role', async () => {
    const app = await createTestApp({
      env: {
        API_KEYS:
          'reader-key-0123456789:read,writer-key-0123456789:write,admin-key-0123456789:admin',
      },
    });
    const http = app.getHttpServer();
    try {
      await request(http).get('/api/v1/admin/backup').expect(401);
      await request(http)
        .get('/api/v1/admin/backup')
        .set('X-API-Key', 'writer-key-0123456789')
        .expect(403);
      await request(http)
        .post('/api/v1/admin/compact')
        .set('X-API-Key', 'writer-key-0123456789')
        .expect(403);
      await request(http)
        .post('/api/v1/admin/restore')
        .set('X-API-Key', 'reader-key-0123456789')
        .expect(403);
      await request(http)
        .get('/api/v1/admin/backup')
        .set('X-API-Key', 'admin-key-0123456789')
        .expect(200);
    } finally {
      await app.close();
    }
  });
});

describe('Disk failure (injected)', () => {
  it('refuses writes the journal cannot take (507 for a full disk), keeps reads, and resumes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'memdb-disk-'));
    let failing: string | undefined;
    const openJournalFile: OpenJournalFile = async (path) => {
      const file = await openAppendFile(path);
      return {
        ...file,
        writeSync: undefined,
        write: (buffer, offset, length) =>
          failing === undefined
            ? file.write(buffer, offset, length)
            : Promise.reject(Object.assign(new Error(failing), { code: failing })),
      };
    };
    let app = await createTestApp({ env: { DATA_DIR: dir, FSYNC: 'always' }, openJournalFile });
    let http = app.getHttpServer();
    try {
      await request(http).post('/api/v1/data/t').send({ id: 'kept' }).expect(201);

      failing = 'ENOSPC';
      const full = await request(http).post('/api/v1/data/t').send({ id: 'lost' }).expect(507);
      expect(full.headers['content-type']).toMatch(PROBLEM_JSON);
      expect(full.body.code).toBe('DISK_FULL');
      await request(http).get('/api/v1/data/t/lost').expect(404);
      await request(http).get('/api/v1/data/t/kept').expect(200);
      const ready = await request(http).get('/health/ready').expect(503);
      expect(JSON.stringify(ready.body)).toContain('ENOSPC');
      await request(http).get('/health').expect(200);

      failing = 'EIO';
      const broken = await request(http).patch('/api/v1/data/t/kept').send({ a: 1 }).expect(503);
      expect(broken.body.code).toBe('STORAGE_UNAVAILABLE');
      expect((await request(http).get('/api/v1/data/t/kept').expect(200)).body.a).toBeUndefined();

      failing = undefined;
      await request(http).post('/api/v1/data/t').send({ id: 'later' }).expect(201);
      await request(http).get('/health/ready').expect(200);
      await app.close();

      app = await createTestApp({ env: { DATA_DIR: dir } });
      http = app.getHttpServer();
      const ids = ((await request(http).get('/api/v1/data/t').expect(200)).body as Rec[]).map(
        (r) => r.id,
      );
      expect(ids).toEqual(['kept', 'later']);
      expect(readdirSync(dir).some((name) => name.startsWith('journal-'))).toBe(true);
    } finally {
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Admin routes while loading', () => {
  it('refuse backup, restore and compact with 503 until the data has loaded', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'memdb-loading-'));
    const app = await createTestApp({ env: { DATA_DIR: dir }, start: false });
    const http = app.getHttpServer();
    try {
      await request(http).get('/api/v1/admin/backup').expect(503);
      await request(http).post('/api/v1/admin/compact').expect(503);
      await request(http)
        .post('/api/v1/admin/restore')
        .set('Content-Type', BACKUP)
        .send(Buffer.from('x'))
        .expect((res) => expect([400, 503]).toContain(res.status));
    } finally {
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Restore racing compaction', () => {
  it('keeps the restored data when a compaction starts while the restore waits for a write', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'memdb-race-'));
    let slow = false;
    let slowWriteStarted!: () => void;
    const slowWriteReached = new Promise<void>((resolve) => (slowWriteStarted = resolve));
    // A journal whose writes can be made slow, to hold a write in flight at will.
    const openJournalFile: OpenJournalFile = async (path) => {
      const file = await openAppendFile(path);
      return {
        ...file,
        writeSync: undefined,
        write: async (buffer, offset, length) => {
          if (slow) {
            slowWriteStarted();
            await new Promise((resolve) => setTimeout(resolve, 300));
          }
          return file.write(buffer, offset, length);
        },
      };
    };
    let app = await createTestApp({ env: { DATA_DIR: dir }, openJournalFile });
    let http = app.getHttpServer();
    try {
      await request(http).post('/api/v1/data/t').send({ id: 'before' }).expect(201);
      const backup = (await bytes(request(http).get('/api/v1/admin/backup')).expect(200))
        .body as Buffer;
      await request(http).post('/api/v1/data/t').send({ id: 'after-backup' }).expect(201);
      const { PersistenceService } =
        await import('../src/database/persistence/persistence.service');
      slow = true;
      const write = request(http).post('/api/v1/data/other').send({ id: 'slow' });
      const writing = write.then((res) => res.status);
      await slowWriteReached;
      // The restore waits for the slow write; a compaction starts meanwhile.
      const restoring = request(http)
        .post('/api/v1/admin/restore')
        .set('Content-Type', BACKUP)
        .send(backup)
        .then((res) => res.status);
      await new Promise((resolve) => setTimeout(resolve, 50));
      const compacting = app.get(PersistenceService).compact();
      expect(await writing).toBe(201);
      slow = false;
      expect(await restoring).toBe(200);
      await compacting;
      const live = await everything(http);
      expect((live as { t: Rec[] }).t.map((r) => r.id)).toEqual(['before']);
      await app.close();
      app = await createTestApp({ env: { DATA_DIR: dir } });
      http = app.getHttpServer();
      expect(await everything(http)).toEqual(live);
    } finally {
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
