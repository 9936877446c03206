import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { createTestApp, nextPageUrl, PROBLEM_JSON } from './helpers/test-app';

type Rec = Record<string, unknown> & { id: string };

const PEOPLE = [
  {
    id: 'p1',
    name: 'Ada',
    age: 36,
    status: 'paid',
    code: '007',
    address: { city: 'London' },
    vip: true,
  },
  {
    id: 'p2',
    name: 'bob',
    age: 17,
    status: 'new',
    code: 7,
    address: { city: 'Paris' },
    vip: false,
  },
  { id: 'p3', name: 'Cy', age: '36', status: 'void', address: { city: 'Paris' } },
  { id: 'p4', name: 'Dee', age: 70, status: 'paid', nickname: null },
  { id: 'p5', name: 'Eve', age: 36, status: 'new', address: { city: 'Rome' } },
];

describe('Querying lists: GET /api/v1/data/:table', () => {
  let app: INestApplication;
  let http: ReturnType<INestApplication['getHttpServer']>;
  const ids = (res: request.Response) => (res.body as Rec[]).map((r) => r.id);
  const get = (query: string) => request(http).get(`/api/v1/data/people?${query}`);

  beforeAll(async () => {
    app = await createTestApp();
    http = app.getHttpServer();
    await request(http).post('/api/v1/data/people').send(PEOPLE).expect(201);
  });

  afterAll(() => app.close());

  it.each([
    ['status=paid', ['p1', 'p4']],
    ['age=36', ['p1', 'p5']],
    ['age=eq."36"', ['p3']],
    ['code=eq."007"', ['p1']],
    ['code=7', ['p2']],
    ['age=ne.36', ['p2', 'p3', 'p4']],
    ['age=gt.36', ['p4']],
    ['age=gte.36', ['p1', 'p4', 'p5']],
    ['age=lt.36', ['p2']],
    ['age=lte.36', ['p1', 'p2', 'p5']],
    ['status=in.(new,void)', ['p2', 'p3', 'p5']],
    ['name=like.*e*', ['p4', 'p5']],
    ['name=ilike.*E*', ['p4', 'p5']],
    ['name=like.B*', []],
    ['name=ilike.b*', ['p2']],
    ['nickname=is.null', ['p1', 'p2', 'p3', 'p4', 'p5']],
    ['nickname=eq.null', ['p4']],
    ['vip=is.true', ['p1']],
    ['vip=is.false', ['p2']],
    ['age=not.gte.36', ['p2', 'p3']],
    ['status=not.in.(paid,new)', ['p3']],
    ['address.city=eq.Paris', ['p2', 'p3']],
    ['address.city=Paris&age=lt.20', ['p2']],
    ['age=gte.18&age=lt.50', ['p1', 'p5']],
    ['or=(age.lt.18,age.gt.65)', ['p2', 'p4']],
    ['or=(status.eq.void,and(age.eq.36,address.city.eq.Rome))', ['p3', 'p5']],
    ['not.or=(age.lt.18,age.gt.65)', ['p1', 'p3', 'p5']],
    ['not.and=(status.eq.new,age.eq.36)', ['p1', 'p2', 'p3', 'p4']],
  ])('%s', async (query, expected) => {
    const res = await get(query).expect(200);

    expect(ids(res)).toEqual(expected);
    expect(res.headers['x-total-count']).toBe(String(expected.length));
  });

  it('sorts by several fields, ties broken by id, missing values last in either direction', async () => {
    expect(ids(await get('sort=-age').expect(200))).toEqual(['p3', 'p4', 'p1', 'p5', 'p2']);
    expect(ids(await get('sort=address.city,-name').expect(200))).toEqual([
      'p1',
      'p2',
      'p3',
      'p5',
      'p4',
    ]);
    expect(ids(await get('sort=-address.city').expect(200))).toEqual([
      'p5',
      'p2',
      'p3',
      'p1',
      'p4',
    ]);
  });

  it('projects fields, nested ones included', async () => {
    const res = await get('fields=id,address.city&age=36').expect(200);

    expect(res.body).toEqual([
      { id: 'p1', address: { city: 'London' } },
      { id: 'p5', address: { city: 'Rome' } },
    ]);
  });

  it('counts the filtered records, or not with count=none', async () => {
    const counted = await get('status=paid&limit=1').expect(200);
    const uncounted = await get('status=paid&limit=1&count=none').expect(200);

    expect(counted.headers['x-total-count']).toBe('2');
    expect(uncounted.headers['x-total-count']).toBeUndefined();
    expect(ids(uncounted)).toEqual(['p1']);
  });

  it('links each page to the next with a cursor until the last page', async () => {
    const seen: string[] = [];
    let url: string | undefined = '/api/v1/data/people?sort=-age&limit=2&fields=id';
    let pages = 0;
    while (url !== undefined) {
      const res: request.Response = await request(http).get(url).expect(200);
      seen.push(...ids(res));
      url = nextPageUrl(res);
      pages++;
    }

    expect(pages).toBe(3);
    expect(seen).toEqual(['p3', 'p4', 'p1', 'p5', 'p2']);
  });

  it('has no Link on the last page', async () => {
    const res = await get('limit=5').expect(200);

    expect(res.headers.link).toBeUndefined();
  });

  it.each([
    ['age=gtt.5', 'age', /unknown operator/],
    ['age=in.(1,2', 'age', /parenthesised/],
    ['age=is.maybe', 'age', /null, true or false/],
    ['age=gt.true', 'age', /numbers or strings/],
    ['name=eq."open', 'name', /malformed/],
    [
      `age=in.(${Array.from({ length: 501 }, (_, i) => i).join(',')})`,
      'age',
      /at most|limited to 500/,
    ],
    ['limit=0', 'limit', /1 to 1000/],
    ['limit=1001', 'limit', /1 to 1000/],
    ['offset=-1', 'offset', /integer/],
    ['cursor=%%%', 'cursor', /malformed/],
    ['cursor=abc&offset=2', 'offset', /cursor/],
    ['count=maybe', 'count', /exact|none/],
    ['sort=-', 'sort', /field path/],
    ['fields=a..b', 'fields', /field path/],
    ['__proto__.x=1', '__proto__.x', /field path/],
    ['or=(age.lt.18', 'or', /unbalanced|parenthesised/],
  ])('answers %s with a 400 naming %s', async (query, parameter, message) => {
    const res = await get(query).expect(400);

    expect(res.headers['content-type']).toMatch(PROBLEM_JSON);
    expect(res.body).toMatchObject({
      code: 'INVALID_QUERY',
      errors: [{ field: parameter, message: expect.stringMatching(message) }],
    });
  });

  it('pages by cursor over long sort values, and refuses a cursor whose record was deleted', async () => {
    const rows = Array.from({ length: 5 }, (_, i) => ({
      id: `long${i}`,
      s: `${String.fromCharCode(97 + i)}${'x'.repeat(3500)}`,
    }));
    await request(http).post('/api/v1/data/longsort').send(rows).expect(201);
    const seen: string[] = [];
    let url: string | undefined = '/api/v1/data/longsort?sort=-s&limit=2&fields=id';
    while (url !== undefined) {
      expect(url.length).toBeLessThan(2000);
      const res: request.Response = await request(http).get(url).expect(200);
      seen.push(...ids(res));
      url = nextPageUrl(res);
    }
    expect(seen).toEqual(['long4', 'long3', 'long2', 'long1', 'long0']);

    const first = await request(http).get('/api/v1/data/longsort?sort=s&limit=1').expect(200);
    await request(http).delete('/api/v1/data/longsort/long0').expect(204);
    const gone = await request(http)
      .get(nextPageUrl(first) as string)
      .expect(400);
    expect(gone.body.errors[0]).toMatchObject({
      field: 'cursor',
      message: expect.stringContaining('deleted'),
    });
  });

  it('refuses a cursor from another query or table', async () => {
    const link = (await get('sort=age&limit=1').expect(200)).headers.link as string;
    const cursor = /cursor=([^&>]+)/.exec(link)?.[1];

    await get(`sort=-age&limit=1&cursor=${cursor}`).expect(400);
    await request(http)
      .post('/api/v1/data/reborn')
      .send([{ age: 1 }, { age: 2 }])
      .expect(201);
    const reborn = /cursor=([^&>]+)/.exec(
      (await request(http).get('/api/v1/data/reborn?sort=age&limit=1')).headers.link as string,
    )?.[1];
    await request(http).delete('/api/v1/tables/reborn').expect(204);
    await request(http)
      .post('/api/v1/data/reborn')
      .send([{ age: 1 }, { age: 2 }])
      .expect(201);
    await request(http).get(`/api/v1/data/reborn?sort=age&limit=1&cursor=${reborn}`).expect(400);
    await request(http).post('/api/v1/data/others').send({ id: 'x' }).expect(201);
    await request(http).get(`/api/v1/data/others?sort=age&limit=1&cursor=${cursor}`).expect(400);
  });

  it('visits every surviving record exactly once while others are inserted and deleted', async () => {
    const table = '/api/v1/data/churn';
    await request(http)
      .post(table)
      .send(
        Array.from({ length: 60 }, (_, i) => ({ id: `c${String(i).padStart(2, '0')}`, n: i % 7 })),
      )
      .expect(201);
    const deleted = new Set<string>();
    const seen: string[] = [];
    let url: string | undefined = `${table}?sort=n&limit=7&fields=id`;
    let round = 0;
    while (url !== undefined) {
      const res: request.Response = await request(http).get(url).expect(200);
      seen.push(...ids(res));
      url = nextPageUrl(res);
      // Concurrent writers between pages: inserts on both sides of the cursor, deletes ahead and behind.
      round++;
      const victim = `c${String((round * 13) % 60).padStart(2, '0')}`;
      deleted.add(victim);
      await Promise.all([
        request(http)
          .post(table)
          .send({ id: `new${round}a`, n: 0 }),
        request(http)
          .post(table)
          .send({ id: `new${round}b`, n: 6 }),
        request(http).delete(`${table}/${victim}`),
      ]);
    }

    expect(new Set(seen).size).toBe(seen.length);
    for (let i = 0; i < 60; i++) {
      const id = `c${String(i).padStart(2, '0')}`;
      if (!deleted.has(id)) expect(seen).toContain(id);
    }
  });
});

