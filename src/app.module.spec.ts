import { ConfigService } from '@nestjs/config';
import { databaseOptions } from './app.module';
import { validateEnv, type Env } from './config/env.validation';

describe('databaseOptions', () => {
  it('passes SNAPSHOT_MAX_MB on in bytes', () => {
    const config = new ConfigService<Env, true>(validateEnv({ SNAPSHOT_MAX_MB: '3' }));

    expect(databaseOptions(config).snapshotMaxBytes).toBe(3 * 1024 * 1024);
  });

  it('defaults to 256 MiB', () => {
    const config = new ConfigService<Env, true>(validateEnv({}));

    expect(databaseOptions(config).snapshotMaxBytes).toBe(256 * 1024 * 1024);
  });
});
