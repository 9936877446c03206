import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { natsClusters, waitFor } from './helpers/nats-cluster';

const startNatsCluster = natsClusters();

/**
 * The harness the cluster specs build on: real nats-server processes, no HTTP app. It does not
 * depend on the HTTP adapter, so only the Express project (e2e) runs it.
 */
(process.env.TEST_HTTP_ADAPTER === 'fastify' ? describe.skip : describe)(
  'NATS test cluster',
  () => {
    let nc: Awaited<ReturnType<typeof connect>> | undefined;
    afterAll(() => nc?.close());

    it('keeps an R3 stream writable when its leader is killed, and restarts that server', async () => {
      const cluster = await startNatsCluster({ servers: 3 });
      expect(cluster.urls).toHaveLength(3);
      expect(new Set(cluster.servers.map((server) => server.name)).size).toBe(3);

      // Unlimited reconnects: the client must outlast the leader's death whatever the timing.
      nc = await connect({
        servers: cluster.urls,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 100,
      });
      const jsm = await jetstreamManager(nc);
      const info = await jsm.streams.add({
        name: 'harness',
        subjects: ['harness.>'],
        num_replicas: 3,
        storage: 'file',
      });
      expect(info.config.num_replicas).toBe(3);
      const js = jetstream(nc);

      const first = await js.publish('harness.a', 'one', { msgID: 'one' });
      expect(first).toMatchObject({ stream: 'harness', seq: 1, duplicate: false });
      expect(await js.publish('harness.a', 'one', { msgID: 'one' })).toMatchObject({
        seq: 1,
        duplicate: true,
      });

      const leader = await waitFor(
        'the stream leader',
        () => cluster.streamLeader('harness'),
        30_000,
      );
      const index = cluster.servers.findIndex((server) => server.name === leader);
      expect(index).toBeGreaterThanOrEqual(0);
      const killedPid = cluster.servers[index].pid;
      await cluster.kill(index);
      expect(() => process.kill(killedPid, 0)).toThrow();

      // A publish may fail while the stream elects a new leader: retry it with its msgID, as a
      // writer would, until it is stored (once: the msgID de-duplicates a retry that did land).
      const second = await waitFor(
        'a publish after the leader was killed',
        () => js.publish('harness.b', 'two', { msgID: 'two' }),
        60_000,
      );
      expect(second).toMatchObject({ stream: 'harness', seq: 2 });
      const newLeader = await waitFor(
        'a new leader',
        () => cluster.streamLeader('harness'),
        30_000,
      );
      expect(newLeader).not.toBe(leader);

      await cluster.restart(index);
      expect(cluster.servers[index].pid).not.toBe(killedPid);
      const health = await fetch(`${cluster.servers[index].monitorUrl}/healthz`);
      expect(await health.json()).toEqual({ status: 'ok' });
      expect((await jsm.streams.info('harness')).state.messages).toBe(2);

      await nc.close();
      await cluster.stop();
      for (const server of cluster.servers) expect(() => process.kill(server.pid, 0)).toThrow();
    }, 120_000);

    it('starts a single server with JetStream for cheap tests', async () => {
      const single = await startNatsCluster({ servers: 1 });
      const client = await connect({ servers: single.urls });
      try {
        const jsm = await jetstreamManager(client);
        await jsm.streams.add({ name: 'solo', subjects: ['solo'], storage: 'file' });
        await jetstream(client).publish('solo', 'x');
        expect(await single.streamLeader('solo')).toBe(single.servers[0].name);
      } finally {
        await client.close();
      }
    }, 60_000);
  },
);
