import { Logger } from '@nestjs/common';
import {
  DeliverPolicy,
  jetstream,
  type ConsumerMessages,
  jetstreamManager,
  type JetStreamClient,
  type JetStreamManager,
  type StreamConfig,
} from '@nats-io/jetstream';
import { Objm, type ObjectStore } from '@nats-io/obj';
import { connect } from '@nats-io/transport-node';
import { randomUUID } from 'node:crypto';
import { CommandLog, type Applied } from '../command-log';
import type { Command } from '../commands';
import {
  IdempotencyKeyExpiredError,
  StorageUnavailableError,
  WriteUnconfirmedError,
} from '../database.errors';
import type { KeptAnswers } from '../persistence/kept-answers';
import { UnappliableEntryError, type StateMachine } from '../state-machine';
import { ClusterSnapshots, type StoredSnapshot } from './cluster-snapshots';

type NatsConnection = Awaited<ReturnType<typeof connect>>;

/** Cluster mode's settings (NATS_URL and companions). */
export interface ClusterOptions {
  readonly servers: readonly string[];
  readonly stream: string;
  readonly replicas: number;
  readonly writeTimeoutMs: number;
  /** At least IDEMPOTENCY_TTL_MS: the stream drops a repeated message id within it. */
  readonly duplicateWindowMs: number;
  readonly replicaName: string;
  /** Readiness fails while this replica is more entries than this behind the stream. */
  readonly maxLag: number;
  /** A snapshot goes to the object store every this many entries (SNAPSHOT_EVERY). */
  readonly snapshotEvery: number;
  /** Entries kept in the stream before the newest snapshot (NATS_RETAIN). */
  readonly retain: number;
}

/** What GET /api/v1/cluster says of the connection. */
export type NatsState = 'connected' | 'reconnecting' | 'disconnected';

/** A stream whose settings differ from these is refused at start, never changed silently. */
export class StreamMismatchError extends Error {
  constructor(stream: string, differences: readonly string[]) {
    super(
      `The JetStream stream '${stream}' exists with other settings (${differences.join('; ')}): change it yourself (nats stream edit) or set NATS_STREAM to another name`,
    );
    this.name = 'StreamMismatchError';
  }
}

/**
 * A log entry standing for a command too large for one NATS message (`max_payload`): the
 * command itself is in the object store under `name`.
 */
interface LargeCommand {
  readonly v: 1;
  readonly op: 'stored';
  readonly name: string;
}

/** Room left in a message for its headers and framing. */
const MESSAGE_OVERHEAD = 4096;

interface Waiting {
  readonly resolve: (applied: Applied) => void;
  readonly reject: (error: unknown) => void;
}

const NANOS_PER_MS = 1_000_000;
/** A command's write timeout grows by a millisecond per this many bytes of it. */
const BYTES_PER_EXTRA_MS = 10_000;
/** How long to wait before trying a failed snapshot again. */
const SNAPSHOT_RETRY_MS = 2000;
/** How long to wait before making the stream consumer again after it failed. */
const CONSUMER_RETRY_MS = 1000;
/** How long a pull for the stream's entries waits on the server (it sends heartbeats meanwhile). */
const CONSUMER_EXPIRES_MS = 4000;
/** A consumer that has sent nothing for this long while connected is made again. */
const CONSUMER_SILENCE_MS = 6000;

/**
 * Cluster mode's log: a command is published to the JetStream stream, every replica (this one
 * too) consumes the stream in order and applies each entry, and the replica that published a
 * command answers with the outcome of its own apply: all replicas agree on every outcome. The
 * stream sequence is the command's sequence number (X-Memdb-Seq).
 */
export class NatsLog extends CommandLog {
  private readonly logger = new Logger('Cluster');
  private nc: NatsConnection | undefined;
  private js: JetStreamClient | undefined;
  private jsm: JetStreamManager | undefined;
  /** Commands this replica published, by message id, until applied here. */
  private readonly waiting = new Map<string, Waiting>();
  /** The stream's last sequence as this replica last heard of it. */
  private lastSeq = 0;
  private consuming: Promise<void> | undefined;
  /** Where commands larger than a message go (created with the stream, on first use). */
  private objects: Promise<ObjectStore> | undefined;
  private stopping = false;
  state: NatsState = 'disconnected';
  /** The cluster's snapshots (object store), once connected. */
  private snapshots: ClusterSnapshots | undefined;
  /** This replica tries to write a snapshot once it has applied this entry. */
  private nextSnapshotAt: number;
  private snapshotting: Promise<void> | undefined;
  /**
   * Answers kept for Idempotency-Key: each `answer` entry is imported as it is applied, and
   * snapshots carry them all.
   */
  answers: KeptAnswers | undefined;

