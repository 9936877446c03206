import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { createTestApp, PROBLEM_JSON } from './helpers/test-app';

const READ = 'reader-key-0123456789abcdef';
const WRITE = 'writer-key-0123456789abcdef';
const ADMIN = 'admin-key-0123456789abcdef';

describe('Authentication and roles (API_KEYS)', () => {
  let app: INestApplication;
  let http: ReturnType<INestApplication['getHttpServer']>;
  const bearer = (key: string) => ({ Authorization: `Bearer ${key}` });

  beforeAll(async () => {
    app = await createTestApp({ env: { API_KEYS: `${READ}:read,${WRITE}:write,${ADMIN}:admin` } });
    http = app.getHttpServer();
    await request(http)
      .post('/api/v1/data/items')
      .set(bearer(WRITE))
      .send({ id: 'i1' })
      .expect(201);
  });

  afterAll(() => app.close());

  it.each([
    ['no key', {}],
    ['an unknown key', bearer('not-a-key-0123456789abcdef')],
    ['a near miss', bearer(`${READ}x`)],
    ['an empty bearer', { Authorization: 'Bearer ' }],
    ['another scheme', { Authorization: `Basic ${READ}` }],
    ['an unknown X-API-Key', { 'X-API-Key': 'nope' }],
  ])('answers %s with 401 and WWW-Authenticate', async (_name, headers) => {
    const res = await request(http).get('/api/v1/data/items/i1').set(headers).expect(401);

    expect(res.headers['content-type']).toMatch(PROBLEM_JSON);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="memdb"');
    expect(res.body).toMatchObject({ status: 401, code: 'UNAUTHENTICATED' });
  });

  it('accepts a key as Bearer or as X-API-Key', async () => {
    await request(http).get('/api/v1/data/items/i1').set(bearer(READ)).expect(200);
    await request(http).get('/api/v1/data/items/i1').set('X-API-Key', READ).expect(200);
    await request(http)
      .get('/api/v1/data/items/i1')
      .set('Authorization', `bearer   ${READ}`)
      .expect(200);
  });

  it('lets a read key read but not write (403), and changes nothing', async () => {
    await request(http).get('/api/v1/data/items').set(bearer(READ)).expect(200);
    await request(http).get('/api/v1/join/items/items/id').set(bearer(READ)).expect(200);
    await request(http).get('/api/v1/tables').set(bearer(READ)).expect(200);

    const res = await request(http)
      .post('/api/v1/data/items')
      .set(bearer(READ))
      .send({ id: 'i2' })
      .expect(403);
    await request(http).patch('/api/v1/data/items/i1').set(bearer(READ)).send({ x: 1 }).expect(403);
    await request(http).delete('/api/v1/data/items/i1').set(bearer(READ)).expect(403);

    expect(res.body).toMatchObject({
      status: 403,
      code: 'FORBIDDEN',
      detail: expect.stringContaining('write'),
    });
    await request(http).get('/api/v1/data/items').set(bearer(READ)).expect('x-total-count', '1');
  });

  it('needs admin to drop tables and change indexes; write can create tables', async () => {
    await request(http)
      .post('/api/v1/tables')
      .set(bearer(WRITE))
      .send({ name: 'scratch' })
      .expect(201);
    await request(http).delete('/api/v1/tables/scratch').set(bearer(WRITE)).expect(403);
    await request(http)
      .post('/api/v1/tables/items/indexes')
      .set(bearer(WRITE))
      .send({ field: 'x' })
      .expect(403);
    await request(http)
      .post('/api/v1/tables/items/indexes')
      .set(bearer(ADMIN))
      .send({ field: 'x' })
      .expect(201);
    await request(http).delete('/api/v1/tables/items/indexes/x').set(bearer(WRITE)).expect(403);
    await request(http).delete('/api/v1/tables/items/indexes/x').set(bearer(ADMIN)).expect(204);
    await request(http).delete('/api/v1/tables/scratch').set(bearer(ADMIN)).expect(204);
  });

  it('keeps health and docs open', async () => {
    await request(http).get('/health').expect(200);
    await request(http).get('/health/ready').expect(200);
    await request(http).get('/docs-json').expect(200);
    await request(http).get('/redoc').expect(200);
  });

  it('never writes a key to the logs', async () => {
    const { CapturingLogger } = await import('./helpers/test-app');
    const logger = new CapturingLogger();
    const logged = await createTestApp({
      env: { API_KEYS: `${READ}:read`, LOG_FORMAT: 'json' },
      logger,
    });
    try {
      await request(logged.getHttpServer()).get(`/api/v1/data/items?q=${READ}`).set(bearer(READ));
      await request(logged.getHttpServer())
        .get('/api/v1/data/items')
        .set(bearer('wrong-key-0123456789abcdef'));
      await new Promise((resolve) => setImmediate(resolve));
      expect(logger.lines.length).toBeGreaterThan(0);
      expect(JSON.stringify(logger.lines)).not.toContain(READ);
      expect(JSON.stringify(logger.lines)).not.toContain('wrong-key');
    } finally {
      await logged.close();
    }
  });
});

