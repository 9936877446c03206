/**
 * The clients of bench/changes.ts, in a process of their own (forked with an IPC channel and
 * pinned to CPU 1, away from the server): `subscribers` holds SSE subscribers of the change feed,
 * `prober` makes sequential timed writes. Both answer the messages of `Request` below with one
 * `Reply` each.
 *
 * A subscriber is a raw `http.get` with `Accept: text/event-stream` (one socket each) whose
 * frames are split on blank lines and read line by line as the README's SSE format says: the
 * `event:` line, then `id: <seq>.<i>`. Every change event is counted in the window it falls in,
 * checked to come in position order, and for the prober's table (`probe`) timed on receipt.
 * Times are process.hrtime (CLOCK_MONOTONIC, the same clock in every process of the machine),
 * in ms.
 */
import { Agent, get, request, type ClientRequest, type IncomingMessage } from 'node:http';

/** The table the prober writes to: its events are timed by every subscriber. */
export const PROBE_TABLE = 'probe';
const PROBE_MARK = `"table":"${PROBE_TABLE}"`;

export type Request =
  | { readonly type: 'open'; readonly url: string; readonly count: number }
  | { readonly type: 'close' }
  | { readonly type: 'window'; readonly after: number }
  | { readonly type: 'drain'; readonly through: number; readonly timeoutMs: number }
  | { readonly type: 'start'; readonly url: string; readonly intervalMs: number }
  | { readonly type: 'stop' };

/** What the subscribers saw of one window of positions (after, through]. */
export interface WindowReport {
  /** Change events each subscriber got in the window. */
  readonly counts: number[];
  /** ms from the drain request until every subscriber had the window's last event. */
  readonly drainMs: number;
  readonly drained: boolean;
  /** Receipt times of the prober's events, by sequence: one time per subscriber that got it. */
  readonly receipts: Record<number, number[]>;
  /** Since the subscribers were opened: events out of position order, overflows, resets, ends. */
  readonly outOfOrder: number;
  readonly overflows: number;
  readonly resets: number;
  readonly ended: number;
}

/** A prober's write: its sequence (X-Memdb-Seq) and when it was sent and answered (ms). */
export interface ProbeWrite {
  readonly seq: number;
  readonly sentAt: number;
  readonly answeredAt: number;
}

export type Reply =
  | { readonly type: 'opened'; readonly count: number; readonly ms: number }
  | { readonly type: 'closed' }
  | { readonly type: 'window' }
  | ({ readonly type: 'drained' } & WindowReport)
  | { readonly type: 'started' }
  | { readonly type: 'stopped'; readonly writes: ProbeWrite[]; readonly failed: number };

export const now = () => Number(process.hrtime.bigint()) / 1e6;

const reply = (message: Reply) => process.send!(message);

/** One SSE subscriber's state. */
class Subscriber {
  /** Position of the last change event (seq, then index). */
  lastSeq = 0;
  lastI = -1;
  count = 0;
  receipts: [number, number][] = [];
  outOfOrder = 0;
  overflows = 0;
  resets = 0;
  ended = false;
  private carry = '';
  private request?: ClientRequest;

  constructor(
    private readonly window: { after: number; through: number },
    private readonly progress: () => void,
  ) {}

  /** Resolves once the feed's opening comment has arrived. */
  open(url: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.request = get(
        url,
        { agent: false, headers: { accept: 'text/event-stream' } },
        (res: IncomingMessage) => {
          if (res.statusCode !== 200) {
            reject(new Error(`GET ${url}: ${res.statusCode}`));
            res.resume();
            return;
          }
          res.once('data', () => resolve());
          res.on('data', (chunk: Buffer) => this.read(chunk.toString('latin1')));
          res.on('close', () => (this.ended = true));
        },
      );
      this.request.on('error', (error) => (this.ended ? undefined : reject(error)));
    });
  }

  close(): void {
    this.ended = true;
    this.request?.destroy();
  }

  /** Reads the whole frames of `chunk` (with what was left of the previous one). */
  private read(chunk: string): void {
    const receivedAt = now();
    const text = this.carry === '' ? chunk : this.carry + chunk;
    // Only frames of chunks holding a probe event are searched for its table.
    const probed = text.includes(PROBE_MARK);
    let start = 0;
    for (;;) {
      const end = text.indexOf('\n\n', start);
      if (end === -1) break;
      this.frame(text, start, end, probed, receivedAt);
      start = end + 2;
    }
    this.carry = start === text.length ? '' : text.slice(start);
    this.progress();
  }

  /** One frame, text[start, end): `event: <type>\nid: <pos>\ndata: <json>`, or a comment. */
  private frame(text: string, start: number, end: number, probed: boolean, at: number): void {
    if (text.startsWith('event: change\n', start)) {
      const idLine = start + 'event: change\n'.length;
      if (!text.startsWith('id: ', idLine)) throw new Error('a change event without its id line');
      let k = idLine + 4;
      let seq = 0;
      for (let c = text.charCodeAt(k); c >= 48 && c <= 57; c = text.charCodeAt(++k))
        seq = seq * 10 + c - 48;
      let i = 0;
      for (let c = text.charCodeAt(++k); c >= 48 && c <= 57; c = text.charCodeAt(++k))
        i = i * 10 + c - 48;
      if (seq < this.lastSeq || (seq === this.lastSeq && i <= this.lastI)) this.outOfOrder++;
      this.lastSeq = seq;
      this.lastI = i;
      const { after, through } = this.window;
      if (seq > after && seq <= through) {
        this.count++;
        if (probed) {
          const mark = text.indexOf(PROBE_MARK, k);
          if (mark !== -1 && mark < end) this.receipts.push([seq, at]);
        }
      }
    } else if (text.startsWith('event: overflow\n', start)) this.overflows++;
    else if (text.startsWith('event: reset\n', start)) this.resets++;
    // `event: table` and `:` comments (the opening one, heartbeats) are not counted.
  }
}

