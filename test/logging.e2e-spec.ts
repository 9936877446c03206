import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { CapturingLogger, createTestApp } from './helpers/test-app';

describe('Request logging', () => {
  let app: INestApplication;
  const logger = new CapturingLogger();
  const httpLines = () => logger.lines.filter((l) => l.context === 'HTTP');

  beforeAll(async () => {
    app = await createTestApp({
      env: { LOG_FORMAT: 'json', THROTTLE_LIMIT: '1', THROTTLE_TTL_MS: '60000' },
      logger,
    });
  });

  afterAll(() => app.close());

  beforeEach(() => logger.lines.splice(0));

  it('logs one line per request with method, path, status, duration, request id and handler', async () => {
    await request(app.getHttpServer())
      .post('/api/v1/data/t?x=1')
      .set('X-Request-Id', 'req-1')
      .send({ id: 'a' })
      .expect(201);

    await new Promise((resolve) => setImmediate(resolve));
    expect(httpLines()).toEqual([
      {
        level: 'log',
        context: 'HTTP',
        message: {
          method: 'POST',
          path: '/api/v1/data/t',
          status: 201,
          durationMs: expect.any(Number),
          requestId: 'req-1',
          handler: 'RecordsController#create',
        },
      },
    ]);
  });

  it('logs errors that never reach a handler: unknown routes and throttled requests', async () => {
    const http = app.getHttpServer();
    await request(http).get('/missing').expect(404);
    await request(http)
      .post('/api/v1/data/t')
      .set('Content-Type', 'application/json')
      .send('{')
      .expect(429);
    await request(http).get('/api/v1/data/t').expect(429);

    await new Promise((resolve) => setImmediate(resolve));
    expect(httpLines().map((l) => (l.message as { status: number }).status)).toEqual([
      404, 429, 429,
    ]);
  });

  it('logs health probes at verbose level only', async () => {
    await request(app.getHttpServer()).get('/health').expect(200);

    await new Promise((resolve) => setImmediate(resolve));
    expect(httpLines().map((l) => l.level)).toEqual(['verbose']);
  });
});
