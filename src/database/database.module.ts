import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { DatabaseCore } from './database-core';
import {
  ConfigurableModuleClass,
  DATABASE_OPTIONS,
  type DatabaseModuleOptions,
} from './database.module-definition';
import { PersistenceService } from './persistence/persistence.service';
import { StorageHealthIndicator } from './storage.health';
import { StorageService } from './storage.service';

/**
 * The embedded store. Global: register once with `forRoot`/`forRootAsync`; every feature module
 * can then inject `StorageService` (reads and writes), `PersistenceService` (backup, restore,
 * compaction) and `StorageHealthIndicator`. The core they share (state machine, log, write
 * gate) is provided here and not exported: nothing outside this module applies commands or
 * swaps tables.
 */
@Module({
  imports: [TerminusModule],
  providers: [
    {
      provide: DatabaseCore,
      inject: [DATABASE_OPTIONS],
      useFactory: (options: DatabaseModuleOptions) => new DatabaseCore(options),
    },
    StorageService,
    PersistenceService,
    StorageHealthIndicator,
  ],
  exports: [StorageService, PersistenceService, StorageHealthIndicator],
})
export class DatabaseModule extends ConfigurableModuleClass {}
