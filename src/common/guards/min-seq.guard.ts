import { type CanActivate, type ExecutionContext, HttpStatus, Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Env } from '../../config/env.validation';
import { StorageService } from '../../database/storage.service';
import { CONSISTENCY_HEADER, MIN_SEQ_HEADER, SEQ_HEADER } from '../http/sequence';
import { ApiProblemException } from '../problems/api-problem.exception';

const DIGITS = /^\s*(\d{1,16})\s*$/;

/**
 * `X-Memdb-Min-Seq: N` on a request under /api/v1 holds it until the server has applied entry N
 * (read-your-writes through any replica), at most MIN_SEQ_WAIT_MS, then answers 503
 * SEQ_NOT_REACHED with Retry-After; a value that is not one non-negative integer is a 400.
 * A global guard after the throttler and the API keys (a client may not wait unless it may ask,
 * and the answers carry CORS headers) and before the body is read (a write waits before it is
 * processed). A request without the header pays one lookup; a client that leaves stops waiting.
 */
@Injectable()
export class MinSeqGuard implements CanActivate {
  private readonly waitMs: number;

  constructor(
    private readonly storage: StorageService,
    config: ConfigService<Env, true>,
  ) {
    this.waitMs = config.get('MIN_SEQ_WAIT_MS', { infer: true });
  }

  canActivate(context: ExecutionContext): true | Promise<true> {
    const http = context.switchToHttp();
    const request = http.getRequest<{ raw?: IncomingMessage } & IncomingMessage>();
    const req = request.raw ?? request;
    const wanted = req.headers[MIN_SEQ_HEADER];
    const consistency = req.headers[CONSISTENCY_HEADER];
    if (wanted === undefined && consistency === undefined) return true;
    if (!(req.url ?? '').startsWith('/api/v1/')) return true;
    if (consistency !== undefined && consistency !== 'local') {
      if (consistency !== 'strong') {
        throw new ApiProblemException(
          HttpStatus.BAD_REQUEST,
          'INVALID_CONSISTENCY',
          'X-Memdb-Consistency must be local (the default) or strong',
        );
      }
      const response = http.getResponse<{ raw?: ServerResponse } & ServerResponse>();
      return this.storage.barrier().then(() => this.waitIfAsked(wanted, response.raw ?? response));
    }
    const response = http.getResponse<{ raw?: ServerResponse } & ServerResponse>();
    return this.waitIfAsked(wanted, response.raw ?? response);
  }

  /** The X-Memdb-Min-Seq part: nothing without the header. */
  private waitIfAsked(
    wanted: string | string[] | undefined,
    res: ServerResponse,
  ): true | Promise<true> {
    if (wanted === undefined) return true;
    const match = typeof wanted === 'string' ? DIGITS.exec(wanted) : null;
    const seq = match === null ? Number.NaN : Number(match[1]);
    if (!Number.isSafeInteger(seq)) {
      throw new ApiProblemException(
        HttpStatus.BAD_REQUEST,
        'INVALID_MIN_SEQ',
        `X-Memdb-Min-Seq must be one sequence number (a non-negative integer), as a ${SEQ_HEADER} header gave it`,
      );
    }
    if (this.storage.appliedSeq >= seq) return true;
    return this.wait(seq, res);
  }

  private async wait(seq: number, res: ServerResponse): Promise<true> {
    const left = new AbortController();
    const leave = () => left.abort();
    res.once('close', leave);
    try {
      if (await this.storage.waitForSeq(seq, this.waitMs, left.signal)) return true;
    } finally {
      res.off('close', leave);
    }
    const applied = this.storage.appliedSeq;
    throw new ApiProblemException(
      HttpStatus.SERVICE_UNAVAILABLE,
      'SEQ_NOT_REACHED',
      `This server has applied the log up to ${applied}, not yet ${seq}, after waiting ${this.waitMs} ms; retry (another replica may be further along)`,
      undefined,
      { 'Retry-After': String(Math.max(1, Math.ceil(this.waitMs / 1000))) },
    );
  }
}
