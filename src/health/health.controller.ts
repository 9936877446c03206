import { getHeapStatistics } from 'node:v8';
import { Controller, Get, UseFilters } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import {
  HealthCheck,
  HealthCheckService,
  HealthIndicatorService,
  MemoryHealthIndicator,
  type HealthIndicatorResult,
} from '@nestjs/terminus';
import { SkipThrottle } from '@nestjs/throttler';
import { Public } from '../common/decorators/access.decorator';
import { SkipRequestLog } from '../common/decorators/skip-request-log.decorator';
import { APP_INFO } from '../config/app-info';
import type { Env } from '../config/env.validation';
import { StorageHealthIndicator } from '../database/storage.health';
import { HealthCheckFilter } from './health-check.filter';
import { withVersion, type VersionedHealth } from './versioned-health';

/** Kubernetes probes. Never throttled; logged at verbose level only. */
@ApiTags('health')
@SkipThrottle()
@Public()
@SkipRequestLog()
@UseFilters(HealthCheckFilter)
@Controller('health')
export class HealthController {
  private readonly heapBudgetBytes: number;

  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    private readonly memory: MemoryHealthIndicator,
    private readonly storage: StorageHealthIndicator,
    config: ConfigService<Env, true>,
  ) {
    const budgetMb = config.get('MAX_MEMORY_MB', { infer: true });
    this.heapBudgetBytes =
      budgetMb !== undefined
        ? budgetMb * 1024 * 1024
        : Math.floor(getHeapStatistics().heap_size_limit * 0.9);
  }

  @Get()
  @HealthCheck()
  @ApiOperation({ summary: 'Liveness: the process serves' })
  async live(): Promise<VersionedHealth> {
    return withVersion(await this.health.check([() => this.app()]));
  }

  @Get('ready')
  @HealthCheck()
  @ApiOperation({ summary: 'Readiness: storage ready and heap under its budget (MAX_MEMORY_MB)' })
  async ready(): Promise<VersionedHealth> {
    return withVersion(
      await this.health.check([
        () => this.app(),
        () => this.storage.check('storage'),
        () => this.memory.checkHeap('memory_heap', this.heapBudgetBytes),
      ]),
    );
  }

  private app(): HealthIndicatorResult {
    return this.indicators.check('app').up({ name: APP_INFO.name, version: APP_INFO.version });
  }
}
