import {
  startNatsCluster,
  type NatsCluster,
  type NatsClusterOptions,
} from '../../scripts/nats-cluster';

export * from '../../scripts/nats-cluster';

/**
 * For a spec's top level: returns `startNatsCluster`, and every cluster started through it is
 * stopped (its processes by PID, its store dirs removed) after the file's tests, even when a
 * test failed or timed out. A worker that dies outright still kills them on its way out.
 */
export function natsClusters(): (options?: NatsClusterOptions) => Promise<NatsCluster> {
  const clusters: NatsCluster[] = [];
  afterAll(() => Promise.all(clusters.map((cluster) => cluster.stop())), 60_000);
  return async (options) => {
    const cluster = await startNatsCluster(options);
    clusters.push(cluster);
    return cluster;
  };
}
