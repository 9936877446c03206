import {
  type CanActivate,
  type ExecutionContext,
  HttpStatus,
  Injectable,
  Logger,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Env } from '../config/env.validation';
import { presentedKey } from '../common/guards/api-key.guard';
import { setIdempotencyId } from '../common/http/sequence';
import { ApiProblemException } from '../common/problems/api-problem.exception';
import { captureAnswer } from './answer-capture';
import { type Attempt, type FinalAnswer, IdempotencyStore } from './idempotency.store';
import { ReplayedAnswer } from './replayed-answer';
import { isValidIdempotencyKey, requestDigest, sha256 } from './request-digest';

export const IDEMPOTENCY_KEY_HEADER = 'idempotency-key';

/** Express's request is Node's; Fastify's wraps it as `raw`. Both carry `ip` and the parsed `body`. */
interface AdapterRequest {
  readonly raw?: IncomingMessage;
  readonly ip?: string;
  readonly body?: unknown;
}

/**
 * `Idempotency-Key` on the write routes it decorates (see @Idempotent): the first request with
 * a key runs and its answer is kept; a repeat (same scope, key, method, path and body) gets
 * that answer again without running (IdempotencyReplayFilter sends it); the key reused for
 * another request is a 422, and a repeat while the first still runs a 409.
 *
 * A guard, not an interceptor, for the cost: it runs after the global guards (API key, JSON
 * body), and a request without the header pays one header lookup, where an interceptor would
 * put every write through Nest's interceptor chain. The answer is read off Node's response as
 * it is sent (captureAnswer), so answers written by the exception filter are kept too.
 */
@Injectable()
export class IdempotencyGuard implements CanActivate {
  private readonly logger = new Logger(IdempotencyGuard.name);
  private readonly keysOn: boolean;

  constructor(
    config: ConfigService<Env, true>,
    private readonly store: IdempotencyStore,
  ) {
    this.keysOn = config.get('API_KEYS', { infer: true }) !== undefined;
  }

  /** @throws ApiProblemException 400, 409 or 422; ReplayedAnswer for a repeat */
  canActivate(context: ExecutionContext): true {
    const http = context.switchToHttp();
    const request = http.getRequest<AdapterRequest>();
    const req = request.raw ?? (request as IncomingMessage);
    const header = req.headers[IDEMPOTENCY_KEY_HEADER];
    if (header === undefined) return true;
    if (typeof header !== 'string' || !isValidIdempotencyKey(header)) {
      throw new ApiProblemException(
        HttpStatus.BAD_REQUEST,
        'INVALID_IDEMPOTENCY_KEY',
        'Idempotency-Key must be 1 to 255 visible ASCII characters (no spaces), sent once',
      );
    }
    const scope = sha256(this.scopeOf(request, req));
    const key = sha256(header);
    const digest = requestDigest(req.method ?? '', pathOf(req), request.body);
    const decision = this.store.begin(scope, key, digest);
    switch (decision.outcome) {
      case 'run': {
        const response = http.getResponse<{ raw?: ServerResponse }>();
        const { attempt } = decision;
        // In cluster mode the command's message id: the stream drops a repeat through any replica.
        setIdempotencyId(response.raw ?? response, sha256(`${scope}:${key}:${digest}`));
        captureAnswer(response.raw ?? (response as ServerResponse), this.store.maxBytes, (answer) =>
          this.settle(attempt, answer),
        );
        return true;
      }
      case 'replay':
        throw new ReplayedAnswer(decision.answer);
      case 'in-progress':
        throw new ApiProblemException(
          HttpStatus.CONFLICT,
          'IDEMPOTENCY_IN_PROGRESS',
          'A request with this Idempotency-Key is still being processed; retry once it is answered',
          undefined,
          { 'Retry-After': '1' },
        );
      case 'reused':
        throw new ApiProblemException(
          HttpStatus.UNPROCESSABLE_ENTITY,
          'IDEMPOTENCY_KEY_REUSED',
          'This Idempotency-Key was used for a different request (method, path or body); use a new key',
        );
    }
  }

  /** Keeps the answer sent (or releases the key); runs inside `end()`, so it never throws. */
  private settle(attempt: Attempt, answer: FinalAnswer | undefined): void {
    try {
      if (answer === undefined) this.store.release(attempt);
      else this.store.complete(attempt, answer);
    } catch (error) {
      this.store.release(attempt);
      this.logger.error(
        `The answer to a request with an Idempotency-Key was not kept: ${String(error)}`,
        error instanceof Error ? error.stack : undefined,
      );
    }
  }

  /** Whose keys these are: the API key presented (valid: ApiKeyGuard ran), else the client. */
  private scopeOf(request: AdapterRequest, req: IncomingMessage): string {
    if (this.keysOn) return `key:${presentedKey(req.headers) ?? ''}`;
    return `address:${request.ip ?? req.socket.remoteAddress ?? ''}`;
  }
}

/** The request's path as the client sent it, without the query. */
function pathOf(req: IncomingMessage & { originalUrl?: string }): string {
  const url = req.originalUrl ?? req.url ?? '';
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}
