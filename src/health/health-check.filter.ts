import {
  type ArgumentsHost,
  Catch,
  type ExceptionFilter,
  ServiceUnavailableException,
} from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { HealthCheckResult } from '@nestjs/terminus';
import { withVersion } from './versioned-health';

/**
 * A failed probe answers 503 with Terminus's own body (`status: "error"` and each indicator),
 * which is what probes and dashboards read, rather than problem details.
 */
@Catch(ServiceUnavailableException)
export class HealthCheckFilter implements ExceptionFilter {
  constructor(private readonly adapterHost: HttpAdapterHost) {}

  catch(exception: ServiceUnavailableException, host: ArgumentsHost): void {
    const { httpAdapter } = this.adapterHost;
    httpAdapter.reply(
      host.switchToHttp().getResponse(),
      withVersion(exception.getResponse() as HealthCheckResult),
      exception.getStatus(),
    );
  }
}
