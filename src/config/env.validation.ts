import { plainToInstance } from 'class-transformer';
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
import { Transform } from 'class-transformer';
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

/**
 * Every setting memdb reads from the environment, with its default.
 * This class is the only description of the configuration: the README's table mirrors it.
 */
export class Env {
  /** TCP port to listen on. @default 8000 */
  @IsInt()
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
  @IsInt()
  @Min(0)
  THROTTLE_LIMIT = 1000;

  /** Length of the throttling window in milliseconds. @default 1000 */
  @IsInt()
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
  @IsInt()
  @Min(1)
  @Max(100_000)
  BULK_MAX = 1000;

  /**
   * How long a write waits for its table's lock, or while a compaction or restore holds writes,
   * before it fails with 503. @default 5000
   */
  @IsInt()
  @Min(1)
  LOCK_TIMEOUT_MS = 5000;

  /**
   * Heap budget in MiB: above it writes are refused (507) and readiness fails, while reads,
   * deletes and liveness keep working. Unset: 75% of V8's heap limit.
   */
  @IsOptional()
  @IsInt()
  @Min(16)
  MAX_MEMORY_MB?: number;

  /** Deepest nesting of a JSON body. @default 32 */
  @IsInt()
  @Min(1)
  @Max(256)
  MAX_DEPTH = 32;

  /** Most rows a query may hold at once (offset + limit of a sorted page, a page of a join). @default 100000 */
  @IsInt()
  @Min(1000)
  MAX_RESULT_ROWS = 100_000;

  /**
   * API keys as `key:role` pairs, comma-separated; roles `read`, `write`, `admin`. Unset: the
   * API is open (a warning is logged at start). Keys are 16 to 256 characters.
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
  @IsInt()
  @Min(100)
  THROTTLE_MAX_CLIENTS = 100_000;

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
  @IsInt()
  @Min(1)
  COMPACT_RATIO = 2;

  /** Smallest journal worth compacting. @default 64mb */
  @Transform(({ value }) => (typeof value === 'string' ? parseByteSize(value) : value))
  @IsInt({ message: 'COMPACT_MIN_BYTES must be a size such as 64mb or 1048576' })
  @Min(1)
  COMPACT_MIN_BYTES = 64 * 1024 * 1024;

  /** How long a graceful shutdown may take: requests still running at 90% of it are cut off. @default 10000 */
  @IsInt()
  @Min(100)
  SHUTDOWN_TIMEOUT_MS = 10_000;

  /** Largest backup POST /api/v1/admin/restore accepts. @default 1gb */
  @Transform(({ value }) => (typeof value === 'string' ? parseByteSize(value) : value))
  @IsInt({ message: 'RESTORE_MAX_BYTES must be a size such as 1gb or 1048576' })
  @Min(1)
  RESTORE_MAX_BYTES = 1024 * 1024 * 1024;
}

const NUMERIC_KEYS = new Set<string>([
  'MAX_DEPTH',
  'MAX_RESULT_ROWS',
  'THROTTLE_MAX_CLIENTS',
  'PORT',
  'THROTTLE_LIMIT',
  'THROTTLE_TTL_MS',
  'LOCK_TIMEOUT_MS',
  'BULK_MAX',
  'MAX_MEMORY_MB',
  'COMPACT_RATIO',
  'SHUTDOWN_TIMEOUT_MS',
]);
const INTEGER = /^-?\d+$/;
/** Settings without a default (absent from `new Env()`). */
const OPTIONAL_KEYS = [
  'HOST',
  'MAX_MEMORY_MB',
  'API_KEYS',
  'CORS_ORIGINS',
  'TRUST_PROXY',
  'DATA_DIR',
];
/** Never echoed in error messages. */
const SECRET_KEYS = new Set(['API_KEYS']);

/**
 * Validates the environment at start. Empty values count as unset; numbers must be plain
 * integers (`8000`, not `8e3` or `8000abc`).
 * @throws Error listing every bad variable, which stops the process.
 */
export function validateEnv(raw: Record<string, unknown>): Env {
  const known: Record<string, unknown> = {};
  for (const key of new Set([...Object.keys(new Env()), ...OPTIONAL_KEYS])) {
    const value = raw[key];
    if (value === undefined || value === '') continue;
    known[key] =
      NUMERIC_KEYS.has(key) && typeof value === 'string' && INTEGER.test(value.trim())
        ? Number(value)
        : value;
  }
  const env = plainToInstance(Env, known);
  const errors = validateSync(env, { forbidUnknownValues: true });
  if (errors.length > 0) {
    const lines = errors.map((e) =>
      SECRET_KEYS.has(e.property)
        ? `  ${e.property}=<redacted>: ${Object.values(e.constraints ?? {}).join('; ')}`
        : `  ${e.property}=${JSON.stringify(e.value)}: ${Object.values(e.constraints ?? {}).join('; ')}`,
    );
    throw new Error(`Invalid configuration:\n${lines.join('\n')}`);
  }
  return env;
}
