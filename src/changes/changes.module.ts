import { Module } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { Env } from '../config/env.validation';
import { StorageService } from '../database/storage.service';
import { AccessTickets } from '../common/guards/access-tickets';
import { ChangeFeeds } from './change-feed';
import { CHANGE_FEEDS, ChangesController } from './changes.controller';

/** The change feed: GET /api/v1/changes (SSE or long-poll), on the log's positions. */
@Module({
  controllers: [ChangesController],
  // Exported for the API key guard, which accepts a ticket on the feed.
  exports: [AccessTickets],
  providers: [
    { provide: AccessTickets, useValue: new AccessTickets() },
    {
      provide: CHANGE_FEEDS,
      inject: [StorageService, ConfigService],
      useFactory: (storage: StorageService, config: ConfigService<Env, true>) =>
        new ChangeFeeds(storage.changes, {
          heartbeatMs: config.get('CHANGES_HEARTBEAT_MS', { infer: true }),
          bufferBytes: config.get('CHANGES_BUFFER_BYTES', { infer: true }),
          maxSubscribers: config.get('CHANGES_MAX_SUBSCRIBERS', { infer: true }),
        }),
    },
  ],
})
export class ChangesModule {}
