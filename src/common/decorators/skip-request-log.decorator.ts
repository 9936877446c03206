import { SetMetadata } from '@nestjs/common';

export const SKIP_REQUEST_LOG = 'memdb:skipRequestLog';

/** Logs the route's requests at verbose level only: probes every few seconds are noise. */
export const SkipRequestLog = (): MethodDecorator & ClassDecorator =>
  SetMetadata(SKIP_REQUEST_LOG, true);
