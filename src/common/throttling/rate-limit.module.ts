import { Module } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { ThrottlerStorage } from '@nestjs/throttler';
import type { Env } from '../../config/env.validation';
import { BoundedThrottlerStorage } from './bounded-throttler.storage';
import { RedisThrottlerStorage } from './redis-throttler.storage';

/** The throttler's counters: in this process, or in Redis when REDIS_URL is set. */
export const RateLimitStorage = Symbol('RateLimitStorage');
export type RateLimitStorage = ThrottlerStorage;

/**
 * Provides the throttler's storage as a provider, so its sweep timer stops, or its Redis
 * connection closes, on shutdown.
 */
@Module({
  providers: [
    {
      provide: RateLimitStorage,
      inject: [ConfigService],
      useFactory: (config: ConfigService<Env, true>): RateLimitStorage => {
        const url = config.get('REDIS_URL', { infer: true });
        if (url === undefined) {
          return new BoundedThrottlerStorage(config.get('THROTTLE_MAX_CLIENTS', { infer: true }));
        }
        return new RedisThrottlerStorage({
          url,
          keyPrefix: `${config.get('REDIS_KEY_PREFIX', { infer: true })}throttle:`,
        });
      },
    },
  ],
  exports: [RateLimitStorage],
})
export class RateLimitModule {}
