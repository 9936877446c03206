import { DatabaseError } from '../database.errors';

/** A bad query parameter: unknown operator, malformed value, bad cursor, out-of-range limit… */
export class QueryError extends DatabaseError {
  readonly code = 'INVALID_QUERY';

  constructor(
    /** The query parameter at fault, as the client wrote it. */
    readonly parameter: string,
    readonly reason: string,
  ) {
    super(`Invalid query parameter '${parameter}': ${reason}`);
  }
}
