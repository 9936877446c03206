import type { FinalAnswer } from './idempotency.store';

/**
 * Thrown by IdempotencyGuard instead of running the handler: the request was answered before,
 * and IdempotencyReplayFilter sends that answer again. Nothing else catches it.
 */
export class ReplayedAnswer extends Error {
  constructor(readonly answer: FinalAnswer) {
    super('Replayed answer');
  }
}
