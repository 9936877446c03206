import type { INestApplication } from '@nestjs/common';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { StorageService } from '../src/database/storage.service';
import { createTestApp } from './helpers/test-app';

/**
 * Reads see the state of their start, and the memory a long read keeps alive is bounded by
 * SNAPSHOT_MAX_MB. A client reads the first chunk of a large stream and stops; writes land;
 * then it reads on.
 */
describe('Snapshot reads over HTTP', () => {
  jest.setTimeout(60_000);
  let app: INestApplication;
  let http: ReturnType<INestApplication['getHttpServer']>;
  let base: string;
  let storage: StorageService;
  // 24 MB of rows: more than loopback socket buffers hold, so a paused client holds the read.
  const RECORDS = 16_000;
  const pad = 'x'.repeat(1500);
  const rid = (i: number) => `r${String(i).padStart(5, '0')}`;

  beforeAll(async () => {
    app = await createTestApp({ env: { SNAPSHOT_MAX_MB: '1', BULK_MAX: '1000' } });
    http = app.getHttpServer();
    storage = app.get(StorageService);
    for (let start = 0; start < RECORDS; start += 500) {
      const rows = Array.from({ length: 500 }, (_, j) => ({
        id: rid(start + j),
        n: start + j,
        pad,
      }));
      await request(http).post('/api/v1/data/big').send(rows).expect(201);
    }
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  });

  afterAll(() => app.close());

  /** Opens a stream and waits for its first chunk, then pauses it. */
  async function openPaused(path: string, accept: string) {
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      httpRequest(`${base}${path}`, { headers: { accept } }, resolve).on('error', reject).end();
    });
    res.setEncoding('utf8');
    let body = '';
    const closed = new Promise<void>((resolve) => res.on('close', resolve));
    res.on('error', () => undefined);
    await new Promise<void>((resolve) =>
      res.once('data', (chunk: string) => {
        body += chunk;
        res.pause();
        resolve();
      }),
    );
    return {
      res,
      /** Reads the rest; resolves once the response is closed (ended or cut). */
      async rest(): Promise<string> {
        res.on('data', (chunk: string) => (body += chunk));
        res.resume();
        await closed;
        return body;
      },
    };
  }

  /** Rewrites records from the end of the table (not yet sent), 20 at a time. */
  async function rewrite(from: number, count: number, value: unknown): Promise<void> {
    for (let i = from; i < from + count; i += 20) {
      await Promise.all(
        Array.from({ length: Math.min(20, from + count - i) }, (_, j) =>
          request(http)
            .patch(`/api/v1/data/big/${rid(i + j)}`)
            .send({ n: value })
            .expect(200),
        ),
      );
    }
  }

  const openReads = async (): Promise<number> => {
    // A closed response releases its read on the next turns of the event loop.
    for (let tries = 0; tries < 100 && storage.snapshots.open > 0; tries++)
      await new Promise((resolve) => setTimeout(resolve, 20));
    return storage.snapshots.open;
  };

  it('streams the state at the start: writes made meanwhile are not seen', async () => {
    const stream = await openPaused('/api/v1/data/big', 'application/x-ndjson');
    await rewrite(RECORDS - 100, 100, 'new');
    await request(http)
      .delete(`/api/v1/data/big/${rid(RECORDS - 1)}`)
      .expect(204);
    await request(http).post('/api/v1/data/big').send({ id: 'late', n: -1 }).expect(201);

    const rows = (await stream.rest())
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as { id: string; n: unknown });

    expect(rows).toHaveLength(RECORDS);
    expect(rows.map((row) => row.n)).toEqual(Array.from({ length: RECORDS }, (_, i) => i));
    expect(await openReads()).toBe(0);
    // Put the table back as it was for the next tests.
    await request(http).delete('/api/v1/data/big/late').expect(204);
    await request(http)
      .post('/api/v1/data/big')
      .send({ id: rid(RECORDS - 1), n: RECORDS - 1, pad })
      .expect(201);
    for (let i = RECORDS - 100; i < RECORDS - 1; i++)
      await request(http)
        .patch(`/api/v1/data/big/${rid(i)}`)
        .send({ n: i })
        .expect(200);
  });

  it('past SNAPSHOT_MAX_MB, cuts an NDJSON stream with a last line holding the problem', async () => {
    const stream = await openPaused('/api/v1/data/big', 'application/x-ndjson');
    // About 1.6 kB kept per rewritten record: 1,000 of them pass 1 MiB.
    await rewrite(RECORDS - 1000, 1000, 'rewritten');

    const lines = (await stream.rest()).trimEnd().split('\n');
    const last = JSON.parse(lines.at(-1)!) as { error: Record<string, unknown> };

    expect(last).toEqual({
      error: expect.objectContaining({
        status: 503,
        code: 'SNAPSHOT_TOO_OLD',
        type: 'urn:memdb:problem:snapshot-too-old',
      }),
    });
    expect(lines.length).toBeLessThan(RECORDS);
    for (const line of lines.slice(0, -1))
      expect((JSON.parse(line) as { n: unknown }).n).not.toBe('rewritten');
    expect(await openReads()).toBe(0);
  });

  it('past SNAPSHOT_MAX_MB, closes a JSON array stream before its ]', async () => {
    const stream = await openPaused('/api/v1/data/big?limit=all', 'application/json');
    await rewrite(RECORDS - 1000, 1000, 'again');

    const body = await stream.rest();

    expect(body.startsWith('[')).toBe(true);
    expect(body.endsWith(']')).toBe(false);
    expect(stream.res.complete).toBe(false);
    expect(await openReads()).toBe(0);
  });

  it('ends the read of a client that leaves mid-stream', async () => {
    const stream = await openPaused('/api/v1/data/big', 'application/x-ndjson');
    expect(storage.snapshots.open).toBe(1);

    stream.res.destroy();

    expect(await openReads()).toBe(0);
    await request(http)
      .get(`/api/v1/data/big/${rid(0)}`)
      .expect(200);
  });

  describe('a cursor issued while its last row is deleted', () => {
    let cursorApp: INestApplication;
    let server: ReturnType<INestApplication['getHttpServer']>;
    const cid = (i: number) => `r${String(i).padStart(7, '0')}`;

    beforeAll(async () => {
      cursorApp = await createTestApp({ env: { BULK_MAX: '10000', BODY_LIMIT: '4mb' } });
      server = cursorApp.getHttpServer();
      for (let start = 0; start < 200_000; start += 10_000) {
        const rows = Array.from({ length: 10_000 }, (_, j) => ({
          id: cid(start + j),
          k: start + j,
        }));
        await request(server).post('/api/v1/data/c').send(rows).expect(201);
      }
    });

    afterAll(() => cursorApp.close());

    it('points after that row: the next page does not start again from the top', async () => {
      // The counted scan goes on after the page is full; the DELETE lands while it runs.
      const [page] = await Promise.all([
        request(server).get('/api/v1/data/c?k=gte.0&limit=100').expect(200),
        request(server)
          .delete(`/api/v1/data/c/${cid(99)}`)
          .expect(204),
      ]);
      const rows = page.body as { id: string }[];
      const last = rows.at(-1)!.id;
      const link = /^<([^>]+)>; rel="next"$/.exec(String(page.headers.link))![1];

      const next = await request(server).get(link).expect(200);

      const first = (next.body as { id: string }[])[0].id;
      expect(first > last).toBe(true);
      expect(first).toBe(cid(Number(last.slice(1)) + 1));
    });
  });
});
