import { Logger, type OnModuleDestroy } from '@nestjs/common';
import type { ThrottlerStorage } from '@nestjs/throttler';
import type { ThrottlerStorageRecord } from '@nestjs/throttler/dist/throttler-storage-record.interface';
import { createClient, defineScript, type CommandParser } from '@redis/client';

/**
 * The same fixed window as BoundedThrottlerStorage, in one round trip: a hash per client
 * (`hits`, `ends`, `until`, milliseconds on Redis's clock, so replicas whose clocks differ
 * share one window), expiring when both its window and its block have passed. A blocked
 * client's requests are not counted, so its block ends when it says it does.
 * Replies: hits, ms left in the window, ms left in the block (≤ 0: not blocked).
 */
const THROTTLE_SCRIPT = defineScript({
  NUMBER_OF_KEYS: 1,
  SCRIPT: `
local ttl = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local block = tonumber(ARGV[3])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local saved = redis.call('HMGET', KEYS[1], 'hits', 'ends', 'until')
local hits = tonumber(saved[1])
local ends = tonumber(saved[2])
local blockedUntil = tonumber(saved[3]) or 0
if hits == nil or ends == nil or (ends <= now and blockedUntil <= now) then
  hits = 0
  ends = now + ttl
  blockedUntil = 0
end
if blockedUntil <= now then
  hits = hits + 1
  if hits > limit then blockedUntil = now + block end
end
redis.call('HSET', KEYS[1], 'hits', hits, 'ends', ends, 'until', blockedUntil)
redis.call('PEXPIREAT', KEYS[1], math.max(ends, blockedUntil))
return { hits, ends - now, blockedUntil - now }
`,
  parseCommand(parser: CommandParser, key: string, ttl: number, limit: number, block: number) {
    parser.pushKey(key);
    parser.push(String(ttl), String(limit), String(block));
  },
  transformReply: undefined as unknown as () => [number, number, number],
});

/** Options of RedisThrottlerStorage. */
export interface RedisThrottlerStorageOptions {
  /** `redis://` or `rediss://` URL, with credentials and database number if needed. */
  readonly url: string;
  /** Put before every key, so several services can share one Redis. */
  readonly keyPrefix: string;
  /**
   * Longest a request waits for Redis before it is let through unthrottled: 40 ms, so that with
   * timer and event-loop slack it stays within 50 ms of a normal request. @default 40
   */
  readonly timeoutMs?: number;
  /** After a failure, requests skip Redis (and pass) this long before it is tried. @default 1000 */
  readonly retryAfterMs?: number;
  /** Least time between two warnings about Redis failing. @default 60000 */
  readonly warnEveryMs?: number;
  /**
   * After failing this long without one answer, the connection is replaced: a stalled server
   * or a silently dropped connection (a firewall, a partition) never closes the socket, so the
   * client would not reconnect by itself. @default 5000
   */
  readonly replaceAfterMs?: number;
}

const CONNECT_TIMEOUT_MS = 1000;
const RECONNECT_MAX_DELAY_MS = 1000;

function createThrottleClient(url: string, timeoutMs: number) {
  return createClient({
    url,
    // RESP2: any Redis from 5 on (a script that writes after TIME needs 5); nothing here needs 3.
    RESP: 2,
    // A command while disconnected fails at once instead of waiting for a reconnection.
    disableOfflineQueue: true,
    // Bounds what piles up on a connection that stopped answering, until it is replaced.
    commandsQueueMaxLength: 1000,
    commandOptions: { timeout: timeoutMs },
    scripts: { throttle: THROTTLE_SCRIPT },
    socket: {
      connectTimeout: CONNECT_TIMEOUT_MS,
      reconnectStrategy: (retries: number) =>
        Math.min(50 * 2 ** Math.min(retries, 10), RECONNECT_MAX_DELAY_MS),
    },
  });
}

type ThrottleClient = ReturnType<typeof createThrottleClient>;

/**
 * Rate-limit counters in Redis, shared by every replica that uses the same Redis and prefix.
 *
 * It never holds a request up for Redis: no offline queue (a command while disconnected fails
 * at once), a deadline of `timeoutMs` on each command, and after a failure Redis is left alone
 * for `retryAfterMs`. In all those cases the request passes (fails open) and one warning is
 * logged at most every `warnEveryMs`. The client reconnects by itself; a connection that stays
 * silent is replaced. Readiness does not depend on it.
 */