describe('Tables and indexes', () => {
  let app: INestApplication;
  let http: ReturnType<INestApplication['getHttpServer']>;

  beforeAll(async () => {
    app = await createTestApp();
    http = app.getHttpServer();
  });

  afterAll(() => app.close());

  it('creates, lists, describes and drops tables', async () => {
    const created = await request(http).post('/api/v1/tables').send({ name: 'events' }).expect(201);
    expect(created.body).toEqual({ name: 'events', records: 0, indexes: [] });
    expect(created.headers.location).toBe('/api/v1/tables/events');
    await request(http).get('/api/v1/data/events').expect(200, []);
    await request(http).post('/api/v1/data/events').send({ id: 'e1' }).expect(201);

    await request(http).post('/api/v1/tables').send({ name: 'events' }).expect(409);
    await request(http).post('/api/v1/tables').send({ name: '1bad' }).expect(400);
    await request(http).post('/api/v1/tables').send({ name: 'x', extra: 1 }).expect(400);
    const list = await request(http).get('/api/v1/tables').expect(200);
    expect(list.body).toEqual(
      expect.arrayContaining([{ name: 'events', records: 1, indexes: [] }]),
    );
    await request(http)
      .get('/api/v1/tables/events')
      .expect(200, { name: 'events', records: 1, indexes: [] });

    await request(http).delete('/api/v1/tables/events').expect(204);
    await request(http).get('/api/v1/data/events').expect(404);
    await request(http).get('/api/v1/tables/events').expect(404);
    await request(http).delete('/api/v1/tables/events').expect(404);
  });

  it('creates, lists and drops indexes, and uses them for equality and in filters', async () => {
    await request(http)
      .post('/api/v1/data/accounts')
      .send(
        Array.from({ length: 50 }, (_, i) => ({
          id: `a${i}`,
          email: `u${i}@x.io`,
          team: `t${i % 5}`,
        })),
      )
      .expect(201);
    const scanned = await request(http)
      .get('/api/v1/data/accounts?team=in.(t1,t3)&sort=email')
      .expect(200);
    expect(scanned.headers['x-query-plan']).toBe('scan');

    const created = await request(http)
      .post('/api/v1/tables/accounts/indexes')
      .send({ field: 'team' })
      .expect(201);
    expect(created.body).toEqual({ field: 'team', unique: false });
    await request(http).post('/api/v1/tables/accounts/indexes').send({ field: 'team' }).expect(409);
    await request(http)
      .get('/api/v1/tables/accounts/indexes')
      .expect(200, [{ field: 'team', unique: false }]);

    const indexed = await request(http)
      .get('/api/v1/data/accounts?team=in.(t1,t3)&sort=email')
      .expect(200);
    expect(indexed.headers['x-query-plan']).toBe('index(team)');
    expect(indexed.body).toEqual(scanned.body);
    expect(indexed.headers['x-total-count']).toBe('20');
    const byId = await request(http).get('/api/v1/data/accounts?id=a7').expect(200);
    expect(byId.headers['x-query-plan']).toBe('pk');

    await request(http).delete('/api/v1/tables/accounts/indexes/team').expect(204);
    await request(http).delete('/api/v1/tables/accounts/indexes/team').expect(404);
    await request(http).post('/api/v1/tables/nothing/indexes').send({ field: 'x' }).expect(404);
    await request(http).post('/api/v1/tables/accounts/indexes').send({ field: 'a..b' }).expect(400);
  });

  it('enforces unique indexes on create, update and bulk, changing nothing on conflict', async () => {
    await request(http)
      .post('/api/v1/data/members')
      .send([{ id: 'm1', email: 'a@x.io' }, { id: 'm2', email: 'b@x.io' }, { id: 'm3' }])
      .expect(201);
    await request(http)
      .post('/api/v1/tables/members/indexes')
      .send({ field: 'email', unique: true })
      .expect(201);

    const dup = await request(http)
      .post('/api/v1/data/members')
      .send({ email: 'a@x.io' })
      .expect(409);
    expect(dup.body.code).toBe('UNIQUE_VIOLATION');
    await request(http).patch('/api/v1/data/members/m2').send({ email: 'a@x.io' }).expect(409);
    await request(http).put('/api/v1/data/members/m2').send({ email: 'a@x.io' }).expect(409);
    await request(http)
      .patch('/api/v1/data/members/m1')
      .send({ email: 'a@x.io', x: 1 })
      .expect(200);
    const bulk = await request(http)
      .post('/api/v1/data/members')
      .send([{ email: 'c@x.io' }, { email: 'c@x.io' }])
      .expect(409);
    expect(bulk.body.errors).toEqual([expect.objectContaining({ index: 1 })]);
    await request(http)
      .post('/api/v1/data/members')
      .send([{ id: 'm4' }, { id: 'm5' }])
      .expect(201);

    const list = await request(http).get('/api/v1/data/members?fields=id,email').expect(200);
    expect(list.body).toEqual([
      { id: 'm1', email: 'a@x.io' },
      { id: 'm2', email: 'b@x.io' },
      { id: 'm3' },
      { id: 'm4' },
      { id: 'm5' },
    ]);
  });

  it('refuses a unique index over existing duplicates and creates nothing', async () => {
    await request(http)
      .post('/api/v1/data/dups')
      .send([{ k: 1 }, { k: 1 }])
      .expect(201);

    const res = await request(http)
      .post('/api/v1/tables/dups/indexes')
      .send({ field: 'k', unique: true })
      .expect(409);

    expect(res.body.code).toBe('UNIQUE_VIOLATION');
    await request(http).get('/api/v1/tables/dups/indexes').expect(200, []);
  });
});

