import { OldestFirst, type Queued } from '../common/oldest-first';

/** Response headers by lower-case name, as Node gives them (`set-cookie` may be a list). */
export type AnswerHeaders = Readonly<Record<string, string | readonly string[]>>;

/**
 * A stored answer, JSON-serialisable: what `export()` gives, `import()` takes and `onStored`
 * receives. Neither the API key nor the client address nor the Idempotency-Key is kept, only
 * their SHA-256 digests.
 */
export interface StoredAnswer {
  /** SHA-256 (hex) of the scope: the API key presented, or the client address without keys. */
  readonly scope: string;
  /** SHA-256 (hex) of the Idempotency-Key. */
  readonly key: string;
  /** SHA-256 (hex) of the request's method, path and body: what a repeat must match. */
  readonly request: string;
  /** The answer's X-Memdb-Seq; 0 without one. The lowest are forgotten first past the size bound. */
  readonly seq: number;
  /** When it was stored, epoch milliseconds; it is forgotten `ttlMs` later. */
  readonly storedAt: number;
  readonly status: number;
  /** The headers replayed, by lower-case name (per-request ones such as X-Request-Id left out). */
  readonly headers: AnswerHeaders;
  /** The body as sent, base64. */
  readonly body: string;
}

/** The answer of a request that ran, to be stored (see `complete`). */
export interface FinalAnswer {
  readonly status: number;
  readonly headers: AnswerHeaders;
  readonly body: Buffer;
}

/** A request that may run: hand it back to `complete` or `release`. */
export interface Attempt {
  readonly scope: string;
  readonly key: string;
  readonly request: string;
  readonly startedAt: number;
}

/** What to do with a request that carries an Idempotency-Key. */
export type Decision =
  /** First time (or forgotten): run it, then `complete` or `release` the attempt. */
  | { readonly outcome: 'run'; readonly attempt: Attempt }
  /** Answered before: send this again, run nothing. */
  | { readonly outcome: 'replay'; readonly answer: FinalAnswer }
  /** The same request is still running. */
  | { readonly outcome: 'in-progress' }
  /** The key was used for another request (method, path or body). */
  | { readonly outcome: 'reused' };

/** What the store holds for a key. */
export type Lookup =
  | { readonly state: 'none' }
  | { readonly state: 'running'; readonly request: string }
  | { readonly state: 'stored'; readonly request: string; readonly answer: FinalAnswer };

export interface IdempotencyStoreOptions {
  /** How long an answer is replayed (and a running request blocks its key), in ms. */
  readonly ttlMs: number;
  /** Most bytes the stored answers may take (estimated); past it the oldest by seq go. */
  readonly maxBytes: number;
  /** The clock, epoch ms. @default Date.now */
  readonly now?: () => number;
}

interface Kept extends Queued {
  readonly id: string;
  readonly scope: string;
  readonly key: string;
  readonly request: string;
  readonly storedAt: number;
  readonly answer: FinalAnswer;
  readonly bytes: number;
}

const SEQ_HEADER = 'x-memdb-seq';
/** Map entries, digests and the object around them, beyond body and headers. */
const ENTRY_OVERHEAD_BYTES = 400;

/**
 * Whether an answer is kept for replay: every final answer except 5xx and 429, which say
 * "try again" (a lock timeout, storage unavailable, the rate limit); the key is released for
 * those, so a retry runs again.
 */
export function isStorable(status: number): boolean {
  return status < 500 && status !== 429;
}

/** The integer in an answer's X-Memdb-Seq header, 0 without one. */
export function seqOf(headers: AnswerHeaders): number {
  const value = headers[SEQ_HEADER];
  const text = Array.isArray(value) ? value[0] : value;
  return typeof text === 'string' && /^\d{1,16}$/.test(text) && Number.isSafeInteger(Number(text))
    ? Number(text)
    : 0;
}

function estimateBytes(answer: FinalAnswer): number {
  let bytes = ENTRY_OVERHEAD_BYTES + answer.body.length;
  for (const [name, value] of Object.entries(answer.headers)) {
    bytes += name.length + (Array.isArray(value) ? value.join('').length : String(value).length);
  }
  return bytes;
}

/**
 * The answers of requests sent with an Idempotency-Key, and the keys of those still running,
 * per scope. Plain (no Nest), so persistence can `export()` and `import()` it and listen to
 * `onStored`.
 *
 * Answers are forgotten `ttlMs` after they were stored, and early, oldest sequence first
 * (then first stored), once they take more than `maxBytes`. A forgotten key runs again.
 * JavaScript runs one request's `begin` at a time, so two requests with one key can never both
 * be told to run.
 */
export class IdempotencyStore {
  /** Called with every answer stored by `complete` (not by `import`), e.g. to journal it. */
  onStored?: (answer: StoredAnswer) => void;

  private readonly ttlMs: number;
  /** The most bytes stored answers may take; a larger answer is not kept. */
  readonly maxBytes: number;
  private readonly now: () => number;
  private readonly running = new Map<string, Attempt>();
  /** In the order they were stored, so the expired ones are at the front. */
  private readonly answers = new Map<string, Kept>();
  private readonly oldest = new OldestFirst<Kept>();
  private bytes = 0;
  private stored = 0;

  constructor(options: IdempotencyStoreOptions) {
    this.ttlMs = options.ttlMs;
    this.maxBytes = options.maxBytes;
    this.now = options.now ?? Date.now;
  }

