import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { StorageService } from '../src/database/storage.service';
import { createTestApp, expectTooManyRequests } from './helpers/test-app';

describe('Throttling', () => {
  let app: INestApplication;
  let http: ReturnType<INestApplication['getHttpServer']>;

  // One app per test: each starts with a fresh budget of 3 requests for its client, whatever
  // ran before it (tests pass alone, with -t, and in any order).
  beforeEach(async () => {
    app = await createTestApp({ env: { THROTTLE_LIMIT: '3', THROTTLE_TTL_MS: '60000' } });
    http = app.getHttpServer();
  });

  afterEach(() => app.close());

  /** Spends this client's whole budget on plain reads. */
  const useUpBudget = async () => {
    for (let i = 0; i < 3; i++) await request(http).get('/api/v1/data/t').expect(404);
  };

  it('answers 429 with Retry-After after THROTTLE_LIMIT requests, and the rejected write changes nothing', async () => {
    await useUpBudget();

    const res = await request(http).post('/api/v1/data/t').send({ id: 'x' });

    expectTooManyRequests(res, '/api/v1/data/t', 60);
    await request(http).get('/api/v1/data/t').expect(429);
    expect(app.get(StorageService).listTables()).toEqual([]);
  });

  it('throttles before reading the body: a malformed or oversized body over the limit is a 429', async () => {
    await useUpBudget();

    await request(http)
      .post('/api/v1/data/t')
      .set('Content-Type', 'application/json')
      .send('{bad')
      .expect(429);
    await request(http)
      .post('/api/v1/data/t')
      .send({ big: 'x'.repeat(2_000_000) })
      .expect(429);
  });

  it('never throttles health or docs', async () => {
    await useUpBudget();
    await request(http).get('/api/v1/data/t').expect(429);

    for (let i = 0; i < 10; i++) {
      await request(http).get('/health').expect(200);
      await request(http).get('/health/ready').expect(200);
    }
    await request(http).get('/docs-json').expect(200);
    await request(http).get('/redoc').expect(200);
  });
});

describe('Throttling off (THROTTLE_LIMIT=0)', () => {
  it('never answers 429', async () => {
    const app = await createTestApp({ env: { THROTTLE_LIMIT: '0' } });
    try {
      for (let i = 0; i < 20; i++)
        await request(app.getHttpServer()).get('/api/v1/data/t').expect(404);
    } finally {
      await app.close();
    }
  });
});
