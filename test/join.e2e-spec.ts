import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { createTestApp, nextPageUrl, PROBLEM_JSON } from './helpers/test-app';

describe('GET /api/v1/join/:left/:right/:key', () => {
  let app: INestApplication;
  let http: ReturnType<INestApplication['getHttpServer']>;
  const post = (table: string, body: object) =>
    request(http).post(`/api/v1/data/${table}`).send(body).expect(201);

  beforeAll(async () => {
    app = await createTestApp();
    http = app.getHttpServer();
    await post('people', { id: 'p1', name: 'Ada', team: 't1' });
    await post('people', { id: 'p2', name: 'Bob', team: 't2' });
    await post('people', { id: 'p3', name: 'Cy', team: null });
    await post('teams', { id: 't1', name: 'Engines', team: 't1' });
    await post('teams', { id: 't2', name: 'Looms', team: 't2' });
    await post('purchases', { id: 'o1', user_id: 'p1', name: 'first' });
    await post('purchases', { id: 'o2', user_id: 'p2', name: 'second' });
    await post('purchases', { id: 'o3', user_id: 'p1', name: 'third' });
  });

  afterAll(() => app.close());

  it('finds the order of a user with leftKey=id (the design test, made expressible)', async () => {
    const { body: user } = await post('users', {
      email: 'test@example.com',
      full_name: 'Test User',
      age: 30,
    });
    const { body: order } = await post('orders', {
      user_id: user.id,
      product_name: 'Widget',
      quantity: 1,
      total_price: 9.99,
      order_date: '2026-11-25T12:00:00Z',
    });

    const res = await request(http).get('/api/v1/join/users/orders/user_id?leftKey=id').expect(200);

    expect(res.body).toEqual([{ left: user, right: order }]);
  });

  it('joins on the same field name by default, nothing merged or overwritten', async () => {
    const res = await request(http).get('/api/v1/join/people/teams/team').expect(200);

    expect(res.body).toEqual([
      {
        left: expect.objectContaining({ id: 'p1', name: 'Ada' }),
        right: expect.objectContaining({ id: 't1', name: 'Engines' }),
      },
      {
        left: expect.objectContaining({ id: 'p2', name: 'Bob' }),
        right: expect.objectContaining({ id: 't2', name: 'Looms' }),
      },
    ]);
  });

  it('a left join keeps unmatched left records with right: null', async () => {
    const res = await request(http)
      .get('/api/v1/join/people/purchases/id?rightKey=user_id&type=left')
      .expect(200);

    expect(
      res.body.map((r: { left: { id: string }; right: { id: string } | null }) => [
        r.left.id,
        r.right && r.right.id,
      ]),
    ).toEqual([
      ['p1', 'o1'],
      ['p1', 'o3'],
      ['p2', 'o2'],
      ['p3', null],
    ]);
  });

  it('matches scalars strictly: 3 does not match "3"', async () => {
    await post('numbers', { id: 'n', k: 3 });
    await post('strings', { id: 's', k: '3' });

    await request(http).get('/api/v1/join/numbers/strings/k').expect(200, []);
  });

  it('pages with limit and offset', async () => {
    const res = await request(http)
      .get('/api/v1/join/people/purchases/id?rightKey=user_id&limit=2&offset=1')
      .expect(200);

    expect(res.body.map((r: { right: { id: string } }) => r.right.id)).toEqual(['o3', 'o2']);
  });

  it.each([
    ['an unknown left table', '/api/v1/join/nobody/teams/id', 404, 'TABLE_NOT_FOUND'],
    ['an unknown right table', '/api/v1/join/people/nothing/id', 404, 'TABLE_NOT_FOUND'],
    ['a bad type', '/api/v1/join/people/teams/id?type=outer', 400, 'INVALID_QUERY'],
    ['limit over 10000', '/api/v1/join/people/teams/id?limit=10001', 400, 'INVALID_QUERY'],
    ['a bad table name', '/api/v1/join/1people/teams/id', 400, 'VALIDATION_FAILED'],
    ['a bad key name', '/api/v1/join/people/teams/a%20b', 400, 'VALIDATION_FAILED'],
    ['a bad leftKey', '/api/v1/join/people/teams/id?leftKey=a.b.c!', 400, 'INVALID_QUERY'],
    ['a filter without its side', '/api/v1/join/people/teams/id?age=gt.1', 400, 'INVALID_QUERY'],
  ])('answers %s with a problem', async (_name, url, status, code) => {
    const res = await request(http).get(url).expect(status);

    expect(res.headers['content-type']).toMatch(PROBLEM_JSON);
    expect(res.body).toMatchObject({ status, code });
  });

  describe('types, per-side filters, projection, sort and cursors', () => {
    const pairs = (res: request.Response) =>
      (res.body as { left: { id: string } | null; right?: { id: string } | null }[]).map((row) =>
        'right' in row ? [row.left?.id ?? null, row.right?.id ?? null] : [row.left?.id],
      );
    const join = (query: string) =>
      request(http).get(
        `/api/v1/join/people/purchases/id?rightKey=user_id&fields=left.id,right.id&${query}`,
      );

    beforeAll(async () => {
      await post('purchases', { id: 'o4', user_id: 'nobody', name: 'orphan' });
    });

    it.each([
      [
        'inner',
        [
          ['p1', 'o1'],
          ['p1', 'o3'],
          ['p2', 'o2'],
        ],
      ],
      [
        'left',
        [
          ['p1', 'o1'],
          ['p1', 'o3'],
          ['p2', 'o2'],
          ['p3', null],
        ],
      ],
      [
        'right',
        [
          ['p1', 'o1'],
          ['p2', 'o2'],
          ['p1', 'o3'],
          [null, 'o4'],
        ],
      ],
      [
        'full',
        [
          ['p1', 'o1'],
          ['p1', 'o3'],
          ['p2', 'o2'],
          ['p3', null],
          [null, 'o4'],
        ],
      ],
      ['semi', [['p1'], ['p2']]],
      ['anti', [['p3']]],
    ])('type=%s', async (type, expected) => {
      const res = await join(`type=${type}`).expect(200);

      expect(pairs(res)).toEqual(expected);
      expect(res.headers['x-total-count']).toBe(String(expected.length));
    });

    it('filters each side before joining', async () => {
      expect(pairs(await join('right.name=third').expect(200))).toEqual([['p1', 'o3']]);
      expect(pairs(await join('type=left&right.name=third').expect(200))).toEqual([
        ['p1', 'o3'],
        ['p2', null],
        ['p3', null],
      ]);
      expect(pairs(await join('left.name=in.(Bob,Cy)&type=left').expect(200))).toEqual([
        ['p2', 'o2'],
        ['p3', null],
      ]);
      expect(pairs(await join('left.or=(name.eq.Ada,name.eq.Cy)').expect(200))).toEqual([
        ['p1', 'o1'],
        ['p1', 'o3'],
      ]);
    });

    it('projects each side and keeps right: null', async () => {
      const res = await request(http)
        .get(
          '/api/v1/join/people/purchases/id?rightKey=user_id&type=left&fields=left.name,right.name&left.id=p3',
        )
        .expect(200);

      expect(res.body).toEqual([{ left: { name: 'Cy' }, right: null }]);
    });

    it('sorts on either side, and pages with cursors', async () => {
      expect(pairs(await join('sort=-right.name').expect(200))).toEqual([
        ['p1', 'o3'],
        ['p2', 'o2'],
        ['p1', 'o1'],
      ]);
      const seen: unknown[] = [];
      let url: string | undefined =
        '/api/v1/join/people/purchases/id?rightKey=user_id&type=full&fields=left.id,right.id&limit=2';
      while (url !== undefined) {
        const res: request.Response = await request(http).get(url).expect(200);
        seen.push(...pairs(res));
        url = nextPageUrl(res);
      }
      expect(seen).toEqual([
        ['p1', 'o1'],
        ['p1', 'o3'],
        ['p2', 'o2'],
        ['p3', null],
        [null, 'o4'],
      ]);
    });

    it('probes a right index when one fits, with the same rows', async () => {
      const before = await join('type=left').expect(200);
      await request(http)
        .post('/api/v1/tables/purchases/indexes')
        .send({ field: 'user_id' })
        .expect(201);

      const after = await join('type=left').expect(200);

      expect(after.body).toEqual(before.body);
      expect(before.headers['x-query-plan']).toBe('left=scan; right=scan; join=hash');
      expect(after.headers['x-query-plan']).toBe(
        'left=scan; right=probe; join=index(right.user_id)',
      );
      await request(http).delete('/api/v1/tables/purchases/indexes/user_id').expect(204);
    });

    it.each(['age=gt.1', 'sort=name', 'fields=name', 'fields=left', 'middle.x=1'])(
      'refuses %s: a join names the side',
      async (query) => {
        const res = await request(http)
          .get(`/api/v1/join/people/purchases/id?${query}`)
          .expect(400);

        expect(res.body.code).toBe('INVALID_QUERY');
      },
    );
  });

  it('accepts up to 10000 rows per page', async () => {
    await request(http).get('/api/v1/join/people/teams/team?limit=10000').expect(200);
  });
});
