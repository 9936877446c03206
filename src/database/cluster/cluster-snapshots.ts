import { Logger } from '@nestjs/common';
import type { JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { Objm, type ObjectStore } from '@nats-io/obj';
import type { connect } from '@nats-io/transport-node';
import { Readable } from 'node:stream';
import {
  parseSnapshotData,
  snapshotLines,
  type SnapshotData,
  type TableData,
} from '../persistence/snapshot';

type NatsConnection = Awaited<ReturnType<typeof connect>>;

/** A snapshot in the object store, with the stream sequence whose state it holds. */
export interface StoredSnapshot extends SnapshotData {
  readonly seq: number;
  readonly name: string;
}

export interface ClusterSnapshotSettings {
  readonly stream: string;
  readonly replicas: number;
  readonly replicaName: string;
  /** Entries kept in the stream before the newest snapshot (NATS_RETAIN). */
  readonly retain: number;
  /** How long a write may take to reach the stream (WRITE_TIMEOUT_MS). */
  readonly writeTimeoutMs: number;
  /**
   * When the stream was created: a snapshot says which stream it is of, so one of a deleted
   * stream of the same name is never loaded onto a new one.
   */
  readonly streamCreated: string;
}

/**
 * Who writes the snapshot of a round (a multiple of SNAPSHOT_EVERY), as the lease key holds it.
 * A lease is taken by a compare-and-set on the key's revision: exactly one replica wins it.
 */
interface Lease {
  readonly round: number;
  readonly replica: string;
  /** Epoch ms after which another replica may take the lease (its holder died mid-write). */
  readonly until: number;
  readonly done: boolean;
}

const LEASE_KEY = 'snapshot';
/** Long enough to write a snapshot of millions of records; a dead holder delays one round. */
const LEASE_MS = 10 * 60_000;
/** Snapshot objects are named by their sequence, zero-padded so names sort in order. */
const SNAPSHOT_NAME = /^snapshot-(\d{16})$/;
/** Margin for clocks between replicas when removing stored large commands. */
const CLOCK_SLACK_MS = 60_000;

function snapshotName(seq: number): string {
  return `snapshot-${String(seq).padStart(16, '0')}`;
}

/**
 * The cluster's snapshots: in the object store `<NATS_STREAM>-snapshots`, one replica writing
 * each (chosen through a lease in the KV bucket `<NATS_STREAM>-lease`), after which the stream
 * is purged below NATS_RETAIN entries before it, and the large commands only purged entries
 * named are removed. No membership list: whoever reaches a round first takes it.
 */
export class ClusterSnapshots {
  private readonly logger = new Logger('Cluster');
  private objects: Promise<ObjectStore> | undefined;
  private leases: Promise<KV> | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly settings: ClusterSnapshotSettings,
  ) {}

  /**
   * The newest snapshot at or below `maxSeq` (a snapshot past the stream's end belongs to an
   * earlier stream of that name), or undefined when there is none.
   * @throws DamagedFileError for a damaged snapshot, or NATS's error
   */
  async newest(maxSeq = Number.MAX_SAFE_INTEGER): Promise<StoredSnapshot | undefined> {
    const store = await this.store();
    const names = (await store.list())
      .filter((info) => !info.deleted && info.description === this.description)
      .map((info) => ({ name: info.name, seq: Number(SNAPSHOT_NAME.exec(info.name)?.[1] ?? -1) }))
      .filter(({ seq }) => seq >= 0 && seq <= maxSeq)
      .sort((a, b) => b.seq - a.seq);
    for (const { name } of names) {
      const result = await store.get(name);
      // Removed since it was listed (a newer one replaced it): the next newest, then.
      if (result === null) continue;
      const chunks: Buffer[] = [];
      for await (const chunk of Readable.fromWeb(result.data as never) as AsyncIterable<Buffer>)
        chunks.push(chunk);
      const error = await result.error;
      if (error) throw error;
      const data = await parseSnapshotData(Buffer.concat(chunks), `${this.bucket} ${name}`);
      return { ...data, seq: data.seq ?? 0, name };
    }
    return undefined;
  }

  /**
   * Takes the lease of `round` if no replica holds it (or one that died did).
   * @returns whether this replica is to write the round's snapshot
   */
  async take(round: number): Promise<boolean> {
    const kv = await this.kv();
    const lease: Lease = {
      round,
      replica: this.settings.replicaName,
      until: Date.now() + LEASE_MS,
      done: false,
    };
    const entry = await kv.get(LEASE_KEY);
    try {
      if (entry === null || entry.operation !== 'PUT') {
        await kv.create(LEASE_KEY, JSON.stringify(lease));
        return true;
      }
      const held = entry.json<Lease>();
      // This replica's own lease, from an attempt that failed: taken again.
      const mine = held.replica === this.settings.replicaName && held.round === round && !held.done;
      if (held.round >= round && !mine) return false;
      if (!mine && !held.done && held.until > Date.now()) return false;
      await kv.update(LEASE_KEY, JSON.stringify(lease), entry.revision);
      return true;
    } catch {
      // Another replica's compare-and-set came first.
      return false;
    }
  }

  /** Marks the round's snapshot written: the next round's lease may be taken at once. */
  async release(round: number): Promise<void> {
    const kv = await this.kv();
    const lease: Lease = { round, replica: this.settings.replicaName, until: 0, done: true };
    await kv.put(LEASE_KEY, JSON.stringify(lease));
  }

  /**
   * Writes a snapshot of `tables` (the state at entry `seq`) and removes older ones but the one
   * before it (a replica may be reading it). @returns its size in bytes
   */
  async write(tables: readonly TableData[], seq: number, answers: readonly unknown[] = []) {
    const store = await this.store();
    const name = snapshotName(seq);
    const lines = Readable.from(snapshotLines(tables, seq, answers), { objectMode: false });
    const info = await store.put(
      { name, description: this.description },
      Readable.toWeb(lines) as ReadableStream<Uint8Array>,
    );
    const older = (await store.list())
      .filter((other) => !other.deleted && SNAPSHOT_NAME.test(other.name) && other.name < name)
      .map((other) => other.name)
      .sort()
      .slice(0, -1);
    for (const other of older) await store.delete(other).catch(() => undefined);
    return info.size;
  }

  /**
   * Purges the stream below NATS_RETAIN entries before the snapshot at `seq`, then removes the
   * large commands that only purged entries can name (stored before the first entry kept,
   * with a margin for a slow publish and for clocks). @returns the first sequence kept
   */
  async purge(seq: number, commands: () => Promise<ObjectStore>): Promise<number> {
    const { stream, retain, writeTimeoutMs } = this.settings;
    const keepFrom = seq - retain + 1;
    const info = await this.jsm.streams.info(stream);
    if (keepFrom <= info.state.first_seq) return info.state.first_seq;
    await this.jsm.streams.purge(stream, { seq: keepFrom });
    const first = await this.jsm.streams.getMessage(stream, { seq: keepFrom }).catch(() => null);
    const before = (first?.time.getTime() ?? Date.now()) - writeTimeoutMs - CLOCK_SLACK_MS;
    const store = await commands();
    for (const object of await store.list()) {
      if (!object.deleted && Date.parse(object.mtime) < before)
        await store.delete(object.name).catch(() => undefined);
    }
    this.logger.log(`Purged stream '${stream}' below entry ${keepFrom} (snapshot at ${seq})`);
    return keepFrom;
  }

  private get description(): string {
    return `stream ${this.settings.stream} created ${this.settings.streamCreated}`;
  }

  private get bucket(): string {
    return `${this.settings.stream}-snapshots`;
  }

  private store(): Promise<ObjectStore> {
    this.objects ??= new Objm(this.nc).create(this.bucket, {
      storage: 'file' as never,
      replicas: this.settings.replicas,
    });
    this.objects.catch(() => (this.objects = undefined));
    return this.objects;
  }

  private kv(): Promise<KV> {
    this.leases ??= new Kvm(this.nc).create(`${this.settings.stream}-lease`, {
      replicas: this.settings.replicas,
      storage: 'file' as never,
      history: 1,
    });
    this.leases.catch(() => (this.leases = undefined));
    return this.leases;
  }
}
