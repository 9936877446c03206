import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import type { ThrottlerStorage } from '@nestjs/throttler';
import type { ThrottlerStorageRecord } from '@nestjs/throttler/dist/throttler-storage-record.interface';

interface Counter {
  hits: number;
  windowEndsAt: number;
  blockedUntil: number;
}

const SWEEP_INTERVAL_MS = 10_000;

/**
 * Fixed-window rate-limit counters with a bound on how many clients are tracked: one small
 * record per client (the default storage keeps a timestamp per hit, and a timer or array per
 * client), expired records swept every 10 s, and beyond `maxClients` the least recently
 * started window is dropped. Memory is O(maxClients) however many addresses send requests.
 */
@Injectable()
export class BoundedThrottlerStorage implements ThrottlerStorage, OnModuleDestroy {
  private readonly counters = new Map<string, Counter>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly maxClients: number) {
    this.sweeper = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
    this.sweeper.unref();
  }

  /** Clients currently tracked. */
  get size(): number {
    return this.counters.size;
  }

  increment(
    key: string,
    ttl: number,
    limit: number,
    blockDuration: number,
  ): Promise<ThrottlerStorageRecord> {
    const now = Date.now();
    let counter = this.counters.get(key);
    if (counter === undefined || (counter.windowEndsAt <= now && counter.blockedUntil <= now)) {
      if (counter === undefined) {
        if (this.counters.size >= this.maxClients) this.evictOldest();
      } else {
        this.counters.delete(key);
      }
      counter = { hits: 0, windowEndsAt: now + ttl, blockedUntil: 0 };
      this.counters.set(key, counter);
    }
    if (counter.blockedUntil <= now) {
      counter.hits++;
      if (counter.hits > limit) counter.blockedUntil = now + blockDuration;
    }
    const blocked = counter.blockedUntil > now;
    return Promise.resolve({
      totalHits: counter.hits,
      timeToExpire: seconds(counter.windowEndsAt - now),
      isBlocked: blocked,
      timeToBlockExpire: blocked ? seconds(counter.blockedUntil - now) : 0,
    });
  }

  onModuleDestroy(): void {
    clearInterval(this.sweeper);
  }

  /** Drops expired counters; exposed for tests. */
  sweep(now = Date.now()): void {
    for (const [key, counter] of this.counters) {
      if (counter.windowEndsAt <= now && counter.blockedUntil <= now) this.counters.delete(key);
    }
  }

  /**
   * Drops the least recently started counter that is not blocking its client, so a blocked
   * client cannot free itself by flooding the table from other addresses; when every counter
   * blocks, the oldest goes.
   */
  private evictOldest(now = Date.now()): void {
    for (const [key, counter] of this.counters) {
      if (counter.blockedUntil <= now) {
        this.counters.delete(key);
        return;
      }
    }
    const oldest = this.counters.keys().next();
    if (!oldest.done) this.counters.delete(oldest.value);
  }
}

function seconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}
