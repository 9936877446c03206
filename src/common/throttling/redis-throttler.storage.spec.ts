import { Logger } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  RedisThrottlerStorage,
  type RedisThrottlerStorageOptions,
} from './redis-throttler.storage';
import { freePort, RedisProcess, SilencingProxy } from './redis-servers.spec-helper';

describe('RedisThrottlerStorage', () => {
  let redis: RedisProcess;
  const storages: RedisThrottlerStorage[] = [];
  let warn: jest.SpyInstance;
  let log: jest.SpyInstance;

  beforeAll(async () => {
    redis = new RedisProcess(await freePort());
    await redis.start();
  });

  afterAll(() => redis.stop());

  beforeEach(() => {
    warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    log = jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
  });

  afterEach(async () => {
    await Promise.all(storages.splice(0).map((storage) => storage.onModuleDestroy()));
    jest.restoreAllMocks();
  });

  let prefixes = 0;
  const storageOn = (
    port: number,
    options: Partial<RedisThrottlerStorageOptions> = {},
  ): RedisThrottlerStorage => {
    const storage = new RedisThrottlerStorage({
      url: `redis://127.0.0.1:${port}`,
      keyPrefix: `spec${prefixes}:`,
      ...options,
    });
    storages.push(storage);
    return storage;
  };

  /** Waits until the storage counts in Redis again (a real count, not a pass). */
  const untilCounting = async (storage: RedisThrottlerStorage, key: string): Promise<void> => {
    for (let i = 0; i < 100; i++) {
      if ((await storage.increment(key, 60_000, 100, 60_000)).totalHits > 0) return;
      await sleep(50);
    }
    throw new Error('the storage never counted again');
  };

  beforeEach(() => prefixes++);

  it('shares one count between storages on one Redis and blocks past the limit until the block ends', async () => {
    const a = storageOn(redis.port);
    const b = storageOn(redis.port);
    await untilCounting(a, 'warm-up');
    await untilCounting(b, 'warm-up');

    const results = [];
    for (const storage of [a, b, a, b]) {
      results.push(await storage.increment('ip', 60_000, 3, 30_000));
    }

    expect(results.map((r) => [r.totalHits, r.isBlocked])).toEqual([
      [1, false],
      [2, false],
      [3, false],
      [4, true],
    ]);
    expect(results[0].timeToExpire).toBe(60);
    expect(results[3].timeToBlockExpire).toBe(30);
    // A blocked client's requests are not counted.
    expect(await a.increment('ip', 60_000, 3, 30_000)).toMatchObject({
      totalHits: 4,
      isBlocked: true,
    });
    expect(await b.increment('other', 60_000, 3, 30_000)).toMatchObject({
      totalHits: 1,
      isBlocked: false,
    });
  });

  it('starts a new window once the window and the block have passed', async () => {
    const storage = storageOn(redis.port);
    await untilCounting(storage, 'warm-up');

    await storage.increment('ip', 200, 1, 400);
    expect((await storage.increment('ip', 200, 1, 400)).isBlocked).toBe(true);
    await sleep(300);
    expect((await storage.increment('ip', 200, 1, 400)).isBlocked).toBe(true);
    await sleep(300);

    expect(await storage.increment('ip', 200, 1, 400)).toMatchObject({
      totalHits: 1,
      isBlocked: false,
    });
  });

  it('lets requests through at once and warns once while Redis is unreachable', async () => {
    const storage = storageOn(await freePort(), { retryAfterMs: 0 });
    // Requests during the first connection attempt pass silently; its refusal is quick.
    await sleep(200);

    for (let i = 0; i < 20; i++) {
      const started = Date.now();
      const result = await storage.increment('ip', 60_000, 1, 60_000);
      expect(Date.now() - started).toBeLessThan(1000);
      expect(result).toEqual({
        totalHits: 0,
        timeToExpire: 60,
        isBlocked: false,
        timeToBlockExpire: 0,
      });
    }

    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0][0]).toMatch(
      /^Redis at redis:\/\/127\.0\.0\.1:\d+ is not answering: .+; requests pass unthrottled until it does/,
    );
  });

  it('never logs the password of REDIS_URL', async () => {
    const port = await freePort();
    const storage = storageOn(port, { url: `redis://memdb:s3cret@127.0.0.1:${port}` });
    await sleep(200);

    await storage.increment('ip', 60_000, 1, 60_000);

    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0][0]).toContain(`redis://memdb:***@127.0.0.1:${port}`);
    expect(warn.mock.calls[0][0]).not.toContain('s3cret');
  });

  it('counts again by itself once a stopped Redis is back', async () => {
    const own = new RedisProcess(await freePort());
    await own.start();
    const storage = storageOn(own.port, { retryAfterMs: 50 });
    await untilCounting(storage, 'warm-up');

    await own.stop();
    expect((await storage.increment('ip', 60_000, 1, 60_000)).totalHits).toBe(0);
    await own.start();
    try {
      await untilCounting(storage, 'ip');
    } finally {
      await own.stop();
    }

    expect(warn).toHaveBeenCalledTimes(1);
    expect(log).toHaveBeenCalledWith(
      'Redis answers again: rate limits are shared across replicas again',
    );
  });

  it('does not wait for a connection that went silent, and replaces it', async () => {
    const proxy = new SilencingProxy({ host: '127.0.0.1', port: redis.port });
    const storage = storageOn(await proxy.listen(), { retryAfterMs: 50, replaceAfterMs: 300 });
    try {
      await untilCounting(storage, 'warm-up');

      proxy.silence('existing');
      const started = Date.now();
      const result = await storage.increment('ip', 60_000, 1, 60_000);

      expect(Date.now() - started).toBeLessThan(1000);
      expect(result.totalHits).toBe(0);
      // The client does not notice a silent connection: only its replacement counts again.
      await untilCounting(storage, 'ip');
      expect(warn).toHaveBeenCalledTimes(1);
      expect(warn.mock.calls[0][0]).toContain('no answer within 40 ms');
    } finally {
      await proxy.close();
    }
  });
});
