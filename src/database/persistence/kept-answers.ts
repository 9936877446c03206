/**
 * Answers kept beside the data (Idempotency-Key replays): with DATA_DIR they are saved in the
 * journal as they are stored and in every snapshot, and loaded back at start. The database
 * knows them only through this seam; IdempotencyModule provides it under KEPT_ANSWERS.
 */
export interface KeptAnswers {
  /** Every live answer, JSON-serialisable, oldest first. */
  export(): unknown[];
  /** Loads answers saved earlier (expired ones are dropped). */
  import(answers: readonly unknown[]): void;
  /** Called with each answer as it is stored, once persistence listens. */
  onStored?: (answer: never) => void;
}

export const KEPT_ANSWERS = Symbol('KEPT_ANSWERS');

/** A journal line holding one kept answer; it changes no data and has no sequence of its own. */
export interface KeptAnswerEntry {
  readonly t: 'answer';
  readonly answer: unknown;
}

export function isKeptAnswerEntry(value: unknown): value is KeptAnswerEntry {
  const entry = value as Partial<Record<string, unknown>> | null;
  return typeof entry === 'object' && entry !== null && entry.t === 'answer' && 'answer' in entry;
}