describe('Docs can be turned off (DOCS_ENABLED=false)', () => {
  it('answers 404 on /docs, /docs-json and /redoc', async () => {
    const app = await createTestApp({ env: { DOCS_ENABLED: 'false' } });
    try {
      for (const path of ['/docs', '/docs-json', '/redoc', '/redoc/redoc.standalone.js']) {
        await request(app.getHttpServer()).get(path).expect(404);
      }
      await request(app.getHttpServer()).get('/health').expect(200);
    } finally {
      await app.close();
    }
  });
});

describe('HTTP hardening', () => {
  let app: INestApplication;
  let http: ReturnType<INestApplication['getHttpServer']>;

  beforeAll(async () => {
    app = await createTestApp({ env: { CORS_ORIGINS: 'https://app.example.com' } });
    http = app.getHttpServer();
  });

  afterAll(() => app.close());

  it('sends security headers with a CSP that lets the docs load their own scripts and styles', async () => {
    const res = await request(http).get('/docs/').expect(200);

    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['x-frame-options']).toBe('SAMEORIGIN');
    const csp = res.headers['content-security-policy'] as string;
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self' 'unsafe-inline'");
    expect(csp).toContain("worker-src 'self' blob:");
    expect(csp).not.toMatch(/script-src[^;]*unsafe/);
  });

  it('answers CORS for listed origins only, exposing the paging headers', async () => {
    const allowed = await request(http)
      .options('/api/v1/data/items')
      .set('Origin', 'https://app.example.com')
      .set('Access-Control-Request-Method', 'POST');
    const denied = await request(http).get('/health').set('Origin', 'https://evil.example.com');
    const simple = await request(http).get('/health').set('Origin', 'https://app.example.com');

    expect(allowed.status).toBe(204);
    expect(allowed.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(denied.headers['access-control-allow-origin']).toBeUndefined();
    expect(simple.headers['access-control-expose-headers']).toContain('X-Total-Count');
  });

  it('sends no CORS headers when CORS_ORIGINS is unset', async () => {
    const plain = await createTestApp();
    try {
      const res = await request(plain.getHttpServer())
        .get('/health')
        .set('Origin', 'https://app.example.com');
      expect(res.headers['access-control-allow-origin']).toBeUndefined();
    } finally {
      await plain.close();
    }
  });

  it('checks every JSON body for depth and __proto__, table and index bodies too', async () => {
    const deep = `{"name":"tb","x":${'['.repeat(2000)}${']'.repeat(2000)}}`;
    for (const url of ['/api/v1/tables', '/api/v1/tables/items/indexes', '/api/v1/data/items']) {
      const res = await request(http).post(url).set('Content-Type', 'application/json').send(deep);
      expect({ url, status: res.status, code: res.body.code }).toEqual({
        url,
        status: 400,
        code: 'INVALID_BODY',
      });
    }
    await request(http)
      .post('/api/v1/tables')
      .set('Content-Type', 'application/json')
      .send('{"name":"tb","__proto__":{"x":1}}')
      .expect(400);
  });

  it('answers an empty chunked JSON body with 400, not 403', async () => {
    const res = await request(http)
      .post('/api/v1/data/items')
      .set('Content-Type', 'application/json')
      .set('Transfer-Encoding', 'chunked')
      .send('');

    expect(res.status).toBe(400);
    expect(res.body.code).toBe('INVALID_BODY');
  });

  it('serves the ReDoc bundle as JavaScript bytes, and no CSP upgrade of plain HTTP', async () => {
    const res = await request(http)
      .get('/redoc/redoc.standalone.js')
      .buffer(true)
      .parse((r, done) => {
        const chunks: Buffer[] = [];
        r.on('data', (chunk: Buffer) => chunks.push(chunk));
        r.on('end', () => done(null, Buffer.concat(chunks)));
      });

    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/javascript/);
    expect((res.body as Buffer).subarray(0, 20).toString()).not.toMatch(/^\{"type":"Buffer"/);
    expect(res.headers['content-security-policy']).not.toContain('upgrade-insecure-requests');
  });

  it('answers over-long URLs with 414 and non-JSON bodies with 415', async () => {
    const long = await request(http)
      .get(`/api/v1/data/items?x=${'a'.repeat(9000)}`)
      .expect(414);
    expect(long.headers['content-type']).toMatch(PROBLEM_JSON);
    expect(long.body).toMatchObject({ code: 'URI_TOO_LONG' });

    const form = await request(http)
      .post('/api/v1/data/items')
      .type('form')
      .send('a=1')
      .expect(415);
    expect(form.body).toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE' });
    await request(http)
      .post('/api/v1/data/items')
      .set('Content-Type', 'text/plain')
      .send('{"a":1}')
      .expect(415);
    await request(http).get('/api/v1/data/items').expect(404);
  });
});

