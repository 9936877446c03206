import { Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { StorageService } from './storage.service';

/** Readiness of the store, with its size, for the readiness probe. */
@Injectable()
export class StorageHealthIndicator {
  constructor(
    private readonly storage: StorageService,
    private readonly health: HealthIndicatorService,
  ) {}

  check(key = 'storage'): HealthIndicatorResult {
    const indicator = this.health.check(key);
    const stats = { ...this.storage.stats() };
    if (!this.storage.ready) return indicator.down({ ...stats, reason: 'loading' });
    if (this.storage.overMemoryBudget) {
      return indicator.down({
        ...stats,
        reason: 'over the memory budget (MAX_MEMORY_MB): writes are refused',
      });
    }
    return indicator.up(stats);
  }
}