  /** Stored answers and the bytes they are counted for; requests running with a key. */
  get stats(): { readonly answers: number; readonly bytes: number; readonly running: number } {
    this.expire(this.now());
    return { answers: this.answers.size, bytes: this.bytes, running: this.running.size };
  }

  /** What is held for `key` in `scope` (digests), as `begin` would see it. */
  lookup(scope: string, key: string): Lookup {
    const now = this.now();
    this.expire(now);
    const id = idOf(scope, key);
    const kept = this.answers.get(id);
    if (kept !== undefined && this.live(kept.storedAt, now))
      return { state: 'stored', request: kept.request, answer: kept.answer };
    const attempt = this.running.get(id);
    if (attempt !== undefined && this.live(attempt.startedAt, now))
      return { state: 'running', request: attempt.request };
    return { state: 'none' };
  }

  /**
   * Decides a request with `key` in `scope` whose method, path and body digest to `request`.
   * When the answer is `run`, the key is held (others get `in-progress`) until the attempt is
   * completed or released.
   */
  begin(scope: string, key: string, request: string): Decision {
    const found = this.lookup(scope, key);
    if (found.state !== 'none') {
      if (found.request !== request) return { outcome: 'reused' };
      return found.state === 'stored'
        ? { outcome: 'replay', answer: found.answer }
        : { outcome: 'in-progress' };
    }
    const attempt: Attempt = { scope, key, request, startedAt: this.now() };
    this.running.set(idOf(scope, key), attempt);
    return { outcome: 'run', attempt };
  }

  /**
   * The attempt's request was answered: keeps the answer for replay if it is storable
   * (`isStorable`) and fits `maxBytes`, else releases the key.
   * @returns whether it was stored
   */
  complete(attempt: Attempt, answer: FinalAnswer): boolean {
    const id = idOf(attempt.scope, attempt.key);
    // Released, or held too long and begun again by another request: not this attempt's key.
    if (this.running.get(id) !== attempt) return false;
    this.running.delete(id);
    const now = this.now();
    const kept = this.keep(id, attempt, answer, seqOf(answer.headers), now);
    if (kept === undefined) return false;
    this.onStored?.(toStored(kept));
    return true;
  }

  /** The attempt's request ended without an answer worth keeping: the key may run again. */
  release(attempt: Attempt): void {
    const id = idOf(attempt.scope, attempt.key);
    if (this.running.get(id) === attempt) this.running.delete(id);
  }

  /** Every live stored answer, oldest stored first. */
  export(): StoredAnswer[] {
    this.expire(this.now());
    return [...this.answers.values()].map(toStored);
  }

  /**
   * Loads answers (e.g. after a restart), oldest stored first; expired ones are skipped, and
   * of two for the same key the later stored wins. The size bound applies as usual.
   * `onStored` is not called.
   */
  import(answers: readonly StoredAnswer[]): void {
    const now = this.now();
    const sorted = [...answers].sort((a, b) => a.storedAt - b.storedAt);
    for (const answer of sorted) {
      if (!this.live(answer.storedAt, now)) continue;
      const { scope, key, request, seq, storedAt, status, headers } = answer;
      this.keep(
        idOf(scope, key),
        { scope, key, request, startedAt: storedAt },
        { status, headers, body: Buffer.from(answer.body, 'base64') },
        seq,
        storedAt,
      );
    }
  }

  private keep(
    id: string,
    { scope, key, request }: Attempt,
    answer: FinalAnswer,
    seq: number,
    storedAt: number,
  ): Kept | undefined {
    const bytes = estimateBytes(answer);
    if (!isStorable(answer.status) || bytes > this.maxBytes) return undefined;
    const previous = this.answers.get(id);
    if (previous !== undefined) this.forget(previous);
    const kept: Kept = {
      id,
      scope,
      key,
      request,
      storedAt,
      answer,
      bytes,
      seq,
      order: this.stored++,
      position: -1,
    };
    this.answers.set(id, kept);
    this.oldest.push(kept);
    this.bytes += bytes;
    while (this.bytes > this.maxBytes) this.forget(this.oldest.peek() as Kept);
    return kept;
  }

  private forget(kept: Kept): void {
    this.answers.delete(kept.id);
    this.oldest.remove(kept);
    this.bytes -= kept.bytes;
  }

  private live(since: number, now: number): boolean {
    return now - since < this.ttlMs;
  }

  /** Forgets expired answers from the front (stored order); stray late ones on lookup. */
  private expire(now: number): void {
    for (const kept of this.answers.values()) {
      if (this.live(kept.storedAt, now)) break;
      this.forget(kept);
    }
    if (this.running.size === 0) return;
    for (const [id, attempt] of this.running) {
      if (this.live(attempt.startedAt, now)) break;
      this.running.delete(id);
    }
  }
}

/** Digests are hex, so a space cannot occur in either part. */
function idOf(scope: string, key: string): string {
  return `${scope} ${key}`;
}

function toStored(kept: Kept): StoredAnswer {
  return {
    scope: kept.scope,
    key: kept.key,
    request: kept.request,
    seq: kept.seq,
    storedAt: kept.storedAt,
    status: kept.answer.status,
    headers: kept.answer.headers,
    body: kept.answer.body.toString('base64'),
  };
}
