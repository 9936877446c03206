import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { ConfigurableModuleClass } from './database.module-definition';
import { PersistenceService } from './persistence/persistence.service';
import { StorageHealthIndicator } from './storage.health';
import { StorageService } from './storage.service';

/**
 * The embedded store. Global: register once with `forRoot`/`forRootAsync`; every feature module
 * can then inject `StorageService`, and `HealthModule` the `StorageHealthIndicator`.
 */
@Module({
  imports: [TerminusModule],
  providers: [StorageService, PersistenceService, StorageHealthIndicator],
  exports: [StorageService, PersistenceService, StorageHealthIndicator],
})
export class DatabaseModule extends ConfigurableModuleClass {}
