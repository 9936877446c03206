import type { INestApplication } from '@nestjs/common';
import type { AddressInfo } from 'node:net';
import { runMixedLoad, seedLoadData } from '../bench/load-scenario';
import { createTestApp } from './helpers/test-app';

/** The 10-second version of `npm run loadtest`: counts, not timings. */
describe('Mixed load (10 s, 100 connections)', () => {
  let app: INestApplication;

  beforeAll(async () => {
    app = await createTestApp();
    await app.listen(0, '127.0.0.1');
  });

  afterAll(() => app.close());

  it('answers every request with a 2xx: no errors, no timeouts', async () => {
    const { port } = app.getHttpServer().address() as AddressInfo;
    const baseUrl = `http://127.0.0.1:${port}`;
    await seedLoadData(baseUrl);

    const summary = await runMixedLoad(baseUrl, { duration: 10, connections: 100 });

    expect(summary.requests).toBeGreaterThan(0);
    expect({ errors: summary.errors, timeouts: summary.timeouts, non2xx: summary.non2xx }).toEqual({
      errors: 0,
      timeouts: 0,
      non2xx: 0,
    });
  }, 60_000);
});
