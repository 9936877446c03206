import type { INestApplication } from '@nestjs/common';
import { connect, type AddressInfo } from 'node:net';
import request from 'supertest';
import { createTestApp, PROBLEM_JSON } from './helpers/test-app';

/** Every error path answers RFC 9457 problem details, changes nothing, and never a 5xx. */
describe('Errors', () => {
  let app: INestApplication;
  let http: ReturnType<INestApplication['getHttpServer']>;

  beforeAll(async () => {
    app = await createTestApp({ env: { BODY_LIMIT: '1kb' } });
    http = app.getHttpServer();
    await request(http).post('/api/v1/data/base').send({ id: 'a', v: 1 }).expect(201);
  });

  afterAll(() => app.close());

  const expectProblem = (res: request.Response, status: number, code: string) => {
    expect(res.status).toBe(status);
    expect(res.headers['content-type']).toMatch(PROBLEM_JSON);
    expect(res.body).toEqual(
      expect.objectContaining({
        type: `urn:memdb:problem:${code.toLowerCase().replaceAll('_', '-')}`,
        title: expect.any(String),
        status,
        detail: expect.any(String),
        code,
      }),
    );
    expect(JSON.stringify(res.body)).not.toMatch(/\bat .*\.(js|ts):\d+/);
  };

  it.each([
    ['malformed JSON', '{"a":', 'application/json', 'MALFORMED_JSON'],
    ['null', 'null', 'application/json', 'INVALID_BODY'],
    ['a string', '"str"', 'application/json', 'INVALID_BODY'],
    ['a number', '123', 'application/json', 'INVALID_BODY'],
    ['an array of non-objects', '[{"a":1},2]', 'application/json', 'INVALID_BODY'],
    ['an empty array', '[]', 'application/json', 'INVALID_BODY'],
    ['no body at all', '', 'text/plain', 'INVALID_BODY'],
  ])('answers a body that is %s with 400 and writes nothing', async (_name, body, type, code) => {
    const res = await request(http).post('/api/v1/data/base').set('Content-Type', type).send(body);

    expectProblem(res, 400, code);
    await request(http).get('/api/v1/data/base').expect('x-total-count', '1');
  });

  it('answers a body over BODY_LIMIT with 413', async () => {
    const res = await request(http)
      .post('/api/v1/data/base')
      .send({ big: 'x'.repeat(2000) });

    expectProblem(res, 413, 'PAYLOAD_TOO_LARGE');
    expect(res.headers['x-request-id']).toEqual(expect.any(String));
  });

  it('refuses __proto__ members and nesting deeper than 32', async () => {
    const proto = await request(http)
      .post('/api/v1/data/base')
      .set('Content-Type', 'application/json')
      .send('{"x":{"__proto__":{"polluted":true}}}');
    let deep: unknown = 1;
    for (let i = 0; i < 40; i++) deep = { d: deep };
    const nested = await request(http).post('/api/v1/data/other').send({ deep });

    expectProblem(proto, 400, 'INVALID_BODY');
    expectProblem(nested, 400, 'INVALID_BODY');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    await request(http).get('/api/v1/data/other').expect(404);
  });

  it.each(['1table', '_x', 'a.b', 'a'.repeat(65), 'has%20space', '%E2%9C%93'])(
    'rejects the table name %s with 400',
    async (name) => {
      expectProblem(await request(http).get(`/api/v1/data/${name}`), 400, 'VALIDATION_FAILED');
      expectProblem(
        await request(http).post(`/api/v1/data/${name}`).send({}),
        400,
        'VALIDATION_FAILED',
      );
    },
  );

  it('accepts a 64-character table name', async () => {
    await request(http)
      .post(`/api/v1/data/a${'b'.repeat(63)}`)
      .send({})
      .expect(201);
  });

  it.each(['a%20b', 'x'.repeat(129), '%E2%9C%93', 'a%2Fb'])(
    'rejects the id %s with 400',
    async (id) => {
      expectProblem(await request(http).get(`/api/v1/data/base/${id}`), 400, 'VALIDATION_FAILED');
    },
  );

  it('answers an unknown route with a 404 problem', async () => {
    expectProblem(await request(http).get('/nowhere'), 404, 'NOT_FOUND');
    expectProblem(await request(http).post('/api/v1/data'), 404, 'NOT_FOUND');
  });

  it('answers a malformed percent-encoding with 400, not 500', async () => {
    const res = await request(http).get('/api/v1/data/base/%E0%A4%A');

    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(PROBLEM_JSON);
    expect(res.headers['x-request-id']).toBeDefined();
    expect(res.body).toMatchObject({ code: 'BAD_REQUEST', instance: '/api/v1/data/base/%E0%A4%A' });
  });

  it('answers requests Node cannot parse with a problem and a request id', async () => {
    await app.listen(0, '127.0.0.1');
    const { port } = app.getHttpServer().address() as AddressInfo;
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () =>
        socket.write('FOO /api/v1/data/base HTTP/1.1\r\nHost: x\r\n\r\n'),
      );
      let data = '';
      socket.on('data', (chunk) => (data += chunk.toString()));
      socket.on('end', () => resolve(data));
      socket.on('error', reject);
    });

    expect(raw).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(raw).toMatch(/\r\nContent-Type: application\/problem\+json\r\n/);
    expect(raw).toMatch(/\r\nX-Request-Id: [0-9a-f-]{36}\r\n/);
    expect(JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4))).toMatchObject({
      status: 400,
      code: 'MALFORMED_REQUEST',
    });
  });

  it('sends no X-Powered-By and always an X-Request-Id', async () => {
    const res = await request(http).get('/api/v1/data/base/a').expect(200);

    expect(res.headers['x-powered-by']).toBeUndefined();
    expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('echoes a plain client X-Request-Id and replaces an unsafe one', async () => {
    const echoed = await request(http)
      .get('/api/v1/data/base/missing')
      .set('X-Request-Id', 'client-123');
    const replaced = await request(http)
      .get('/api/v1/data/base/a')
      .set('X-Request-Id', 'bad id with spaces');

    expect(echoed.headers['x-request-id']).toBe('client-123');
    expect(replaced.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });
});
