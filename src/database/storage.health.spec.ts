import { HealthIndicatorService } from '@nestjs/terminus';
import type { PersistenceService } from './persistence/persistence.service';
import { StorageHealthIndicator } from './storage.health';
import type { StorageService } from './storage.service';

function indicatorWith(lag: StorageService['lag']) {
  const storage = {
    stats: () => ({ tables: 1, records: 2 }),
    ready: true,
    notReadyReason: undefined,
    overMemoryBudget: false,
    lag,
  } as unknown as StorageService;
  const persistence = { failure: undefined } as unknown as PersistenceService;
  return new StorageHealthIndicator(storage, persistence, new HealthIndicatorService());
}

describe('StorageHealthIndicator in cluster mode', () => {
  it('fails readiness while the replica is more than MAX_LAG entries behind the stream', () => {
    expect(indicatorWith({ behind: 11, max: 10 }).check()).toEqual({
      storage: {
        status: 'down',
        tables: 1,
        records: 2,
        reason: '11 entries behind the command stream (MAX_LAG 10)',
      },
    });
  });

  it('stays ready at MAX_LAG, and embedded (no lag at all)', () => {
    expect(indicatorWith({ behind: 10, max: 10 }).check().storage.status).toBe('up');
    expect(indicatorWith(undefined).check().storage.status).toBe('up');
  });
});