describe('Rate limiting behind proxies (TRUST_PROXY)', () => {
  it('cannot be dodged with a forged X-Forwarded-For when no proxy is trusted', async () => {
    const app = await createTestApp({ env: { THROTTLE_LIMIT: '2', THROTTLE_TTL_MS: '60000' } });
    try {
      const http = app.getHttpServer();
      const statuses = [];
      for (let i = 0; i < 4; i++) {
        statuses.push(
          (await request(http).get('/api/v1/data/x').set('X-Forwarded-For', `10.0.0.${i}`)).status,
        );
      }
      expect(statuses).toEqual([404, 404, 429, 429]);
    } finally {
      await app.close();
    }
  });

  it('counts the client named by a trusted proxy', async () => {
    const app = await createTestApp({
      env: { THROTTLE_LIMIT: '2', THROTTLE_TTL_MS: '60000', TRUST_PROXY: 'loopback' },
    });
    try {
      const http = app.getHttpServer();
      const statuses = [];
      for (let i = 0; i < 3; i++)
        statuses.push(
          (await request(http).get('/api/v1/data/x').set('X-Forwarded-For', '203.0.113.7')).status,
        );
      statuses.push(
        (await request(http).get('/api/v1/data/x').set('X-Forwarded-For', '203.0.113.8')).status,
      );

      expect(statuses).toEqual([404, 404, 429, 404]);
    } finally {
      await app.close();
    }
  });
});

describe('Resource limits', () => {
  it('refuses writes with 507 over MAX_MEMORY_MB, while reads, deletes and liveness go on', async () => {
    const seeded = await createTestApp();
    await seeded.close();
    const app = await createTestApp({ env: { MAX_MEMORY_MB: '16' } });
    try {
      const http = app.getHttpServer();
      const res = await request(http).post('/api/v1/data/full').send({ a: 1 }).expect(507);
      expect(res.body).toMatchObject({
        status: 507,
        code: 'STORAGE_FULL',
        detail: expect.stringContaining('MAX_MEMORY_MB'),
      });
      await request(http).post('/api/v1/tables').send({ name: 'other' }).expect(507);

      await request(http).get('/api/v1/data/full').expect(404);
      await request(http).get('/api/v1/tables').expect(200);
      await request(http).get('/health').expect(200);
      const ready = await request(http).get('/health/ready').expect(503);
      expect(ready.body.error.storage).toMatchObject({
        status: 'down',
        reason: expect.stringContaining('memory budget'),
      });
    } finally {
      await app.close();
    }
  });

  it('refuses a page that would hold more than MAX_RESULT_ROWS with 422 naming the cap', async () => {
    const app = await createTestApp({ env: { MAX_RESULT_ROWS: '1000' } });
    try {
      const http = app.getHttpServer();
      await request(http)
        .post('/api/v1/data/rows')
        .send([{ a: 1 }, { a: 2 }])
        .expect(201);

      const res = await request(http)
        .get('/api/v1/data/rows?sort=a&offset=999&limit=10')
        .expect(422);
      expect(res.body).toMatchObject({
        code: 'RESULT_TOO_LARGE',
        detail: expect.stringContaining('MAX_RESULT_ROWS'),
      });
      await request(http).get('/api/v1/data/rows?sort=a&offset=900&limit=10').expect(200);
      await request(http).get('/api/v1/join/rows/rows/a?limit=5000').expect(422);
    } finally {
      await app.close();
    }
  });
});
