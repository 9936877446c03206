import { BoundedThrottlerStorage } from './bounded-throttler.storage';

describe('BoundedThrottlerStorage', () => {
  let storage: BoundedThrottlerStorage;

  afterEach(() => storage.onModuleDestroy());

  it('counts hits in a window and blocks past the limit until the block ends', async () => {
    storage = new BoundedThrottlerStorage(100);

    const results = [];
    for (let i = 0; i < 4; i++) results.push(await storage.increment('ip', 60_000, 3, 30_000));

    expect(results.map((r) => r.isBlocked)).toEqual([false, false, false, true]);
    expect(results[3].timeToBlockExpire).toBe(30);
    expect((await storage.increment('ip', 60_000, 3, 30_000)).isBlocked).toBe(true);
    expect((await storage.increment('other', 60_000, 3, 30_000)).isBlocked).toBe(false);
  });

  it('starts a new window when the old one has passed', async () => {
    storage = new BoundedThrottlerStorage(100);
    const now = jest.spyOn(Date, 'now').mockReturnValue(1_000_000);
    await storage.increment('ip', 1000, 1, 1000);
    expect((await storage.increment('ip', 1000, 1, 1000)).isBlocked).toBe(true);

    now.mockReturnValue(1_002_001);

    expect(await storage.increment('ip', 1000, 1, 1000)).toMatchObject({
      isBlocked: false,
      totalHits: 1,
    });
    now.mockRestore();
  });

  it('tracks at most maxClients, however many clients come', async () => {
    storage = new BoundedThrottlerStorage(1000);

    for (let i = 0; i < 100_000; i++) await storage.increment(`client-${i}`, 60_000, 10, 60_000);

    expect(storage.size).toBe(1000);
    expect((await storage.increment('client-99999', 60_000, 10, 60_000)).totalHits).toBe(2);
  });

  it('does not let a blocked client free itself by filling the table from other addresses', async () => {
    storage = new BoundedThrottlerStorage(100);
    for (let i = 0; i < 3; i++) await storage.increment('attacker', 60_000, 2, 60_000);

    for (let i = 0; i < 500; i++) await storage.increment(`other-${i}`, 60_000, 2, 60_000);

    expect((await storage.increment('attacker', 60_000, 2, 60_000)).isBlocked).toBe(true);
    expect(storage.size).toBe(100);
  });

  it('sweeps expired counters', async () => {
    storage = new BoundedThrottlerStorage(1000);
    for (let i = 0; i < 10; i++) await storage.increment(`c${i}`, 1000, 10, 1000);

    storage.sweep(Date.now() + 5000);

    expect(storage.size).toBe(0);
  });
});
