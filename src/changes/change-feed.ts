import { HttpStatus } from '@nestjs/common';
import { Readable } from 'node:stream';
import { ApiProblemException } from '../common/problems/api-problem.exception';
import type { Change, ChangeLog, ChangesRead, Position } from '../database/changes/change-log';

/** Settings of the change feed (CHANGES_*). */
export interface ChangeFeedOptions {
  readonly heartbeatMs: number;
  /** Unsent bytes past which a slow subscriber's stream is ended (CHANGES_BUFFER_BYTES). */
  readonly bufferBytes: number;
  /** Open feeds and long-polls at most (CHANGES_MAX_SUBSCRIBERS). */
  readonly maxSubscribers: number;
}

/** Changes read per turn of the event loop while a feed catches up. */
const BATCH = 1000;
/** Sends to all streams at most this often (ms). */
const FLUSH_MS = 20;

const POSITION = /^\s*(\d{1,16})(?:\.(\d{1,9}))?\s*$/;

/** A resume point (`<seq>.<i>` or `<seq>`), or undefined when it is not one. */
export function parsePosition(text: string): Position | undefined {
  const match = POSITION.exec(text);
  if (match === null) return undefined;
  const seq = Number(match[1]);
  if (!Number.isSafeInteger(seq)) return undefined;
  return { seq, i: match[2] === undefined ? Infinity : Number(match[2]) };
}

/** The text of a position: `<seq>.<i>`, or `<seq>` after a whole entry. */
export function positionText({ seq, i }: Position): string {
  return i === Infinity ? String(seq) : `${seq}.${i}`;
}

/** The reset event's data. */
export function resetData(reset: NonNullable<ChangesRead['reset']>) {
  return {
    reason: reset.reason,
    oldest: String(reset.oldest),
    continue_from: String(reset.continueFrom),
  };
}

interface Batch {
  readonly read: ChangesRead;
  readonly bytes: Buffer | undefined;
}

/** Which changes a subscriber gets, and what `matches` says of each. */
export interface ChangeFilter {
  /** Names the filter when subscribers with equal keys get the same events (no record filter). */
  readonly key?: string;
  readonly accept: (change: Change) => boolean;
  /** The `matches` field of a record change (single-table filters), or undefined for none. */
  readonly matches?: (change: Change) => boolean;
}

/** A change's SSE frame; made once per change for every subscriber without `matches`. */
function frameOf(change: Change, filter: ChangeFilter): string {
  if (filter.matches === undefined || change.event !== 'change') {
    return (change.frame ??= `event: ${change.event}\nid: ${change.pos}\ndata: ${change.data}\n\n`);
  }
  return `event: change\nid: ${change.pos}\ndata: ${changeData(change, filter)}\n\n`;
}

/** The data of a change as sent: its JSON, with `matches` when a filter says it. */
export function changeData(change: Change, filter: ChangeFilter): string {
  if (filter.matches === undefined || change.event !== 'change') return change.data;
  return `${change.data.slice(0, -1)},"matches":${filter.matches(change)}}`;
}

/**
 * The open feeds and long-polls of this server: counted against CHANGES_MAX_SUBSCRIBERS, and
 * all ended at once at shutdown.
 */
export class ChangeFeeds {
  private readonly open = new Set<() => void>();
  private closed = false;
  /** Each open SSE stream's send step: run together, once per flush. */
  private readonly pumps = new Set<(shared?: boolean) => boolean>();
  private flushScheduled = false;
  /** Batches read during one pass, by filter and position. */
  private readonly batches = new Map<string, Batch>();
  private lastFlush = 0;

  constructor(
    private readonly log: ChangeLog,
    readonly options: ChangeFeedOptions,
  ) {
    log.subscribe(() => {
      if (this.pumps.size > 0) this.schedule();
    });
  }

  /**
   * Sends what is new to every open stream in one pass: at once when the last pass was more
   * than FLUSH_MS ago, otherwise FLUSH_MS after it. Under many writes a subscriber gets one
   * chunk (one socket write) per pass rather than one per write, which is what the cost of many
   * subscribers is made of; a lone write still goes out on the next turn.
   */
  private schedule(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    const wait = this.lastFlush + FLUSH_MS - performance.now();
    const flush = () => {
      this.flushScheduled = false;
      this.lastFlush = performance.now();
      let more = false;
      this.batches.clear();
      for (const pump of this.pumps) more = pump() || more;
      this.batches.clear();
      // A stream more than a batch behind: the rest on the next pass, others served meanwhile.
      if (more) this.schedule();
    };
    if (wait <= 0) setImmediate(flush);
    else setTimeout(flush, wait);
  }

  get count(): number {
    return this.open.size;
  }