describe('Bulk writes: POST an array', () => {
  let app: INestApplication;
  let http: ReturnType<INestApplication['getHttpServer']>;

  beforeAll(async () => {
    app = await createTestApp({ env: { BULK_MAX: '5' } });
    http = app.getHttpServer();
  });

  afterAll(() => app.close());

  it('creates every record and answers 201 with the array', async () => {
    const res = await request(http)
      .post('/api/v1/data/bulk')
      .send([{ id: 'b1', v: 1 }, { v: 2 }])
      .expect(201);

    expect(res.body).toEqual([
      expect.objectContaining({ id: 'b1', v: 1, created_at: expect.any(String) }),
      expect.objectContaining({ id: expect.any(String), v: 2 }),
    ]);
    await request(http).get('/api/v1/data/bulk').expect('x-total-count', '2');
  });

  it.each([
    [
      'an invalid typed record',
      'users',
      [
        { email: 'a@x.io', full_name: 'A', age: 1 },
        { email: 'nope', full_name: 'B', age: 2 },
      ],
      400,
      1,
    ],
    ['an id already in the table', 'bulk', [{ id: 'fresh' }, { id: 'b1' }], 409, 1],
    ['an id twice in the batch', 'bulk', [{ id: 'twice' }, { id: 'x' }, { id: 'twice' }], 409, 2],
    ['two ids twice', 'bulk', [{ id: 'p' }, { id: 'p' }, { id: 'q' }, { id: 'q' }], 409, 3],
    ['a bad id', 'bulk', [{ id: 'ok' }, { id: 'bad id' }], 400, 1],
  ])(
    'writes nothing when one record has %s, naming its index',
    async (_name, table, body, status, index) => {
      const before = await request(http).get(`/api/v1/data/${table}?count=exact`);

      const res = await request(http).post(`/api/v1/data/${table}`).send(body).expect(status);

      expect(res.body.errors).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            index,
            field: expect.stringMatching(new RegExp(`^\\[${index}\\]`)),
          }),
        ]),
      );
      const after = await request(http).get(`/api/v1/data/${table}?count=exact`);
      expect(after.status).toBe(before.status);
      expect(after.headers['x-total-count']).toBe(before.headers['x-total-count']);
    },
  );

  it('refuses more than BULK_MAX records with 413, and an empty array with 400', async () => {
    const res = await request(http)
      .post('/api/v1/data/bulk')
      .send(Array.from({ length: 6 }, () => ({})))
      .expect(413);

    expect(res.body).toMatchObject({
      code: 'BULK_TOO_LARGE',
      detail: expect.stringContaining('BULK_MAX'),
    });
    await request(http).post('/api/v1/data/bulk').send([]).expect(400);
    await request(http).get('/api/v1/data/bulk').expect('x-total-count', '2');
  });
});

