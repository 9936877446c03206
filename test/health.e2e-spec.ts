import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { APP_INFO } from '../src/config/app-info';
import { createTestApp } from './helpers/test-app';

describe('Health', () => {
  let app: INestApplication;

  afterEach(() => app.close());

  it('GET /health reports liveness with the app version', async () => {
    app = await createTestApp();

    const res = await request(app.getHttpServer()).get('/health').expect(200);

    const appInfo = { status: 'up', name: 'memdb', version: APP_INFO.version };
    expect(res.body).toEqual({
      status: 'ok',
      info: { app: appInfo },
      error: {},
      details: { app: appInfo },
      version: APP_INFO.version,
    });
  });

  it('GET /health/ready reports storage and heap', async () => {
    app = await createTestApp();
    await request(app.getHttpServer()).post('/api/v1/data/t').send({}).expect(201);

    const res = await request(app.getHttpServer()).get('/health/ready').expect(200);

    expect(res.body).toEqual({
      status: 'ok',
      info: {
        app: { status: 'up', name: 'memdb', version: APP_INFO.version },
        storage: { status: 'up', tables: 1, records: 1 },
        memory_heap: { status: 'up' },
      },
      error: {},
      details: expect.any(Object),
      version: APP_INFO.version,
    });
  });

  it('readiness fails with 503 when the heap is over MAX_MEMORY_MB, while liveness stays 200', async () => {
    app = await createTestApp({ env: { MAX_MEMORY_MB: '16' } });

    const ready = await request(app.getHttpServer()).get('/health/ready').expect(503);

    expect(ready.body).toMatchObject({ status: 'error', version: APP_INFO.version });
    expect(ready.body.error.memory_heap).toMatchObject({ status: 'down' });
    await request(app.getHttpServer()).get('/health').expect(200);
  });
});