  constructor(
    machine: StateMachine,
    readonly options: ClusterOptions,
  ) {
    super(machine);
    this.nextSnapshotAt = options.snapshotEvery;
  }

  override get sequencesItself(): boolean {
    return true;
  }

  get subject(): string {
    return `${this.options.stream}.commands`;
  }

  /** The stream's last sequence as last heard of (GET /api/v1/cluster). */
  get streamLastSeq(): number {
    return Math.max(this.lastSeq, this.machine.appliedSeq);
  }

  /**
   * Connects, makes sure the stream exists with these settings, and applies the stream from
   * its start. Resolves once this replica has applied what the stream held when it started.
   * @throws StreamMismatchError, or the connection's error
   */
  async start(): Promise<void> {
    const { servers, stream } = this.options;
    try {
      this.nc = await connect({
        servers: [...servers],
        name: this.options.replicaName,
        maxReconnectAttempts: -1,
      });
    } catch (error) {
      throw new Error(
        `cannot reach NATS at ${servers.join(',')} (NATS_URL): ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    this.state = 'connected';
    void this.watchStatus(this.nc);
    this.jsm = await jetstreamManager(this.nc);
    this.js = jetstream(this.nc);
    let last: number;
    let created: string;
    try {
      ({ last, created } = await this.ensureStream());
    } catch (error) {
      // Refused at start: nothing may keep the process (or a test) alive.
      await this.nc.close().catch(() => undefined);
      this.state = 'disconnected';
      throw error;
    }
    this.lastSeq = last;
    this.snapshots = new ClusterSnapshots(this.nc, this.jsm, {
      ...this.options,
      streamCreated: created,
    });
    // The newest snapshot first, then the stream after it.
    const snapshot = await this.snapshots.newest(last);
    if (snapshot !== undefined) this.loadSnapshot(snapshot);
    this.logger.log(
      `Replica ${this.options.replicaName}: stream '${stream}' on ${servers.join(',')}, ${last - this.machine.appliedSeq} entries to apply${snapshot === undefined ? '' : ` after snapshot ${snapshot.seq}`}`,
    );
    // As long as it takes (the longest timer Node allows: about 24 days).
    const caughtUp = this.waitFor(last, 2 ** 31 - 1);
    this.consuming = this.consume();
    await caughtUp;
  }

  /** Stops consuming and closes the connection; waiting writes get 503. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const [, waiting] of this.waiting) {
      waiting.reject(new StorageUnavailableError('the replica is shutting down'));
    }
    this.waiting.clear();
    await this.nc?.close().catch(() => undefined);
    await this.consuming?.catch(() => undefined);
    await this.snapshotting;
  }

  /**
   * Publishes a command and resolves with the outcome of its apply on this replica.
   * @throws WriteUnconfirmedError when no outcome comes within WRITE_TIMEOUT_MS (the write may
   *   or may not have happened), StorageUnavailableError when the stream cannot be reached
   */
  override submit(command: Command, idempotencyId?: string): Promise<Applied> {
    if (this.stopped !== undefined) throw this.stopped;
    const js = this.js;
    if (js === undefined || this.state !== 'connected') {
      throw new StorageUnavailableError('the replica is not connected to NATS');
    }
    // A repeat of an Idempotency-Key request gets the same id, so the stream drops it (within
    // its duplicate window) through whichever replica it comes.
    const id = idempotencyId ?? randomUUID();
    const payload = JSON.stringify(command);
    // A large command (a bulk write, a restore) also has to be stored, read back and built by
    // every replica: it gets a millisecond more per 10 kB (10 s more for 100 MB).
    const timeoutMs = this.options.writeTimeoutMs + Math.floor(payload.length / BYTES_PER_EXTRA_MS);
    return new Promise<Applied>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new WriteUnconfirmedError(timeoutMs));
      }, timeoutMs);
      this.waiting.set(id, {
        resolve: (applied) => {
          clearTimeout(timer);
          resolve(applied);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.publish(js, id, payload).then(
        (ack) => {
          this.lastSeq = Math.max(this.lastSeq, ack.seq);
          if (ack.duplicate) {
            // Applied once already, as entry ack.seq: never again; its answer is the first one.
            const waiting = this.waiting.get(id);
            this.waiting.delete(id);
            waiting?.reject(new IdempotencyKeyExpiredError(ack.seq));
          }
        },
        (error: unknown) => {
          const waiting = this.waiting.get(id);
          this.waiting.delete(id);
          waiting?.reject(
            new StorageUnavailableError(
              `the command could not be published to NATS (${error instanceof Error ? error.message : String(error)})`,
            ),
          );
        },
      );
    });
  }

  /**
   * Publishes a command's JSON; one larger than the server's max_payload goes to the object
   * store first, and the log carries its name (every replica reads it back before applying).
   */
  private async publish(js: JetStreamClient, id: string, payload: string) {
    const options = { msgID: id, timeout: this.options.writeTimeoutMs };
    const limit = (this.nc?.info?.max_payload ?? 1024 * 1024) - MESSAGE_OVERHEAD;
    if (Buffer.byteLength(payload) <= limit) return js.publish(this.subject, payload, options);
    const objects = await this.objectStore();
    await objects.putBlob({ name: id }, Buffer.from(payload));
    const reference: LargeCommand = { v: 1, op: 'stored', name: id };
    return js.publish(this.subject, JSON.stringify(reference), options);
  }

  /** The object store of large commands, `<NATS_STREAM>-commands`. */
  private objectStore(): Promise<ObjectStore> {
    this.objects ??= new Objm(this.nc!).create(`${this.options.stream}-commands`, {
      storage: 'file' as never,
      replicas: this.options.replicas,
    });
    // A failed creation is tried again by the next large command.
    this.objects.catch(() => (this.objects = undefined));
    return this.objects;
  }

  /** The command an entry stands for: itself, or the large one it names. */
  private async commandOf(seq: number, entry: Command | LargeCommand): Promise<Command> {
    if ((entry as { op?: unknown }).op !== 'stored') return entry as Command;
    const { name } = entry as LargeCommand;
    let bytes: Uint8Array | null = null;
    // Reading it may fail while NATS elects a leader: tried again for a while, in order.
    for (let attempt = 0; ; attempt++) {
      try {
        bytes = await (await this.objectStore()).getBlob(name);
        break;
      } catch (error) {
        if (attempt >= 30 || this.stopping) throw error;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
    if (bytes === null) {
      // Gone (purged by hand?): applying without it would make this replica differ.
      const error = new UnappliableEntryError(
        seq,
        `the command stored as '${name}' is missing from the object store`,
      );
      this.halt(error);
      throw error;
    }
    return JSON.parse(Buffer.from(bytes).toString('utf8')) as Command;
  }

  /**
   * Puts an answer kept for Idempotency-Key on the stream, so every replica keeps it. Its loss
   * (NATS down) only means a repeat through another replica gets IDEMPOTENCY_KEY_EXPIRED.
   */
  publishAnswer(answer: unknown): void {
    const js = this.js;
    if (js === undefined || this.state !== 'connected') return;
    void this.publish(js, randomUUID(), JSON.stringify({ v: 1, op: 'answer', answer })).catch(
      () => undefined,
    );
  }

  /** Publishes a no-op and resolves once this replica has applied it (a strong read). */
  async barrier(): Promise<void> {
    await this.submit({ v: 1, op: 'barrier' });
  }

  /**
   * Creates the stream if missing; refuses one with other settings.
   * @returns its last sequence and when it was created
   */
  private async ensureStream(): Promise<{ last: number; created: string }> {
    const jsm = this.jsm!;
    const { stream, replicas, duplicateWindowMs } = this.options;
    const wanted: Partial<StreamConfig> & { name: string; duplicate_window: number } = {
      name: stream,
      subjects: [this.subject],
      storage: 'file' as StreamConfig['storage'],
      num_replicas: replicas,
      duplicate_window: duplicateWindowMs * NANOS_PER_MS,
    };
    let info;
    try {
      info = await jsm.streams.info(stream);
    } catch (error) {
      if (!/stream not found/i.test(String((error as Error).message))) throw error;
      info = await jsm.streams.add(wanted);
      this.logger.log(`Created the stream '${stream}' (${replicas} replicas, file storage)`);
      return { last: info.state.last_seq, created: info.created };
    }
    const config = info.config;
    const differences: string[] = [];
    if (JSON.stringify(config.subjects) !== JSON.stringify(wanted.subjects))
      differences.push(
        `subjects ${JSON.stringify(config.subjects)}, wanted ${JSON.stringify(wanted.subjects)}`,
      );
    if (config.storage !== wanted.storage)
      differences.push(`storage ${config.storage}, wanted file`);
    if (config.num_replicas !== replicas)
      differences.push(`replicas ${config.num_replicas}, wanted ${replicas} (NATS_REPLICAS)`);
    if (config.duplicate_window < wanted.duplicate_window)
      differences.push(
        `duplicate window ${config.duplicate_window / NANOS_PER_MS} ms, wanted at least ${duplicateWindowMs} ms (IDEMPOTENCY_TTL_MS)`,
      );
    if (differences.length > 0) throw new StreamMismatchError(stream, differences);
    return { last: info.state.last_seq, created: info.created };
  }

  /**
   * Applies the stream in order, from the first entry this replica has not applied. The
   * consumer is made again from there whenever it stops delivering: nats.js's ordered consumer
   * does not recover by itself when the server holding it dies (it retries a consumer info
   * that times out forever), nor when creating it fails.
   */
  private async consume(): Promise<void> {
    while (!this.stopping && this.stopped === undefined) {
      try {
        if (await this.consumeOnce()) return;
      } catch (error) {
        if (this.stopping) return;
        this.logger.warn(`The stream consumer failed (${String(error)}): making it again`);
      }
      if (!this.stopping) await new Promise((resolve) => setTimeout(resolve, CONSUMER_RETRY_MS));
    }
  }

  /** @returns true when consuming is over (stopping, or an entry could not be applied) */
  private async consumeOnce(): Promise<boolean> {
    const consumer = await this.js!.consumers.get(this.options.stream, {
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: this.machine.appliedSeq + 1,
    });
    // The server answers a waiting pull with a heartbeat every CONSUMER_EXPIRES_MS / 2: silence
    // for longer than CONSUMER_SILENCE_MS while connected means the consumer is gone.
    const messages = await consumer.consume({ expires: CONSUMER_EXPIRES_MS });
    let heard = Date.now();
    const watchdog = setInterval(() => {
      if (this.state !== 'connected') heard = Date.now();
      else if (Date.now() - heard > CONSUMER_SILENCE_MS) {
        this.logger.warn(
          `The stream consumer has been silent for ${CONSUMER_SILENCE_MS} ms (its server died?): making it again from entry ${this.machine.appliedSeq + 1}`,
        );
        clearInterval(watchdog);
        void messages.close();
      }
    }, CONSUMER_SILENCE_MS / 4);
    void (async () => {
      for await (const status of messages.status()) {
        if (status.type === 'heartbeat' || status.type === 'discard') heard = Date.now();
      }
    })();
    try {
      return await this.applyMessages(messages, () => (heard = Date.now()));
    } finally {
      clearInterval(watchdog);
    }
  }

  /** @returns true when consuming is over (stopping, or an entry could not be applied) */
  private async applyMessages(messages: ConsumerMessages, onMessage: () => void): Promise<boolean> {
    for await (const message of messages) {
      onMessage();
      if (this.stopping) return true;
      const seq = message.seq;
      this.lastSeq = Math.max(this.lastSeq, seq + message.info.pending);
      // Entries before this one were purged: they are in a snapshot (or this throws).
      if (seq > this.machine.appliedSeq + 1) await this.reloadBefore(seq);
      if (seq <= this.machine.appliedSeq) continue;
      let applied: Applied;
      try {
        const command = shareTimestamps(
          await this.commandOf(seq, message.json<Command | LargeCommand>()),
        );
        applied = this.applyNow(seq, command);
        if (command.op === 'answer') this.answers?.import([command.answer]);
      } catch (error) {
        // applyNow stopped the log (it logs and tells main.ts): never applied past this entry.
        this.rejectAll(error);
        return true;
      }
      const id = message.headers?.get('Nats-Msg-Id');
      if (id !== undefined && id !== '') {
        const waiting = this.waiting.get(id);
        if (waiting !== undefined) {
          this.waiting.delete(id);
          waiting.resolve(applied);
        }
      }
      this.snapshotIfDue();
    }
    return this.stopping;
  }

  /** Starts this round's snapshot attempt once the applied entry reaches it. */
  private snapshotIfDue(): void {
    if (this.machine.appliedSeq < this.nextSnapshotAt || this.snapshotting !== undefined) return;
    if (this.stopping || this.stopped !== undefined) return;
    this.snapshotting = this.snapshot().finally(() => {
      this.snapshotting = undefined;
      // Entries applied meanwhile may have reached the next round already.
      this.snapshotIfDue();
    });
  }

  /** Replaces this replica's state with a snapshot's, and wakes requests waiting for it. */
  private loadSnapshot(snapshot: StoredSnapshot): void {
    this.machine.load(snapshot.tables, snapshot.seq);
    this.continueAfter(snapshot.seq);
    // Nothing before the snapshot can be resumed exactly on this replica.
    this.changes?.reset(snapshot.seq, 'too_old');
    if (snapshot.answers !== undefined) this.answers?.import(snapshot.answers);
    const every = this.options.snapshotEvery;
    this.nextSnapshotAt = (Math.floor(snapshot.seq / every) + 1) * every;
    this.notify();
    this.logger.log(`Loaded snapshot ${snapshot.name} (entry ${snapshot.seq})`);
  }

  /**
   * The stream no longer holds the entries before `seq` (purged after a snapshot while this
   * replica was behind): loads the newest snapshot, which must reach at least `seq - 1`.
   * @throws UnappliableEntryError (and stops) when no snapshot covers the gap
   */
  private async reloadBefore(seq: number): Promise<void> {
    const from = this.machine.appliedSeq + 1;
    this.logger.warn(
      `Entries ${from} to ${seq - 1} are no longer in the stream (purged after a snapshot): reloading from the newest snapshot`,
    );
    const snapshot = await this.snapshots!.newest();
    if (snapshot === undefined || snapshot.seq < seq - 1) {
      const error = new UnappliableEntryError(
        seq,
        `entries ${from} to ${seq - 1} were purged from the stream and no snapshot holds them (newest: ${snapshot?.seq ?? 'none'})`,
      );
      this.halt(error);
      this.rejectAll(error);
      throw error;
    }
    this.loadSnapshot(snapshot);
  }

  /**
   * Every SNAPSHOT_EVERY entries: the replica that takes the round's lease writes a snapshot
   * of its state to the object store, then purges the stream below NATS_RETAIN entries before
   * it. The others go on; a failure only delays the snapshot.
   */
  private async snapshot(): Promise<void> {
    const snapshots = this.snapshots!;
    const every = this.options.snapshotEvery;
    const round = Math.floor(this.machine.appliedSeq / every) * every;
    this.nextSnapshotAt = round + every;
    try {
      if (!(await snapshots.take(round))) return;
      const started = performance.now();
      // The state at one entry: copied without an await between.
      const seq = this.machine.appliedSeq;
      const tables = this.machine.copyTables();
      const answers = this.answers?.export();
      const bytes = await snapshots.write(tables, seq, answers);
      await snapshots.release(round);
      this.logger.log(
        `Wrote snapshot ${seq} (${tables.length} tables, ${bytes} bytes) in ${Math.round(performance.now() - started)} ms`,
      );
      await snapshots.purge(seq, () => this.objectStore());
    } catch (error) {
      if (this.stopping) return;
      this.logger.warn(`The snapshot of round ${round} failed (${String(error)}): trying again`);
      // Tried again in a while, whether or not more entries come.
      this.nextSnapshotAt = round;
      setTimeout(() => this.snapshotIfDue(), SNAPSHOT_RETRY_MS).unref();
    }
  }

  private rejectAll(error: unknown): void {
    for (const [, waiting] of this.waiting) waiting.reject(error);
    this.waiting.clear();
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      switch (status.type) {
        case 'disconnect':
          this.state = 'disconnected';
          this.logger.warn('Lost the connection to NATS: writes and strong reads get 503');
          break;
        case 'reconnecting':
          this.state = 'reconnecting';
          break;
        case 'reconnect':
          this.state = 'connected';
          this.logger.log('Reconnected to NATS');
          break;
        default:
          break;
      }
    }
  }
}

/**
 * A command parsed from the stream has a string of its own for every record's created_at and
 * updated_at, where the replica that built it shared one per write: shared again here (about
 * 80 bytes of heap per record inserted, measured on 1M records).
 */
function shareTimestamps(command: Command): Command {
  if (command.op !== 'insert') return command;
  let last: string | undefined;
  for (const record of command.records as unknown as { created_at: string; updated_at: string }[]) {
    if (record.created_at === last) record.created_at = last;
    else last = record.created_at;
    if (record.updated_at === last) record.updated_at = last;
  }
  return command;
}
