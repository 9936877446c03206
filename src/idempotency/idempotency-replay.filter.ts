import { type ArgumentsHost, Catch, type ExceptionFilter } from '@nestjs/common';
import type { ServerResponse } from 'node:http';
import type { FinalAnswer } from './idempotency.store';
import { ReplayedAnswer } from './replayed-answer';

export const REPLAYED_HEADER = 'Idempotency-Replayed';

/** The subset of Fastify's reply used here; Express's response has no `raw`. */
interface FastifyReplyLike {
  readonly raw: ServerResponse;
  code(status: number): this;
  headers(values: Record<string, string | readonly string[]>): this;
  send(payload?: Buffer): this;
}

/**
 * Sends a kept answer again (see IdempotencyGuard): its status, headers and body bytes, with
 * `Idempotency-Replayed: true`. Headers the repeat got before its handler (request id, security
 * headers, CORS, rate limits) stay its own.
 */
@Catch(ReplayedAnswer)
export class IdempotencyReplayFilter implements ExceptionFilter<ReplayedAnswer> {
  catch({ answer }: ReplayedAnswer, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<FastifyReplyLike | ServerResponse>();
    const headers = { ...answer.headers, [REPLAYED_HEADER]: 'true' };
    const body = answer.body.length > 0 ? answer.body : undefined;
    if ('raw' in response) {
      // Through the reply, which holds the headers set so far (rate limits).
      response.code(answer.status).headers(headers).send(body);
      return;
    }
    writeAnswer(response, answer.status, headers, body);
  }
}

function writeAnswer(
  res: ServerResponse,
  status: FinalAnswer['status'],
  headers: FinalAnswer['headers'],
  body: Buffer | undefined,
): void {
  res.statusCode = status;
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  res.end(body);
}
