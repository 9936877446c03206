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
import { heapBudgetBytes } from '../config/heap-budget';
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
    this.heapBudgetBytes = heapBudgetBytes(config.get('MAX_MEMORY_MB', { infer: true }));
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
