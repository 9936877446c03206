import type { HealthCheckResult } from '@nestjs/terminus';
import { APP_INFO } from '../config/app-info';

export type VersionedHealth = HealthCheckResult & { version: string };

/** Terminus's body with the app version on top, for a glance at what a pod runs. */
export function withVersion(result: HealthCheckResult): VersionedHealth {
  return { ...result, version: APP_INFO.version };
}
