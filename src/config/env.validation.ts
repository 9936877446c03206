import { plainToInstance } from 'class-transformer';
import {
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Max,
  Min,
  MinLength,
  validateSync,
} from 'class-validator';
import { Transform } from 'class-transformer';
import { parseByteSize } from './byte-size';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'] as const;
export type LogLevelName = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['json', 'text'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

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

  /** Least severe level that is logged. @default log */
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

  /** How long a write waits for its table's lock before it fails with 503. @default 5000 */
  @IsInt()
  @Min(1)
  LOCK_TIMEOUT_MS = 5000;

  /** Heap budget in MiB; readiness fails above it. Unset: 90% of V8's heap limit. */
  @IsOptional()
  @IsInt()
  @Min(16)
  MAX_MEMORY_MB?: number;
}

const NUMERIC_KEYS = new Set<string>([
  'PORT',
  'THROTTLE_LIMIT',
  'THROTTLE_TTL_MS',
  'LOCK_TIMEOUT_MS',
  'BULK_MAX',
  'MAX_MEMORY_MB',
]);
const INTEGER = /^-?\d+$/;

/**
 * Validates the environment at start. Empty values count as unset; numbers must be plain
 * integers (`8000`, not `8e3` or `8000abc`).
 * @throws Error listing every bad variable, which stops the process.
 */
export function validateEnv(raw: Record<string, unknown>): Env {
  const known: Record<string, unknown> = {};
  for (const key of new Set([...Object.keys(new Env()), 'HOST', 'MAX_MEMORY_MB'])) {
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
    const lines = errors.map(
      (e) =>
        `  ${e.property}=${JSON.stringify(e.value)}: ${Object.values(e.constraints ?? {}).join('; ')}`,
    );
    throw new Error(`Invalid configuration:\n${lines.join('\n')}`);
  }
  return env;
}