  /**
   * Counts a subscriber in; `end` is called at shutdown. @returns its release
   * @throws ApiProblemException 503 TOO_MANY_SUBSCRIBERS past CHANGES_MAX_SUBSCRIBERS
   */
  admit(end: () => void): () => void {
    if (this.closed) {
      throw new ApiProblemException(
        HttpStatus.SERVICE_UNAVAILABLE,
        'STORAGE_UNAVAILABLE',
        'The service is shutting down',
        undefined,
        { 'Retry-After': '1' },
      );
    }
    if (this.open.size >= this.options.maxSubscribers) {
      throw new ApiProblemException(
        HttpStatus.SERVICE_UNAVAILABLE,
        'TOO_MANY_SUBSCRIBERS',
        `This server has ${this.options.maxSubscribers} change feeds open (CHANGES_MAX_SUBSCRIBERS): try again later or elsewhere`,
        undefined,
        { 'Retry-After': '5' },
      );
    }
    this.open.add(end);
    return () => this.open.delete(end);
  }

  /** What one read from a position gives, as SSE bytes (undefined when there is nothing). */
  private batchOf(position: Position, filter: ChangeFilter): Batch {
    const read = this.log.read(position, BATCH, filter.accept);
    let text = '';
    if (read.reset !== undefined)
      text += `event: reset\nid: ${read.reset.continueFrom}\ndata: ${JSON.stringify(resetData(read.reset))}\n\n`;
    for (const change of read.changes) text += frameOf(change, filter);
    return { read, bytes: text === '' ? undefined : Buffer.from(text) };
  }

  /** Ends every feed and long-poll now (shutdown) and admits no more. */
  closeAll(): void {
    this.closed = true;
    for (const end of [...this.open]) end();
    this.open.clear();
  }

  /**
   * An SSE body from `from` on: a reset first if `from` cannot be served exactly, then every
   * change passing `filter` as it is applied, a comment every CHANGES_HEARTBEAT_MS, and
   * `event: overflow` (then the end) once more than CHANGES_BUFFER_BYTES wait unsent.
   */
  stream(from: Position, filter: ChangeFilter): Readable {
    const { heartbeatMs, bufferBytes } = this.options;
    let position = from;
    /** The last position sent, for an overflow's resume point. */
    let sent = from;
    let ended = false;
    const body = new Readable({ read() {} });
    const end = () => {
      if (ended) return;
      ended = true;
      this.pumps.delete(pump);
      release();
      clearInterval(heartbeat);
      body.push(null);
    };
    /** @returns whether more changes wait (a whole batch was read) */
    const pump = (shared = true): boolean => {
      if (ended) return false;
      // Subscribers at one position with one filter get the same bytes: read and encoded
      // once per pass for all of them.
      const key =
        filter.key === undefined || !shared
          ? undefined
          : `${filter.key}@${position.seq}.${position.i}`;
      let batch = key === undefined ? undefined : this.batches.get(key);
      if (batch === undefined) {
        batch = this.batchOf(position, filter);
        if (key !== undefined) this.batches.set(key, batch);
      }
      const { read, bytes } = batch;
      if (read.reset !== undefined) sent = { seq: read.reset.continueFrom, i: Infinity };
      const last = read.changes.at(-1);
      if (last !== undefined) sent = last;
      position = read.next;
      if (bytes !== undefined) body.push(bytes);
      if (body.readableLength > bufferBytes) {
        body.push(
          `event: overflow\ndata: ${JSON.stringify({ resume_from: positionText(sent) })}\n\n`,
        );
        end();
        return false;
      }
      return read.changes.length === BATCH;
    };
    const release = this.admit(end);
    this.pumps.add(pump);
    const heartbeat = setInterval(() => body.push(': heartbeat\n\n'), heartbeatMs);
    heartbeat.unref();
    body.once('close', end);
    // An opening comment: proxies and clients see the stream is live at once.
    body.push(': memdb change feed\n\n');
    if (pump(false)) this.schedule();
    return body;
  }

  /**
   * A long-poll: the changes after `from` (and a reset if it cannot be exact) as soon as there
   * is at least one, or none after `waitMs`; ends early at shutdown or when `cancel` aborts.
   */
  async poll(
    from: Position,
    filter: ChangeFilter,
    limit: number,
    waitMs: number,
    cancel: AbortSignal,
  ): Promise<ChangesRead> {
    const first = this.log.read(from, limit, filter.accept);
    if (first.changes.length > 0 || first.reset !== undefined || waitMs === 0) return first;
    let position = first.next;
    return new Promise<ChangesRead>((resolve) => {
      let done = false;
      const finish = (read?: ChangesRead) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        unsubscribe();
        release();
        cancel.removeEventListener('abort', abandon);
        resolve(read ?? { changes: [], next: position });
      };
      const abandon = () => finish();
      const check = () => {
        const read = this.log.read(position, limit, filter.accept);
        position = read.next;
        if (read.changes.length > 0 || read.reset !== undefined) finish(read);
      };
      const release = this.admit(() => finish());
      const unsubscribe = this.log.subscribe(check);
      const timer = setTimeout(abandon, waitMs);
      cancel.addEventListener('abort', abandon, { once: true });
    });
  }
}