/** The subscribers of this process, and their current window. */
function subscribers(): (message: Request) => Promise<void> {
  let all: Subscriber[] = [];
  const window = { after: Infinity, through: Infinity };
  let waiting: (() => void) | undefined;
  const progress = () => waiting?.();
  return async (message) => {
    switch (message.type) {
      case 'open': {
        const started = now();
        const opened = Array.from(
          { length: message.count },
          () => new Subscriber(window, progress),
        );
        // A few at a time: 200 connections at once would queue in the server's backlog.
        for (let i = 0; i < opened.length; i += 20)
          await Promise.all(opened.slice(i, i + 20).map((s) => s.open(message.url)));
        all = all.concat(opened);
        reply({ type: 'opened', count: all.length, ms: now() - started });
        break;
      }
      case 'close':
        for (const s of all) s.close();
        all = [];
        reply({ type: 'closed' });
        break;
      case 'window':
        window.after = message.after;
        window.through = Infinity;
        for (const s of all) {
          s.count = 0;
          s.receipts = [];
        }
        reply({ type: 'window' });
        break;
      case 'drain': {
        window.through = message.through;
        const started = now();
        const done = () => all.every((s) => s.ended || s.lastSeq >= message.through);
        const drained = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(done()), message.timeoutMs);
          waiting = () => {
            if (!done()) return;
            clearTimeout(timer);
            resolve(true);
          };
          waiting();
        });
        waiting = undefined;
        const receipts: Record<number, number[]> = {};
        for (const s of all) for (const [seq, at] of s.receipts) (receipts[seq] ??= []).push(at);
        const sum = (pick: (s: Subscriber) => number) => all.reduce((n, s) => n + pick(s), 0);
        reply({
          type: 'drained',
          counts: all.map((s) => s.count),
          drainMs: now() - started,
          drained: drained && all.every((s) => !s.ended),
          receipts,
          outOfOrder: sum((s) => s.outOfOrder),
          overflows: sum((s) => s.overflows),
          resets: sum((s) => s.resets),
          ended: sum((s) => (s.ended ? 1 : 0)),
        });
        break;
      }
      default:
        throw new Error(`subscribers: unexpected ${message.type}`);
    }
  };
}

/** One POST of a small record; resolves with its X-Memdb-Seq, or undefined if it failed. */
function post(url: string, agent: Agent, body: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = request(
      url,
      { method: 'POST', agent, headers: { 'content-type': 'application/json' } },
      (res) => {
        res.resume();
        const seq = Number(res.headers['x-memdb-seq']);
        resolve(res.statusCode === 201 && seq > 0 ? seq : undefined);
      },
    );
    req.on('error', () => resolve(undefined));
    req.end(body);
  });
}

/** Sequential writes to the probe table, one every `intervalMs` at most, until stopped. */
function prober(): (message: Request) => Promise<void> {
  let running: Promise<void> | undefined;
  let stopping = false;
  let writes: ProbeWrite[] = [];
  let failed = 0;
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const loop = async (url: string, intervalMs: number) => {
    for (let n = 0; !stopping; n++) {
      const sentAt = now();
      const seq = await post(url, agent, JSON.stringify({ n, sent_at: sentAt }));
      const answeredAt = now();
      if (seq === undefined) failed++;
      else writes.push({ seq, sentAt, answeredAt });
      const wait = intervalMs - (answeredAt - sentAt);
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
  };
  return async (message) => {
    switch (message.type) {
      case 'start':
        stopping = false;
        writes = [];
        failed = 0;
        running = loop(message.url, message.intervalMs);
        reply({ type: 'started' });
        break;
      case 'stop':
        stopping = true;
        await running;
        reply({ type: 'stopped', writes, failed });
        break;
      default:
        throw new Error(`prober: unexpected ${message.type}`);
    }
  };
}

if (require.main === module) {
  const role = process.argv[2];
  const handle = role === 'prober' ? prober() : subscribers();
  let queue = Promise.resolve();
  process.on('message', (message: Request) => {
    queue = queue.then(() => handle(message));
    queue.catch((error: unknown) => {
      console.error(`changes-clients (${role}):`, error);
      process.exit(1);
    });
  });
  process.on('disconnect', () => process.exit(0));
}
