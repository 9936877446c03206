import type { INestApplication } from '@nestjs/common';
import { createClient } from '@redis/client';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import request from 'supertest';
import { Blackhole, freePort } from '../src/common/throttling/redis-servers.spec-helper';
import { APP_INFO } from '../src/config/app-info';
import {
  CapturingLogger,
  createTestApp,
  expectTooManyRequests,
  TEST_HTTP_ADAPTER,
} from './helpers/test-app';

/** The Redis this machine runs (issue 12); .ci/run starts it when it is down. */
const REDIS_URL = 'redis://127.0.0.1:6379';

// The client is the TCP peer unless TRUST_PROXY names a proxy: with TRUST_PROXY=loopback each
// test (and the warm-up) is a client of its own, with a budget of its own.
const CLIENT = 'X-Forwarded-For';

/** Generous: a request that waited on Redis would take seconds; CI shares two cores. */
const PROMPT_MS = 1000;

describe('Throttling shared through Redis (REDIS_URL)', () => {
  // Keys of this file's run only: the other adapter's run and other files may use the same Redis.
  const prefix = `memdb-test:${TEST_HTTP_ADAPTER}:${randomUUID()}:`;
  const redis = createClient({ url: REDIS_URL });
  let apps: INestApplication[] = [];

  beforeAll(() => redis.connect());

  afterAll(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(keys);
    redis.destroy();
  });

  afterEach(async () => {
    await Promise.all(apps.map((app) => app.close()));
    apps = [];
  });

  const replicas = async (count: number, env: Record<string, string> = {}) => {
    for (let i = 0; i < count; i++) {
      apps.push(
        await createTestApp({
          env: {
            THROTTLE_LIMIT: '10',
            THROTTLE_TTL_MS: '60000',
            REDIS_URL,
            REDIS_KEY_PREFIX: prefix,
            ...env,
          },
        }),
      );
    }
    // Each app connects in the background; the first requests would pass uncounted.
    for (const app of apps) {
      await expect(untilCounted(app)).resolves.toBe(true);
    }
    return apps.map((app) => app.getHttpServer());
  };

  /** Waits until a request through this app is counted in Redis (health routes are not). */
  const untilCounted = async (app: INestApplication): Promise<boolean> => {
    for (let i = 0; i < 100; i++) {
      const res = await request(app.getHttpServer()).get('/api/v1/tables').set(CLIENT, 'warm-up');
      if (res.headers['x-ratelimit-remaining'] !== '10') return true;
      await sleep(20);
    }
    return false;
  };

  it('holds THROTTLE_LIMIT across three replicas: ten pass, the eleventh is 429 on every one', async () => {
    const servers = await replicas(3, { TRUST_PROXY: 'loopback' });
    const client = '203.0.113.7';

    const remaining = [];
    for (let i = 0; i < 10; i++) {
      const res = await request(servers[i % 3])
        .get('/api/v1/tables')
        .set(CLIENT, client)
        .expect(200);
      expect(res.headers['x-ratelimit-limit']).toBe('10');
      remaining.push(Number(res.headers['x-ratelimit-remaining']));
    }
    expect(remaining).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);

    for (const server of servers) {
      const res = await request(server).get('/api/v1/tables').set(CLIENT, client);
      expectTooManyRequests(res, '/api/v1/tables', 60);
    }
    // Another client still has its whole budget.
    await request(servers[0]).get('/api/v1/tables').set(CLIENT, '203.0.113.8').expect(200);
  });

  it('keeps its counters under REDIS_KEY_PREFIX, expiring with the window', async () => {
    const [server] = await replicas(1, { TRUST_PROXY: 'loopback' });

    await request(server).get('/api/v1/tables').set(CLIENT, '203.0.113.9').expect(200);

    const key = `${prefix}throttle:default:203.0.113.9`;
    expect(await redis.hGetAll(key)).toMatchObject({ hits: '1' });
    const ttl = await redis.pTTL(key);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });
});

describe('Throttling when Redis does not answer', () => {
  let app: INestApplication | undefined;
  let blackhole: Blackhole | undefined;

  afterEach(async () => {
    await app?.close();
    app = undefined;
    await blackhole?.close();
    blackhole = undefined;
  });

  /** A port that accepts connections and never answers on them. */
  const blackholePort = (): Promise<number> => {
    blackhole = new Blackhole();
    return blackhole.listen();
  };

  it.each([
    ['refuses connections', freePort],
    ['accepts connections and never answers', blackholePort],
  ])(
    'answers every request promptly, unthrottled, stays ready and warns once, when Redis %s',
    async (_case, port) => {
      const logger = new CapturingLogger();
      app = await createTestApp({
        env: { THROTTLE_LIMIT: '10', REDIS_URL: `redis://127.0.0.1:${await port()}` },
        logger,
      });
      const http = app.getHttpServer();

      // Past the first connection attempt (1 s), so the warning is due.
      const statuses = [];
      for (let i = 0; i < 30; i++) {
        const started = Date.now();
        const res = await request(http).get('/api/v1/tables');
        expect(Date.now() - started).toBeLessThan(PROMPT_MS);
        statuses.push(res.status);
        await sleep(50);
      }

      expect(statuses).toEqual(Array(30).fill(200));
      const ready = await request(http).get('/health/ready').expect(200);
      expect(ready.body).toMatchObject({
        status: 'ok',
        info: { storage: { status: 'up' }, memory_heap: { status: 'up' } },
        error: {},
        version: APP_INFO.version,
      });
      const warnings = logger.lines.filter(
        (line) => line.level === 'warn' && line.context === 'RedisThrottlerStorage',
      );
      expect(warnings).toEqual([
        {
          level: 'warn',
          context: 'RedisThrottlerStorage',
          message: expect.stringMatching(
            /^Redis at redis:\/\/127\.0\.0\.1:\d+ is not answering: .+; requests pass unthrottled until it does/,
          ),
        },
      ]);
    },
  );
});
