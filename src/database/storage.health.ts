import { Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { PersistenceService } from './persistence/persistence.service';
import { StorageService } from './storage.service';

/** Readiness of the store, with its size, for the readiness probe. */
@Injectable()
export class StorageHealthIndicator {
  constructor(
    private readonly storage: StorageService,
    private readonly persistence: PersistenceService,
    private readonly health: HealthIndicatorService,
  ) {}

  check(key = 'storage'): HealthIndicatorResult {
    const indicator = this.health.check(key);
    const stats = { ...this.storage.stats() };
    if (!this.storage.ready)
      return indicator.down({ ...stats, reason: this.storage.notReadyReason ?? 'loading' });
    const failure = this.persistence.failure;
    if (failure !== undefined) {
      return indicator.down({
        ...stats,
        reason: `the journal cannot be written (${(failure as NodeJS.ErrnoException).code ?? failure.message}): writes are refused`,
      });
    }
    const lag = this.storage.lag;
    if (lag !== undefined && lag.behind > lag.max) {
      // Far behind the stream: its reads would be stale. Losing NATS does not count (every
      // replica would leave the Service at once); only a replica that cannot keep up does.
      return indicator.down({
        ...stats,
        reason: `${lag.behind} entries behind the command stream (MAX_LAG ${lag.max})`,
      });
    }
    if (this.storage.overMemoryBudget) {
      return indicator.down({
        ...stats,
        reason: 'over the memory budget (MAX_MEMORY_MB): writes are refused',
      });
    }
    return indicator.up(stats);
  }
}
