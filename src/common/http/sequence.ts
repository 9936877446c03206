import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Receipt, StorageService } from '../../database/storage.service';
import { writeProblem } from '../problems/write-problem';
import type { HeaderSink } from './header-sink';

/** A log sequence at which the answer's state holds (reads: their snapshot; writes: their outcome). */
export const SEQ_HEADER = 'X-Memdb-Seq';
/** Wait until the server has applied this sequence before the request is processed. */
export const MIN_SEQ_HEADER = 'x-memdb-min-seq';

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
}

export function seqTo(res: HeaderSink): Receipt {
  return new SeqReceipt(res);
}

const DIGITS = /^\s*(\d{1,16})\s*$/;

/**
 * `X-Memdb-Min-Seq: N` on a request under /api/v1: holds it until the server has applied entry
 * N (read-your-writes through any replica), at most `waitMs`, then answers 503 SEQ_NOT_REACHED
 * with Retry-After. A value that is not one non-negative integer is a 400. Plain Node, so it
 * runs on both adapters before routing; a request without the header pays one lookup.
 */
export function minSeqMiddleware(storage: StorageService, waitMs: number) {
  return (req: IncomingMessage, res: ServerResponse, next: () => void): void => {
    const wanted = req.headers[MIN_SEQ_HEADER];
    if (wanted === undefined || !(req.url ?? '').startsWith('/api/v1/')) {
      next();
      return;
    }
    const match = typeof wanted === 'string' ? DIGITS.exec(wanted) : null;
    const seq = match === null ? Number.NaN : Number(match[1]);
    if (!Number.isSafeInteger(seq)) {
      writeProblem(
        res,
        400,
        'INVALID_MIN_SEQ',
        `${MIN_SEQ_HEADER} must be one sequence number (a non-negative integer), as a ${SEQ_HEADER} header gave it`,
      );
      return;
    }
    if (storage.appliedSeq >= seq) {
      next();
      return;
    }
    void storage.waitForSeq(seq, waitMs).then((reached) => {
      if (reached) {
        next();
        return;
      }
      res.setHeader('Retry-After', String(Math.max(1, Math.ceil(waitMs / 1000))));
      res.setHeader(SEQ_HEADER, String(storage.appliedSeq));
      writeProblem(
        res,
        503,
        'SEQ_NOT_REACHED',
        `This server has applied the log up to ${storage.appliedSeq}, not yet ${seq}, after waiting ${waitMs} ms; retry (another replica may be further along)`,
      );
    });
  };
}
