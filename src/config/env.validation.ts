import { plainToInstance, Transform } from 'class-transformer';
import {
  ArrayNotEmpty,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Matches,
  Max,
  Min,
  MinLength,
  Validate,
  validateSync,
} from 'class-validator';
import { API_KEYS_RULE, parseApiKeys, type ApiKey } from './api-keys';
import { TrustProxyRule } from './trust-proxy.rule';
import { parseByteSize } from './byte-size';
import { FSYNC_MODES, type FsyncMode } from '../database/persistence/file-journal';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'] as const;
export type LogLevelName = (typeof LOG_LEVELS)[number];
/** Level names other loggers use, read as Nest's. */
const LOG_LEVEL_ALIASES: Readonly<Record<string, LogLevelName>> = {
  info: 'log',
  warning: 'warn',
  trace: 'verbose',
};
export const LOG_FORMATS = ['json', 'text'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
export const HTTP_ADAPTERS = ['express', 'fastify'] as const;
export type HttpAdapterName = (typeof HTTP_ADAPTERS)[number];

/** A whole number in digits, optionally signed with `-`; spaces around it are ignored. */
const INTEGER = /^-?\d+$/;

/**
 * An integer setting: reads the variable's text as a number and checks it is one, in a single
 * decorator, so a new numeric setting needs nothing else. Only plain digits are read
 * (`8000`, ` 8000 `, `-1`); `8e3`, `1.5`, `0x10` or `12abc` stay text and are refused, where
 * `@Type(() => Number)` would read `8e3` as 8000 and `0x10` as 16.
 */
function IsIntegerSetting(): PropertyDecorator {
  const read = Transform(({ value }: { value: unknown }) =>
    typeof value === 'string' && INTEGER.test(value.trim()) ? Number(value) : value,
  );
  const check = IsInt({ message: '$property must be a whole number, in digits' });
  return (target, key) => {
    read(target, key);
    check(target, key);
  };
}

/**
 * Every setting memdb reads from the environment, with its default.
 * This class is the only description of the configuration: the README's table mirrors it.
 */
export class Env {
  /** TCP port to listen on. @default 8000 */
  @IsIntegerSetting()
  @Min(1)
  @Max(65535)
  PORT = 8000;

  /** Interface to bind; unset binds every interface (IPv4 and IPv6). */
  @IsOptional()
  @IsString()
  @MinLength(1)
  HOST?: string;

  /** Largest accepted request body, in bytes (`1mb`, `512kb` and plain byte counts are accepted). @default 1mb */
  @Transform(({ value }) => (typeof value === 'string' ? parseByteSize(value) : value))
  @IsInt({ message: 'BODY_LIMIT must be a size such as 1mb, 512kb or 1048576' })
  @Min(1)
  BODY_LIMIT = 1024 * 1024;

  /** Requests a client IP may make per THROTTLE_TTL_MS; 0 turns throttling off. @default 1000 */
  @IsIntegerSetting()
  @Min(0)
  THROTTLE_LIMIT = 1000;

  /** Length of the throttling window in milliseconds. @default 1000 */
  @IsIntegerSetting()
  @Min(1)
  THROTTLE_TTL_MS = 1000;

  /** Least severe level that is logged (`info`, `warning` and `trace` are read as log, warn, verbose). @default log */
  @Transform(({ value }) =>
    typeof value === 'string'
      ? (LOG_LEVEL_ALIASES[value.toLowerCase()] ?? value.toLowerCase())
      : value,
  )
  @IsIn(LOG_LEVELS)
  LOG_LEVEL: LogLevelName = 'log';

  /** `json` (one JSON object per line) or `text`. @default text */
  @IsIn(LOG_FORMATS)
  LOG_FORMAT: LogFormat = 'text';

  /** Most records in one bulk write (a JSON array POSTed to a table). @default 1000 */
  @IsIntegerSetting()
  @Min(1)
  @Max(100_000)
  BULK_MAX = 1000;

  /**
   * How long a write waits for its table's lock, or while a compaction or restore holds writes,
   * before it fails with 503. @default 5000
   */
  @IsIntegerSetting()
  @Min(1)
  LOCK_TIMEOUT_MS = 5000;

  /**
   * Heap budget in MiB: above it writes are refused (507) and readiness fails, while reads,
   * deletes and liveness keep working. Unset: 75% of V8's heap limit.
   */
  @IsOptional()
  @IsIntegerSetting()
  @Min(16)
  MAX_MEMORY_MB?: number;

  /** Deepest nesting of a JSON body. @default 32 */
  @IsIntegerSetting()
  @Min(1)
  @Max(256)
  MAX_DEPTH = 32;

  /** Most rows a query may hold at once (offset + limit of a sorted page, a page of a join). @default 100000 */
  @IsIntegerSetting()
  @Min(1000)
  MAX_RESULT_ROWS = 100_000;

  /**
   * API keys as `key:role` pairs, comma-separated; roles `read`, `write`, `admin`. Unset: the
   * API is open (a warning is logged at start). Keys are 1 to 256 visible characters, no comma
   * or space (API_KEYS_RULE); keys under 16 characters are accepted with a warning at start.
   */
  @IsOptional()
  @Transform(({ value }) => (typeof value === 'string' ? parseApiKeys(value) : value))
  @IsArray({ message: API_KEYS_RULE })
  @ArrayNotEmpty({ message: API_KEYS_RULE })
  API_KEYS?: ApiKey[];

  /** Serve /docs, /docs-json and /redoc. @default true */
  @Transform(({ value }) => (value === 'true' ? true : value === 'false' ? false : value))
  @IsBoolean({ message: 'DOCS_ENABLED must be true or false' })
  DOCS_ENABLED = true;

  /** Origins allowed by CORS, comma-separated (`https://app.example.com`); unset: no CORS. */
  @IsOptional()
  @Transform(({ value }) =>
    typeof value === 'string' ? value.split(',').map((origin) => origin.trim()) : value,
  )
  @IsArray()
  @Matches(/^(\*|https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?)$/, {
    each: true,
    message: 'CORS_ORIGINS must list origins such as https://app.example.com (or * for any origin)',
  })
  CORS_ORIGINS?: string[];

  /**
   * Which proxies to trust for X-Forwarded-For: a hop count (`1`) or addresses and subnets
   * (`10.0.0.0/8,loopback`); `false` is none, `true` trusts every hop (a client can then pick its
   * own address: only behind a proxy that overwrites the header). Unset: none, so the client is
   * the TCP peer.
   */
  @IsOptional()
  @Transform(({ value }) =>
    typeof value !== 'string'
      ? value
      : /^\d+$/.test(value)
        ? Number(value)
        : value === 'false'
          ? 0
          : value === 'true'
            ? true
            : value,
  )
  @Validate(TrustProxyRule)
  TRUST_PROXY?: number | string | boolean;

  /** Most client counters the rate limiter keeps; the oldest are dropped beyond it. @default 100000 */
  @IsIntegerSetting()
  @Min(100)
  THROTTLE_MAX_CLIENTS = 100_000;

  /**
   * Redis for rate-limit counters shared by every replica:
   * `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS. Unset: each process counts
   * on its own, and nothing connects to Redis.
   */
  @IsOptional()
  @Matches(/^rediss?:\/\/[^\s/?#]+(\/\d{0,2})?$/, {
    message:
      'REDIS_URL must be a URL such as redis://host:6379 or rediss://user:password@host:6380/0',
  })
  REDIS_URL?: string;

  /** Put before every key memdb writes to Redis, so deployments can share one. @default memdb: */
  @Matches(/^[\x21-\x7e]{1,64}$/, {
    message: 'REDIS_KEY_PREFIX must be 1 to 64 visible ASCII characters',
  })
  REDIS_KEY_PREFIX = 'memdb:';

  /** The HTTP server under Nest: `express` or `fastify`; both serve the same API. @default express */
  @Transform(({ value }) => (typeof value === 'string' ? value.trim().toLowerCase() : value))
  @IsIn(HTTP_ADAPTERS, { message: 'HTTP_ADAPTER must be express or fastify' })
  HTTP_ADAPTER: HttpAdapterName = 'express';

  /** Directory for the journal and snapshots; unset: memory only, nothing survives a restart. */
  @IsOptional()
  @IsString()
  @MinLength(1)
  DATA_DIR?: string;

  /** When the journal reaches the disk: `always` (before each answer), `everysec`, `no`. @default everysec */
  @Transform(({ value }) => (typeof value === 'string' ? value.trim().toLowerCase() : value))
  @IsIn(FSYNC_MODES, { message: 'FSYNC must be always, everysec or no' })
  FSYNC: FsyncMode = 'everysec';

  /** Start despite a damaged journal, cutting it at the damage (says how much it dropped). @default false */
  @Transform(({ value }) => (value === 'true' ? true : value === 'false' ? false : value))
  @IsBoolean({ message: 'DATA_REPAIR must be true or false' })
  DATA_REPAIR = false;

  /** Compact when the journal is this many times the snapshot (and over COMPACT_MIN_BYTES). @default 2 */
  @IsIntegerSetting()
  @Min(1)
  COMPACT_RATIO = 2;

  /** Smallest journal worth compacting. @default 64mb */
  @Transform(({ value }) => (typeof value === 'string' ? parseByteSize(value) : value))
  @IsInt({ message: 'COMPACT_MIN_BYTES must be a size such as 64mb or 1048576' })
  @Min(1)
  COMPACT_MIN_BYTES = 64 * 1024 * 1024;

  /** How long a graceful shutdown may take: requests still running at 90% of it are cut off. @default 10000 */
  @IsIntegerSetting()
  @Min(100)
  SHUTDOWN_TIMEOUT_MS = 10_000;

  /** Largest backup POST /api/v1/admin/restore accepts. @default 1gb */
  @Transform(({ value }) => (typeof value === 'string' ? parseByteSize(value) : value))
  @IsInt({ message: 'RESTORE_MAX_BYTES must be a size such as 1gb or 1048576' })
  @Min(1)
  RESTORE_MAX_BYTES = 1024 * 1024 * 1024;

  /**
   * Most memory, in MiB, that superseded record versions kept alive for open reads (snapshots)
   * may hold; past it the oldest open read is ended with 503 SNAPSHOT_TOO_OLD. @default 256
   */
  @IsIntegerSetting()
  @Min(1)
  @Max(1_048_576)
  SNAPSHOT_MAX_MB = 256;

  /**
   * Longest a request with X-Memdb-Min-Seq waits for the server to apply that sequence before
   * 503 SEQ_NOT_REACHED. @default 2000
   */
  @IsIntegerSetting()
  @Min(0)
  @Max(60_000)
  MIN_SEQ_WAIT_MS = 2000;

  /**
   * How long, in milliseconds, the answer to a write sent with an Idempotency-Key is replayed to
   * a repeat of it. @default 600000 (10 minutes)
   */
  @IsIntegerSetting()
  @Min(1000)
  @Max(86_400_000)
  IDEMPOTENCY_TTL_MS = 600_000;

  /**
   * Most memory, in MiB, that answers kept for Idempotency-Key replays may take; past it the
   * oldest (by X-Memdb-Seq) are forgotten early. @default 64
   */
  @IsIntegerSetting()
  @Min(1)
  @Max(4096)
  IDEMPOTENCY_MAX_MB = 64;

  /**
   * Cluster mode: NATS server URLs, comma-separated (`nats://host:4222,...`). Replicas apply one
   * command log on a JetStream stream. Unset: the embedded store.
   */
  @IsOptional()
  @Transform(({ value }) =>
    typeof value === 'string' ? value.split(',').map((url) => url.trim()) : value,
  )
  @IsArray()
  @ArrayNotEmpty()
  @Matches(/^(nats|tls):\/\/[A-Za-z0-9.\-[\]:]+(:\d{1,5})?$/, {
    each: true,
    message: 'NATS_URL must list server URLs such as nats://127.0.0.1:4222, comma-separated',
  })
  NATS_URL?: string[];

  /** The JetStream stream of the command log (cluster mode). @default memdb */
  @Matches(/^[A-Za-z0-9_-]{1,64}$/, {
    message: 'NATS_STREAM must be 1 to 64 letters, digits, - or _',
  })
  NATS_STREAM = 'memdb';

  /** Copies of the stream kept by the NATS cluster (1 to 5; 3 in production). @default 1 */
  @IsIntegerSetting()
  @Min(1)
  @Max(5)
  NATS_REPLICAS = 1;

  /**
   * Longest a write waits for its outcome in cluster mode before 503 WRITE_UNCONFIRMED.
   * @default 5000
   */
  @IsIntegerSetting()
  @Min(100)
  @Max(120_000)
  WRITE_TIMEOUT_MS = 5000;

  /**
   * Cluster mode: readiness fails while this replica is more than this many entries behind the
   * stream. @default 10000
   */
  @IsIntegerSetting()
  @Min(0)
  @Max(1_000_000_000)
  MAX_LAG = 10_000;

  /**
   * Cluster mode: every this many stream entries one replica writes a snapshot to the object
   * store, and the stream is purged below it (see NATS_RETAIN). @default 100000
   */
  @IsIntegerSetting()
  @Min(1)
  @Max(1_000_000_000)
  SNAPSHOT_EVERY = 100_000;

  /**
   * Cluster mode: stream entries kept before the newest snapshot; older ones are purged (a
   * replica further behind reloads from the snapshot). @default 200000
   */
  @IsIntegerSetting()
  @Min(0)
  @Max(1_000_000_000)
  NATS_RETAIN = 200_000;

  /** This replica's name in GET /api/v1/cluster. @default <hostname>-<pid> */
  @IsOptional()
  @Matches(/^[A-Za-z0-9._-]{1,128}$/, {
    message: 'REPLICA_NAME must be 1 to 128 letters, digits, ., - or _',
  })
  REPLICA_NAME?: string;
}

/** Never echoed in error messages. */
const SECRET_KEYS = new Set(['API_KEYS', 'REDIS_URL']);

/**
 * Validates the environment at start. Empty values count as unset; numbers must be plain
 * integers (`8000`, not `8e3` or `8000abc`). Every decorated property of Env is read; other
 * variables are dropped.
 * @throws Error listing every bad variable, which stops the process.
 */
export function validateEnv(raw: Record<string, unknown>): Env {
  const set: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (value !== undefined && value !== '') set[key] = value;
  }
  const env = plainToInstance(Env, set);
  // whitelist: variables that are not settings (PATH, HOME…) are removed from `env`.
  const errors = validateSync(env, { whitelist: true, forbidUnknownValues: true });
  if (errors.length > 0) {
    const lines = errors.map((e) => {
      const constraints = e.constraints ?? {};
      // A value that is not even a number: its range would only add noise.
      const reasons =
        constraints.isInt !== undefined ? [constraints.isInt] : Object.values(constraints);
      const shown = SECRET_KEYS.has(e.property) ? '<redacted>' : JSON.stringify(e.value);
      return `  ${e.property}=${shown}: ${reasons.join('; ')}`;
    });
    throw new Error(`Invalid configuration:\n${lines.join('\n')}`);
  }
  if (env.NATS_URL !== undefined && env.DATA_DIR !== undefined) {
    throw new Error(
      'Invalid configuration:\n  DATA_DIR and NATS_URL: set one; in cluster mode (NATS_URL) the JetStream stream keeps the data',
    );
  }
  return env;
}
