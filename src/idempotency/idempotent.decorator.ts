import { applyDecorators, UseFilters, UseGuards } from '@nestjs/common';
import { ApiHeader } from '@nestjs/swagger';
import { ApiProblems } from '../common/decorators/api-problems.decorator';
import { IdempotencyGuard } from './idempotency.guard';
import { IdempotencyReplayFilter } from './idempotency-replay.filter';

/**
 * Makes a write route honour `Idempotency-Key` (IdempotencyGuard) and documents the header and
 * its problems (409 while the first request runs, 422 for a key reused on another request).
 */
export function Idempotent(): MethodDecorator {
  return applyDecorators(
    UseGuards(IdempotencyGuard),
    UseFilters(IdempotencyReplayFilter),
    ApiHeader({
      name: 'Idempotency-Key',
      required: false,
      description:
        '1–255 visible ASCII characters. A repeat of the request (same key, method, path and body, ' +
        'same API key or client) within IDEMPOTENCY_TTL_MS gets the first answer again, with ' +
        '`Idempotency-Replayed: true`, and writes nothing.',
    }),
    ApiProblems(409, 422),
  );
}
