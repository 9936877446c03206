import { SetMetadata } from '@nestjs/common';
import type { ApiRole } from '../../config/api-keys';

export const PUBLIC_ROUTE = 'memdb:public';
export const REQUIRED_ROLE = 'memdb:role';

/** Open even when API keys are configured (health probes, docs). */
export const Public = (): MethodDecorator & ClassDecorator => SetMetadata(PUBLIC_ROUTE, true);

/**
 * The least role a route needs. Without it: `read` for GET and HEAD, `write` otherwise.
 * Roles rank read < write < admin.
 */
export const RequiresRole = (role: ApiRole): MethodDecorator & ClassDecorator =>
  SetMetadata(REQUIRED_ROLE, role);
