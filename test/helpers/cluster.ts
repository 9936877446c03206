import type { INestApplication, LoggerService } from '@nestjs/common';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { createTestApp, TEST_HTTP_ADAPTER } from './test-app';

/** Where a cluster-mode replica (an in-process app) finds its log. */
export interface ReplicaOptions {
  /** NATS_URL: one server's URL, or several comma-separated. */
  readonly natsUrl: string;
  readonly stream: string;
  /** REPLICA_NAME, as GET /api/v1/cluster reports it. */
  readonly name: string;
  /** More environment; wins over the defaults here (WRITE_TIMEOUT_MS 20000). */
  readonly env?: Record<string, string>;
  readonly logger?: LoggerService;
}

/** A cluster-mode replica: the real AppModule with NATS_URL and NATS_STREAM set, ready. */
export function startReplica({
  natsUrl,
  stream,
  name,
  env = {},
  logger,
}: ReplicaOptions): Promise<INestApplication> {
  return createTestApp({
    logger,
    env: {
      NATS_URL: natsUrl,
      NATS_STREAM: stream,
      REPLICA_NAME: name,
      WRITE_TIMEOUT_MS: '20000',
      ...env,
    },
  });
}

/**
 * Stream names for one spec file's run: `<prefix>-<adapter>-<n>`, so the Express and the
 * Fastify runs (which may share a NATS server) never use the same stream.
 */
export function streamNames(prefix: string): () => string {
  let streams = 0;
  return () => `${prefix}-${TEST_HTTP_ADAPTER}-${++streams}`;
}

/**
 * Deletes a stream (if it exists) and the buckets cluster mode makes beside it (snapshots,
 * large commands, the snapshot lease), so a run leaves nothing behind on the server.
 */
export async function deleteStream(natsUrl: string, name: string): Promise<void> {
  const nc = await connect({ servers: natsUrl.split(',') });
  try {
    const jsm = await jetstreamManager(nc);
    for (const stream of [
      name,
      `OBJ_${name}-snapshots`,
      `OBJ_${name}-commands`,
      `KV_${name}-lease`,
    ])
      await jsm.streams.delete(stream).catch(() => undefined);
  } finally {
    await nc.close();
  }
}
