import { Module } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { Env } from '../../config/env.validation';
import { BoundedThrottlerStorage } from './bounded-throttler.storage';

/** Provides the throttler's storage as a provider, so its sweep timer stops on shutdown. */
@Module({
  providers: [
    {
      provide: BoundedThrottlerStorage,
      inject: [ConfigService],
      useFactory: (config: ConfigService<Env, true>) =>
        new BoundedThrottlerStorage(config.get('THROTTLE_MAX_CLIENTS', { infer: true })),
    },
  ],
  exports: [BoundedThrottlerStorage],
})
export class RateLimitModule {}