describe('Conditional requests', () => {
  let app: INestApplication;
  let http: ReturnType<INestApplication['getHttpServer']>;
  const url = '/api/v1/data/docs/d1';

  beforeAll(async () => {
    app = await createTestApp();
    http = app.getHttpServer();
  });

  afterAll(() => app.close());

  beforeEach(async () => {
    await request(http).delete(url);
    await request(http).post('/api/v1/data/docs').send({ id: 'd1', v: 1 }).expect(201);
  });

  it('gives every single-record response a strong ETag that changes with every update', async () => {
    const created = await request(http).post('/api/v1/data/docs').send({ id: 'd2' }).expect(201);
    const read = await request(http).get(url).expect(200);
    const patched = await request(http).patch(url).send({ v: 1 }).expect(200);
    const replaced = await request(http).put(url).send({ v: 1 }).expect(200);

    for (const res of [created, read, patched, replaced])
      expect(res.headers.etag).toMatch(/^"[A-Za-z0-9_-]+"$/);
    expect(new Set([read.headers.etag, patched.headers.etag, replaced.headers.etag]).size).toBe(3);
    expect((await request(http).get(url)).headers.etag).toBe(replaced.headers.etag);
  });

  it('answers GET with a matching If-None-Match with 304 and no body', async () => {
    const { etag } = (await request(http).get(url)).headers;

    const res = await request(http).get(url).set('If-None-Match', etag).expect(304);
    expect(res.text).toBe('');
    await request(http).get(url).set('If-None-Match', `"other", W/${etag}`).expect(304);
    await request(http).get(url).set('If-None-Match', '*').expect(304);
    await request(http).get(url).set('If-None-Match', '"other"').expect(200);
  });

  it.each([
    ['put', { v: 2 }],
    ['patch', { v: 2 }],
    ['delete', undefined],
  ] as const)(
    'answers %s with a stale If-Match with 412 and changes nothing',
    async (method, body) => {
      const before = await request(http).get(url);
      await request(http).patch(url).send({ v: 5 }).expect(200);
      const current = await request(http).get(url);

      const call = request(http)[method](url).set('If-Match', before.headers.etag);
      const res = await (body ? call.send(body) : call).expect(412);

      expect(res.body).toMatchObject({ code: 'PRECONDITION_FAILED', status: 412 });
      await request(http).get(url).expect(200, current.body);
      const weak = request(http)[method](url).set('If-Match', `W/${current.headers.etag}`);
      await (body ? weak.send(body) : weak).expect(412);
    },
  );

  it.each([
    ['put', { v: 3 }, 200],
    ['patch', { v: 3 }, 200],
    ['delete', undefined, 204],
  ] as const)(
    'performs %s when If-Match holds the current ETag or *',
    async (method, body, status) => {
      const { etag } = (await request(http).get(url)).headers;

      const call = request(http)[method](url).set('If-Match', `"stale", ${etag}`);
      await (body ? call.send(body) : call).expect(status);
      if (method !== 'delete') {
        const star = request(http)[method](url).set('If-Match', '*');
        await (body ? star.send(body) : star).expect(status);
      }
    },
  );

  it('answers If-Match: * on a missing record with 412', async () => {
    await request(http)
      .put('/api/v1/data/docs/missing')
      .set('If-Match', '*')
      .send({ v: 1 })
      .expect(412);
    await request(http).delete('/api/v1/data/docs/missing').set('If-Match', '*').expect(412);
    await request(http).delete('/api/v1/data/docs/missing').expect(404);
  });

  it('lets exactly one of two racing conditional updates win', async () => {
    const { etag } = (await request(http).get(url)).headers;

    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        request(http).patch(url).set('If-Match', etag).send({ winner: i }),
      ),
    );

    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.filter((r) => r.status === 412)).toHaveLength(9);
  });
});
