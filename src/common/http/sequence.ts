import type { Receipt } from '../../database/storage.service';
import type { HeaderSink } from './header-sink';

/** A log sequence at which the answer's state holds (reads: their snapshot; writes: their outcome). */
export const SEQ_HEADER = 'X-Memdb-Seq';
/** Wait until the server has applied this sequence before the request is processed. */
export const MIN_SEQ_HEADER = 'x-memdb-min-seq';
/** `local` (the default) or `strong`: read once this replica has applied a barrier (cluster mode). */
export const CONSISTENCY_HEADER = 'x-memdb-consistency';

/**
 * A receipt that puts the sequence a read or write reports straight into the answer's
 * X-Memdb-Seq header (also when the write then fails: the problem answer keeps it). A class,
 * so the setter lives on the prototype: an object literal with its own accessor builds a new
 * closure per request, which cost 40% of GET by id on Fastify (bench/RESULTS.md, issue 11).
 */
class SeqReceipt implements Receipt {
  constructor(private readonly res: HeaderSink) {}

  set seq(value: number | undefined) {
    if (value !== undefined) this.res.header(SEQ_HEADER, String(value));
  }

  /** Set by IdempotencyGuard on the request's response (see setIdempotencyId). */
  get idempotencyId(): string | undefined {
    const raw = (this.res as { raw?: object }).raw ?? this.res;
    return (raw as { [IDEMPOTENCY_ID]?: string })[IDEMPOTENCY_ID];
  }
}

const IDEMPOTENCY_ID = Symbol('memdb.idempotencyId');

/**
 * Marks a response's request as one with an Idempotency-Key (its digest with scope and
 * request), which its write then carries as the command's message id in cluster mode.
 */
export function setIdempotencyId(raw: object, id: string): void {
  (raw as { [IDEMPOTENCY_ID]?: string })[IDEMPOTENCY_ID] = id;
}

export function seqTo(res: HeaderSink): Receipt {
  return new SeqReceipt(res);
}
