import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { createTestApp, PROBLEM_JSON } from './helpers/test-app';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const ada = { email: 'ada@example.com', full_name: 'Ada Lovelace', age: 36 };
const order = {
  user_id: 'u1',
  product_name: 'Analytical Engine',
  quantity: 1,
  total_price: 199.5,
  order_date: '2026-11-25T20:00:00Z',
};

describe('Records API', () => {
  let app: INestApplication;
  let http: ReturnType<INestApplication['getHttpServer']>;

  beforeAll(async () => {
    app = await createTestApp();
    http = app.getHttpServer();
  });

  afterAll(() => app.close());

  describe('POST /api/v1/data/:table', () => {
    it('returns 201 with the stored record, a UUID v4 id, timestamps and Location (the design test)', async () => {
      const res = await request(http).post('/api/v1/data/users').send(ada).expect(201);

      expect(res.body).toEqual({
        ...ada,
        id: expect.stringMatching(UUID_V4),
        created_at: expect.stringMatching(ISO_UTC),
        updated_at: res.body.created_at,
      });
      expect(res.headers.location).toBe(`/api/v1/data/users/${res.body.id}`);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      await request(http).get(res.headers.location).expect(200, res.body);
    });

    it('keeps a client string id, ignores client timestamps and answers 409 for a taken id', async () => {
      const res = await request(http)
        .post('/api/v1/data/notes')
        .send({ id: 'n:1', text: 'hi', created_at: '1999-01-01T00:00:00.000Z' })
        .expect(201);
      expect(res.body).toMatchObject({ id: 'n:1', text: 'hi' });
      expect(res.body.created_at).not.toBe('1999-01-01T00:00:00.000Z');

      const dup = await request(http)
        .post('/api/v1/data/notes')
        .send({ id: 'n:1', text: 'again' })
        .expect(409);

      expect(dup.headers['content-type']).toMatch(PROBLEM_JSON);
      expect(dup.body).toEqual({
        type: 'urn:memdb:problem:duplicate-record',
        title: 'Conflict',
        status: 409,
        detail: "Record 'n:1' already exists in table 'notes'",
        code: 'DUPLICATE_RECORD',
        instance: '/api/v1/data/notes',
      });
      await request(http)
        .get('/api/v1/data/notes/n:1')
        .expect(200)
        .expect((r) => expect(r.body.text).toBe('hi'));
    });

    it.each([
      ['a number id', { id: 7 }],
      ['an id with a space', { id: 'a b' }],
      ['an over-long id', { id: 'x'.repeat(129) }],
    ])('rejects %s with 400', async (_name, body) => {
      const res = await request(http).post('/api/v1/data/things').send(body).expect(400);

      expect(res.body).toMatchObject({
        code: 'RECORD_INVALID',
        errors: [{ field: 'id', message: expect.any(String) }],
      });
      await request(http).get('/api/v1/data/things').expect(404);
    });

    it('accepts any JSON object in untyped tables, nested values included', async () => {
      const body = {
        title: 'x',
        tags: ['a', 1, null, true],
        nested: { deep: { n: 1.5 } },
        empty: {},
      };

      const res = await request(http).post('/api/v1/data/misc').send(body).expect(201);

      expect(res.body).toMatchObject(body);
    });

    it('treats constructor, toString and __proto__-like names as ordinary tables', async () => {
      for (const table of ['constructor', 'toString', 'hasOwnProperty', 'valueOf']) {
        await request(http).get(`/api/v1/data/${table}`).expect(404);
        const created = await request(http)
          .post(`/api/v1/data/${table}`)
          .send({ id: 'a', v: table })
          .expect(201);
        expect(created.body.v).toBe(table);
        await request(http)
          .get(`/api/v1/data/${table}`)
          .expect(200)
          .expect((r) => expect(r.body).toHaveLength(1));
      }
    });
  });

  describe('typed tables', () => {
    it('accepts a valid order', async () => {
      await request(http).post('/api/v1/data/orders').send(order).expect(201);
    });

    it.each([
      ['age as a string (no coercion)', { ...ada, age: '30' }, ['age']],
      ['age out of range', { ...ada, age: 151 }, ['age']],
      ['a fractional age', { ...ada, age: 30.5 }, ['age']],
      ['a bad email', { ...ada, email: 'nope' }, ['email']],
      ['an empty full_name', { ...ada, full_name: '' }, ['full_name']],
      ['a missing field', { email: ada.email, age: 1 }, ['full_name']],
      ['an unknown field', { ...ada, admin: true }, ['admin']],
      [
        'fields named like Object methods',
        { ...ada, toString: 1, constructor: { a: 1 }, valueOf: 2 },
        ['toString', 'constructor', 'valueOf'],
      ],
      ['several bad fields', { email: 1, full_name: 2, age: -1 }, ['email', 'full_name', 'age']],
    ])('rejects users with %s, naming each bad field', async (_name, body, fields) => {
      const res = await request(http).post('/api/v1/data/users').send(body).expect(400);

      expect(res.headers['content-type']).toMatch(PROBLEM_JSON);
      expect(res.body).toMatchObject({ status: 400, code: 'RECORD_INVALID' });
      expect(res.body.errors.map((e: { field: string }) => e.field).sort()).toEqual(
        [...fields].sort(),
      );
    });

    it.each([
      ['quantity 0', { ...order, quantity: 0 }, 'quantity'],
      ['quantity "2"', { ...order, quantity: '2' }, 'quantity'],
      ['a negative total_price', { ...order, total_price: -1 }, 'total_price'],
      ['a date without a time', { ...order, order_date: '2026-11-25' }, 'order_date'],
      ['a date-time without seconds', { ...order, order_date: '2026-11-25T20:00Z' }, 'order_date'],
      ['a date-time without a zone', { ...order, order_date: '2026-11-25T20:00:00' }, 'order_date'],
      ['a non-date', { ...order, order_date: 'tomorrow' }, 'order_date'],
      ['a user_id that is not an id', { ...order, user_id: 'a b' }, 'user_id'],
      ['an empty product_name', { ...order, product_name: '' }, 'product_name'],
    ])('rejects orders with %s', async (_name, body, field) => {
      const res = await request(http).post('/api/v1/data/orders').send(body).expect(400);

      expect(res.body.errors).toEqual([{ field, message: expect.any(String) }]);
    });

    it('validates PUT and PATCH results too, and a rejected write changes nothing', async () => {
      const { body: user } = await request(http).post('/api/v1/data/users').send(ada).expect(201);
      const url = `/api/v1/data/users/${user.id}`;

      await request(http)
        .put(url)
        .send({ ...ada, age: 'old' })
        .expect(400);
      await request(http).patch(url).send({ age: 200 }).expect(400);
      await request(http).patch(url).send({ email: null }).expect(400);

      await request(http).get(url).expect(200, user);
    });
  });

  describe('GET /api/v1/data/:table/:id', () => {
    it('returns 404 problems for an unknown id and for a table never created', async () => {
      await request(http).post('/api/v1/data/present').send({ id: 'a' }).expect(201);

      const missingRecord = await request(http).get('/api/v1/data/present/b').expect(404);
      const missingTable = await request(http).get('/api/v1/data/absent/a').expect(404);

      expect(missingRecord.body).toMatchObject({ code: 'RECORD_NOT_FOUND', status: 404 });
      expect(missingTable.body).toMatchObject({ code: 'TABLE_NOT_FOUND', status: 404 });
      expect(missingTable.headers['content-type']).toMatch(PROBLEM_JSON);
    });
  });

  describe('GET /api/v1/data/:table', () => {
    beforeAll(async () => {
      for (let i = 0; i < 150; i++)
        await request(http)
          .post('/api/v1/data/many')
          .send({ id: `r${String(i).padStart(3, '0')}`, i });
    });

    it('returns the first 100 records in insertion order with X-Total-Count', async () => {
      const res = await request(http).get('/api/v1/data/many').expect(200);

      expect(res.headers['x-total-count']).toBe('150');
      expect(res.body).toHaveLength(100);
      expect(res.body[0].id).toBe('r000');
      expect(res.body[99].id).toBe('r099');
    });

    it('pages with limit and offset', async () => {
      const res = await request(http).get('/api/v1/data/many?limit=10&offset=145').expect(200);

      expect(res.body.map((r: { i: number }) => r.i)).toEqual([145, 146, 147, 148, 149]);
      expect(res.headers['x-total-count']).toBe('150');
    });

    it.each([
      'limit=0',
      'limit=1001',
      'limit=abc',
      'limit=1.5',
      'offset=-1',
      'offset=x',
      'limit=1&limit=2',
    ])('rejects %s with 400 naming the parameter', async (query) => {
      const res = await request(http).get(`/api/v1/data/many?${query}`).expect(400);

      expect(res.body).toMatchObject({
        code: 'INVALID_QUERY',
        errors: [{ field: query.split('=')[0] }],
      });
    });

    it('returns 404 for a table never created and [] for an emptied one', async () => {
      await request(http).get('/api/v1/data/never').expect(404);
      await request(http).post('/api/v1/data/emptied').send({ id: 'a' }).expect(201);
      await request(http).delete('/api/v1/data/emptied/a').expect(204);

      const res = await request(http).get('/api/v1/data/emptied').expect(200, []);

      expect(res.headers['x-total-count']).toBe('0');
    });
  });

  describe('PUT, PATCH and DELETE /api/v1/data/:table/:id', () => {
    it('PUT replaces the fields, keeps id and created_at, renews updated_at', async () => {
      const { body: created } = await request(http)
        .post('/api/v1/data/docs')
        .send({ id: 'd1', a: 1, b: 2 })
        .expect(201);

      const { body: replaced } = await request(http)
        .put('/api/v1/data/docs/d1')
        .send({ a: 9 })
        .expect(200);

      expect(replaced).toEqual({
        id: 'd1',
        a: 9,
        created_at: created.created_at,
        updated_at: expect.stringMatching(ISO_UTC),
      });
      expect(replaced.updated_at > created.updated_at).toBe(true);
      await request(http).get('/api/v1/data/docs/d1').expect(200, replaced);
    });

    it('PUT accepts a body carrying the same id and rejects a different one', async () => {
      await request(http).post('/api/v1/data/docs').send({ id: 'd2' }).expect(201);

      await request(http).put('/api/v1/data/docs/d2').send({ id: 'd2', v: 1 }).expect(200);
      const res = await request(http)
        .put('/api/v1/data/docs/d2')
        .send({ id: 'other', v: 2 })
        .expect(400);

      expect(res.body.errors).toEqual([{ field: 'id', message: expect.any(String) }]);
    });

    it('PATCH applies an RFC 7396 merge patch, as application/merge-patch+json too', async () => {
      await request(http)
        .post('/api/v1/data/docs')
        .send({ id: 'd3', a: 1, b: { c: 2, d: 3 }, e: 'x' })
        .expect(201);

      const res = await request(http)
        .patch('/api/v1/data/docs/d3')
        .set('Content-Type', 'application/merge-patch+json')
        .send(JSON.stringify({ a: 2, b: { d: null, f: 4 }, e: null }))
        .expect(200);

      expect(res.body).toMatchObject({ id: 'd3', a: 2, b: { c: 2, f: 4 } });
      expect(res.body).not.toHaveProperty('e');
      expect(res.body.b).not.toHaveProperty('d');
    });

    it('DELETE answers 204 with no body, then the record is gone', async () => {
      await request(http).post('/api/v1/data/docs').send({ id: 'd4' }).expect(201);

      const res = await request(http).delete('/api/v1/data/docs/d4').expect(204);

      expect(res.text).toBe('');
      await request(http).get('/api/v1/data/docs/d4').expect(404);
    });

    it.each([
      ['put', { a: 1 }],
      ['patch', { a: 1 }],
      ['delete', undefined],
    ] as const)('%s of a missing record answers 404 and creates nothing', async (method, body) => {
      const call = request(http)[method]('/api/v1/data/docs/missing');
      const res = await (body ? call.send(body) : call).expect(404);

      expect(res.body.code).toBe('RECORD_NOT_FOUND');
      await request(http)
        [method]('/api/v1/data/nodocs/missing')
        .send(body ?? {})
        .expect(404);
      await request(http).get('/api/v1/data/nodocs').expect(404);
    });
  });

  describe('concurrency', () => {
    it('loses nothing under 500 parallel creates', async () => {
      const responses = await Promise.all(
        Array.from({ length: 500 }, (_, i) =>
          request(http).post('/api/v1/data/parallel').send({ i }),
        ),
      );

      expect(responses.map((r) => r.status).filter((s) => s !== 201)).toEqual([]);
      const list = await request(http).get('/api/v1/data/parallel?limit=1000').expect(200);
      expect(list.headers['x-total-count']).toBe('500');
      expect(new Set(list.body.map((r: { i: number }) => r.i)).size).toBe(500);
      expect(new Set(list.body.map((r: { id: string }) => r.id)).size).toBe(500);
    });

    it('loses no field under 100 parallel PATCHes of one record', async () => {
      await request(http).post('/api/v1/data/counters').send({ id: 'c' }).expect(201);

      const responses = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          request(http)
            .patch('/api/v1/data/counters/c')
            .send({ [`f${i}`]: i }),
        ),
      );

      expect(responses.every((r) => r.status === 200)).toBe(true);
      const { body } = await request(http).get('/api/v1/data/counters/c').expect(200);
      expect(Object.keys(body).filter((k) => k.startsWith('f'))).toHaveLength(100);
      for (let i = 0; i < 100; i++) expect(body[`f${i}`]).toBe(i);
    });

    it('lets exactly one of many parallel creates with the same id win', async () => {
      const responses = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          request(http).post('/api/v1/data/race').send({ id: 'same', i }),
        ),
      );

      expect(responses.filter((r) => r.status === 201)).toHaveLength(1);
      expect(responses.filter((r) => r.status === 409)).toHaveLength(49);
    });
  });
});
