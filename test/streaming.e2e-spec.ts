import type { INestApplication } from '@nestjs/common';
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { lines, NDJSON, ndjson } from './helpers/bodies';
import { createTestApp, nextPageUrl, PROBLEM_JSON } from './helpers/test-app';

type Rec = Record<string, unknown> & { id: string };

describe('Streamed results: NDJSON and limit=all', () => {
  let app: INestApplication;
  let http: ReturnType<INestApplication['getHttpServer']>;
  const ITEMS = 2500;

  beforeAll(async () => {
    app = await createTestApp({ env: { MAX_RESULT_ROWS: '3000', BULK_MAX: '5000' } });
    http = app.getHttpServer();
    const items = Array.from({ length: ITEMS }, (_, i) => ({
      id: `i${String(i).padStart(4, '0')}`,
      n: i,
      group: i % 5,
      text: 'x'.repeat(40),
    }));
    await request(http).post('/api/v1/data/items').send(items).expect(201);
    const owners = Array.from({ length: 10 }, (_, i) => ({ id: `o${i}`, group: i }));
    await request(http).post('/api/v1/data/owners').send(owners).expect(201);
  });

  afterAll(() => app.close());

  describe('lists', () => {
    it('answer Accept: application/x-ndjson with every record, one per line, in insertion order', async () => {
      const res = await ndjson(request(http).get('/api/v1/data/items')).expect(200);
      expect(res.headers['content-type']).toBe(NDJSON);
      expect(res.headers.vary).toMatch(/\bAccept\b/);
      expect(res.headers['x-query-plan']).toBe('scan');
      // A whole result has no next page and is not counted separately.
      expect(res.headers.link).toBeUndefined();
      expect(res.headers['x-total-count']).toBeUndefined();
      const rows = lines(res.body as string) as Rec[];
      expect(rows).toHaveLength(ITEMS);
      expect(rows.map((r) => r.n)).toEqual(Array.from({ length: ITEMS }, (_, i) => i));
      expect(rows[0]).toMatchObject({ id: 'i0000', n: 0, group: 0 });
    });

    it('page NDJSON like JSON when a limit is given, with Link and X-Total-Count', async () => {
      const first = await ndjson(request(http).get('/api/v1/data/items?limit=2&group=3')).expect(
        200,
      );
      expect(lines(first.body as string)).toEqual([
        expect.objectContaining({ n: 3 }),
        expect.objectContaining({ n: 8 }),
      ]);
      expect(first.headers['x-total-count']).toBe(String(ITEMS / 5));
      const next = nextPageUrl(first);
      expect(next).toBeDefined();
      const second = await ndjson(request(http).get(next!)).expect(200);
      expect((lines(second.body as string) as Rec[]).map((r) => r.n)).toEqual([13, 18]);
    });

    it('stream a JSON array with limit=all, equal to the pages read one by one', async () => {
      const res = await request(http).get('/api/v1/data/items?limit=all').expect(200);
      expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(res.headers['transfer-encoding']).toBe('chunked');
      const whole = res.body as Rec[];
      expect(whole).toHaveLength(ITEMS);
      const paged: Rec[] = [];
      let url: string | undefined = '/api/v1/data/items?limit=1000';
      while (url !== undefined) {
        const page = await request(http).get(url).expect(200);
        paged.push(...(page.body as Rec[]));
        url = nextPageUrl(page);
      }
      expect(whole).toEqual(paged);
    });

    it('apply filters, sort, offset and fields to a whole result', async () => {
      const res = await request(http)
        .get('/api/v1/data/items?limit=all&group=in.(1,2)&n=lt.30&sort=-n&offset=2&fields=id,n')
        .expect(200);
      expect(res.body).toEqual(
        [22, 21, 17, 16, 12, 11, 7, 6, 2, 1].map((n) => ({
          id: `i${String(n).padStart(4, '0')}`,
          n,
        })),
      );
    });

    it('continue from a cursor to the end with limit=all', async () => {
      const page = await request(http).get('/api/v1/data/items?limit=2490').expect(400);
      expect(page.body.errors[0].field).toBe('limit');
      const first = await request(http).get('/api/v1/data/items?limit=1000&sort=-n').expect(200);
      const rest = await request(http)
        .get(`${nextPageUrl(first)!.replace('limit=1000', 'limit=all')}`)
        .expect(200);
      expect((rest.body as Rec[]).map((r) => r.n)).toEqual(
        Array.from({ length: ITEMS - 1000 }, (_, i) => ITEMS - 1001 - i),
      );
    });

    it('refuse to sort a whole result larger than MAX_RESULT_ROWS, before sending anything', async () => {
      await request(http)
        .post('/api/v1/data/big')
        .send(Array.from({ length: 3001 }, (_, i) => ({ n: i })));
      const res = await request(http).get('/api/v1/data/big?limit=all&sort=n').expect(422);
      expect(res.headers['content-type']).toMatch(PROBLEM_JSON);
      expect(res.body.code).toBe('RESULT_TOO_LARGE');
      // In default order nothing is held, so the same result streams.
      const all = await request(http).get('/api/v1/data/big?limit=all').expect(200);
      expect(all.body).toHaveLength(3001);
    });

    it('answer errors found before streaming as problem details, whatever the Accept', async () => {
      const missing = await request(http)
        .get('/api/v1/data/nope')
        .set('Accept', NDJSON)
        .expect(404);
      expect(missing.headers['content-type']).toMatch(PROBLEM_JSON);
      const bad = await request(http)
        .get('/api/v1/data/items?limit=-1')
        .set('Accept', NDJSON)
        .expect(400);
      expect(bad.body.code).toBe('INVALID_QUERY');
    });

    it.each([
      [undefined, 'application/json; charset=utf-8'],
      ['*/*', 'application/json; charset=utf-8'],
      ['text/html', 'application/json; charset=utf-8'],
      ['application/json, application/x-ndjson;q=0.5', 'application/json; charset=utf-8'],
      ['application/json;q=0.5, application/x-ndjson', NDJSON],
      ['application/ndjson', 'application/ndjson'],
      ['application/*', 'application/json; charset=utf-8'],
    ])('negotiate Accept %p as %s', async (accept, type) => {
      const test = request(http).get('/api/v1/data/owners?limit=2');
      if (accept !== undefined) test.set('Accept', accept);
      const res = await test.buffer(true).expect(200);
      expect(res.headers['content-type']).toBe(type);
    });
  });

  describe('joins', () => {
    const JOIN = '/api/v1/join/owners/items/group?leftKey=group';

    it('stream every joined row as NDJSON in default order', async () => {
      const res = await ndjson(request(http).get(JOIN)).expect(200);
      expect(res.headers['content-type']).toBe(NDJSON);
      expect(res.headers['x-query-plan']).toBe('left=scan; right=scan; join=hash');
      const rows = lines(res.body as string) as { left: Rec; right: Rec | null }[];
      expect(rows).toHaveLength(ITEMS);
      // Owners o0..o4 have 500 items each, in insertion order; o5..o9 none.
      expect(rows.slice(0, 2).map((r) => [r.left.id, r.right?.n])).toEqual([
        ['o0', 0],
        ['o0', 5],
      ]);
      expect(rows.at(-1)).toMatchObject({ left: { id: 'o4' }, right: { n: ITEMS - 1 } });
    });

    it('stream left joins with unmatched rows, projections and an offset', async () => {
      const res = await ndjson(
        request(http).get(`${JOIN}&type=left&fields=left.id,right.n&offset=2495`),
      ).expect(200);
      expect(lines(res.body as string)).toEqual([
        { left: { id: 'o4' }, right: { n: 2479 } },
        { left: { id: 'o4' }, right: { n: 2484 } },
        { left: { id: 'o4' }, right: { n: 2489 } },
        { left: { id: 'o4' }, right: { n: 2494 } },
        { left: { id: 'o4' }, right: { n: 2499 } },
        ...[5, 6, 7, 8, 9].map((i) => ({ left: { id: `o${i}` }, right: null })),
      ]);
    });

    it('give the same rows as a JSON array with limit=all as pages do', async () => {
      const whole = await request(http).get(`${JOIN}&type=full&limit=all`).expect(200);
      const paged: unknown[] = [];
      let url: string | undefined = `${JOIN}&type=full&limit=700`;
      while (url !== undefined) {
        const page = await request(http).get(url).expect(200);
        paged.push(...(page.body as unknown[]));
        url = nextPageUrl(page);
      }
      expect(whole.body).toEqual(paged);
      expect(paged).toHaveLength(ITEMS + 5);
    });

    it('stream semi and anti joins and sorted joins', async () => {
      const semi = await ndjson(request(http).get(`${JOIN}&type=anti&fields=left.id`)).expect(200);
      expect(lines(semi.body as string)).toEqual(
        [5, 6, 7, 8, 9].map((i) => ({ left: { id: `o${i}` } })),
      );
      const sorted = await request(http)
        .get(`${JOIN}&limit=all&sort=-right.n&fields=left.id,right.n&right.n=lt.3`)
        .expect(200);
      expect(sorted.body).toEqual([2, 1, 0].map((n) => ({ left: { id: `o${n}` }, right: { n } })));
    });
  });

  describe('while a large result streams', () => {
    let base: string;

    beforeAll(async () => {
      // 400 x 1000 records sharing one key: a 400,000-row join (about 30 MB of NDJSON).
      await request(http)
        .post('/api/v1/data/a')
        .send(Array.from({ length: 400 }, (_, i) => ({ id: `a${i}`, k: 1 })))
        .expect(201);
      for (let chunk = 0; chunk < 2; chunk++) {
        await request(http)
          .post('/api/v1/data/b')
          .send(Array.from({ length: 500 }, (_, i) => ({ id: `b${chunk}-${i}`, k: 1 })))
          .expect(201);
      }
      await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
      base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    });

    const open = (path: string): Promise<IncomingMessage> =>
      new Promise((resolve, reject) => {
        httpRequest(`${base}${path}`, { headers: { accept: NDJSON } }, resolve)
          .on('error', reject)
          .end();
      });

    it('other requests are answered while it streams (the work yields)', async () => {
      let response: ServerResponse | undefined;
      const capture = (_req: unknown, res: ServerResponse) => (response = res);
      http.on('request', capture);
      const stream = await open('/api/v1/join/a/b/k');
      http.off('request', capture);
      const events: string[] = [];
      let rows = 0;
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        for (let i = chunk.indexOf('\n'); i !== -1; i = chunk.indexOf('\n', i + 1)) rows++;
      });
      const ended = new Promise<void>((resolve) =>
        stream.on('end', () => {
          events.push('stream ended');
          resolve();
        }),
      );
      const got = await request(http).get('/api/v1/data/a/a7').expect(200);
      events.push('get answered');
      expect(response?.writableFinished).toBe(false);
      expect(got.body).toMatchObject({ id: 'a7' });
      await ended;
      expect(events).toEqual(['get answered', 'stream ended']);
      expect(rows).toBe(400_000);
    });

    it('a client that stops reading holds the stream open; one that leaves ends it', async () => {
      let response: ServerResponse | undefined;
      const capture = (_req: unknown, res: ServerResponse) => (response = res);
      http.on('request', capture);
      const stream = await open('/api/v1/join/a/b/k');
      http.off('request', capture);
      stream.pause();
      await new Promise((resolve) => setTimeout(resolve, 300));
      // The server waits for the socket (row-stream.spec.ts shows it stops reading rows too).
      expect(response?.writableEnded).toBe(false);
      expect(response?.writableLength).toBeLessThan(1024 * 1024);
      stream.destroy();
      await new Promise((resolve) => response?.once('close', resolve));
      await request(http).get('/api/v1/data/a/a1').expect(200);
    });
  });
});