export class RedisThrottlerStorage implements ThrottlerStorage, OnModuleDestroy {
  private readonly logger = new Logger(RedisThrottlerStorage.name);
  private readonly timeoutMs: number;
  private readonly retryAfterMs: number;
  private readonly warnEveryMs: number;
  private readonly replaceAfterMs: number;
  private client: ThrottleClient;
  /** Until when requests skip Redis, after a failure. */
  private skipUntil = 0;
  /** When the current outage began (first failure since the last answer); 0 when none. */
  private failingSince = 0;
  private lastWarnedAt = -Infinity;
  private lastError = '';
  /** Until when the current client may still be making its first connection. */
  private connectingUntil = 0;
  private closed = false;

  constructor(private readonly options: RedisThrottlerStorageOptions) {
    this.timeoutMs = options.timeoutMs ?? 40;
    this.retryAfterMs = options.retryAfterMs ?? 1000;
    this.warnEveryMs = options.warnEveryMs ?? 60_000;
    this.replaceAfterMs = options.replaceAfterMs ?? 5000;
    this.client = this.connect();
  }

  async increment(
    key: string,
    ttl: number,
    limit: number,
    blockDuration: number,
  ): Promise<ThrottlerStorageRecord> {
    const now = Date.now();
    if (this.closed || now < this.skipUntil) return unthrottled(ttl);
    try {
      const [hits, windowMs, blockMs] = await this.withDeadline(
        this.client.throttle(this.options.keyPrefix + key, ttl, limit, blockDuration),
      );
      this.recovered();
      const blocked = blockMs > 0;
      return {
        totalHits: hits,
        timeToExpire: seconds(windowMs),
        isBlocked: blocked,
        timeToBlockExpire: blocked ? seconds(blockMs) : 0,
      };
    } catch (err) {
      this.failed(err, now);
      return unthrottled(ttl);
    }
  }

  async onModuleDestroy(): Promise<void> {
    this.closed = true;
    await closeClient(this.client, this.timeoutMs * 10);
  }

  private connect(): ThrottleClient {
    const client = createThrottleClient(this.options.url, this.timeoutMs);
    this.connectingUntil = Date.now() + CONNECT_TIMEOUT_MS;
    const connected = () => {
      if (this.client === client) this.connectingUntil = 0;
    };
    client.on('ready', connected);
    // Every failed (re)connection is an 'error' event: without a listener Node would throw it.
    // The rate-limited warning sums them up instead.
    client.on('error', (err: unknown) => {
      this.lastError = describe(err);
      connected();
    });
    client.connect().catch((err: unknown) => {
      this.lastError = describe(err);
    });
    return client;
  }

  private withDeadline<T>(command: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no answer within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
    });
    // The command may still settle after the deadline: its outcome is of no use then.
    command.catch(() => undefined);
    return Promise.race([command, deadline]).finally(() => clearTimeout(timer));
  }

  private recovered(): void {
    if (this.failingSince === 0) return;
    this.failingSince = 0;
    this.lastError = '';
    this.logger.log('Redis answers again: rate limits are shared across replicas again');
  }

  private failed(err: unknown, now: number): void {
    // Requests that come while the first connection is being made pass without a warning:
    // Redis is not known to be unreachable yet.
    if (now < this.connectingUntil) return;
    const reason = describe(err) + (this.lastError && ` (${this.lastError})`);
    this.skipUntil = now + this.retryAfterMs;
    if (this.failingSince === 0) this.failingSince = now;
    if (now - this.lastWarnedAt >= this.warnEveryMs) {
      this.lastWarnedAt = now;
      this.logger.warn(
        `Redis at ${redactedUrl(this.options.url)} is not answering: ${reason}; requests pass ` +
          `unthrottled until it does (this warning repeats at most every ` +
          `${Math.round(this.warnEveryMs / 1000)} s)`,
      );
    }
    if (now - this.failingSince >= this.replaceAfterMs) {
      this.failingSince = now;
      const stale = this.client;
      this.client = this.connect();
      void closeClient(stale, 0);
    }
  }
}

/** What a request gets while Redis cannot say: passes, and the headers show a fresh window. */
function unthrottled(ttl: number): ThrottlerStorageRecord {
  return { totalHits: 0, timeToExpire: seconds(ttl), isBlocked: false, timeToBlockExpire: 0 };
}

/** Quits politely when connected (within `graceMs`), otherwise drops the connection. */
async function closeClient(client: ThrottleClient, graceMs: number): Promise<void> {
  if (graceMs > 0 && client.isReady) {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
    await Promise.race([client.close().catch(() => undefined), timedOut]);
    clearTimeout(timer);
  }
  if (client.isOpen) client.destroy();
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message || err.name : String(err);
}

/** The URL without its password, for logs. */
export function redactedUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<invalid URL>';
  }
}

function seconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}
