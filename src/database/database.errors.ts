/**
 * One invalid field of a record or request: `field` is a dot path (or the query parameter),
 * `message` says why; `index` is the record's position in a bulk write.
 */
export interface FieldError {
  readonly field: string;
  readonly message: string;
  readonly index?: number;
}

/** Machine-readable codes of storage failures; the HTTP edge maps each to a status. */
export type DatabaseErrorCode =
  | 'TABLE_NOT_FOUND'
  | 'RECORD_NOT_FOUND'
  | 'DUPLICATE_RECORD'
  | 'RECORD_INVALID'
  | 'INVALID_NAME'
  | 'INVALID_QUERY'
  | 'TABLE_EXISTS'
  | 'INDEX_EXISTS'
  | 'INDEX_NOT_FOUND'
  | 'UNIQUE_VIOLATION'
  | 'PRECONDITION_FAILED'
  | 'STORAGE_FULL'
  | 'DISK_FULL'
  | 'STORAGE_UNAVAILABLE'
  | 'RESULT_TOO_LARGE'
  | 'LOCK_TIMEOUT'
  | 'SNAPSHOT_TOO_OLD'
  | 'WRITE_UNCONFIRMED'
  | 'IDEMPOTENCY_KEY_EXPIRED';

/** Base of every storage failure. Knows nothing of HTTP. */
export abstract class DatabaseError extends Error {
  abstract readonly code: DatabaseErrorCode;

  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

export class TableNotFoundError extends DatabaseError {
  readonly code = 'TABLE_NOT_FOUND';

  constructor(readonly table: string) {
    super(`Table '${table}' does not exist`);
  }
}

export class RecordNotFoundError extends DatabaseError {
  readonly code = 'RECORD_NOT_FOUND';

  constructor(
    readonly table: string,
    readonly id: string,
  ) {
    super(`Record '${id}' does not exist in table '${table}'`);
  }
}

export class DuplicateRecordError extends DatabaseError {
  readonly code = 'DUPLICATE_RECORD';
  readonly errors?: readonly FieldError[];

  constructor(
    readonly table: string,
    readonly id: string,
    /** Positions in a bulk write of every record whose id is taken or repeated. */
    readonly indexes?: readonly number[],
  ) {
    super(
      indexes === undefined
        ? `Record '${id}' already exists in table '${table}'`
        : `Record '${id}' (index ${indexes[0]})${indexes.length > 1 ? ` and ${indexes.length - 1} more` : ''} already exist in table '${table}' or earlier in the batch`,
    );
    if (indexes !== undefined) {
      this.errors = indexes.map((index) => ({
        field: `[${index}].id`,
        message: 'duplicate id',
        index,
      }));
    }
  }
}

export class TableExistsError extends DatabaseError {
  readonly code = 'TABLE_EXISTS';

  constructor(readonly table: string) {
    super(`Table '${table}' already exists`);
  }
}

export class IndexExistsError extends DatabaseError {
  readonly code = 'INDEX_EXISTS';

  constructor(table: string, field: string) {
    super(`Table '${table}' already has an index on '${field}'`);
  }
}

export class IndexNotFoundError extends DatabaseError {
  readonly code = 'INDEX_NOT_FOUND';

  constructor(table: string, field: string) {
    super(`Table '${table}' has no index on '${field}'`);
  }
}

/** A write, or a new unique index, would give two records the same value of a unique field. */
export class UniqueViolationError extends DatabaseError {
  readonly code = 'UNIQUE_VIOLATION';
  readonly errors?: readonly FieldError[];

  /** `indexes`: positions in a bulk write of every record that would duplicate a value. */
  constructor(table: string, field: string, value: unknown, indexes?: readonly number[]) {
    const at = indexes === undefined ? '' : ` (index ${indexes.join(', ')})`;
    super(
      `Another record of table '${table}' already has ${field} = ${JSON.stringify(value)}${at}`,
    );
    if (indexes !== undefined) {
      this.errors = indexes.map((index) => ({
        field: `[${index}].${field}`,
        message: 'duplicate value of a unique field',
        index,
      }));
    }
  }
}

/** An If-Match precondition did not hold; nothing was changed. */
export class PreconditionFailedError extends DatabaseError {
  readonly code = 'PRECONDITION_FAILED';

  constructor(table: string, id: string) {
    super(`Record '${id}' of table '${table}' does not match If-Match; nothing was changed`);
  }
}

export class RecordValidationError extends DatabaseError {
  readonly code = 'RECORD_INVALID';

  constructor(
    readonly table: string,
    readonly errors: readonly FieldError[],
  ) {
    super(`The record for table '${table}' is invalid: ${errors.map((e) => e.field).join(', ')}`);
  }
}

export class InvalidNameError extends DatabaseError {
  readonly code = 'INVALID_NAME';

  constructor(kind: 'table' | 'id' | 'field', value: string, rule: string) {
    super(`Invalid ${kind} name '${value.slice(0, 80)}': ${rule}`);
  }
}

export class LockTimeoutError extends DatabaseError {
  readonly code = 'LOCK_TIMEOUT';

  constructor(
    readonly table: string,
    timeoutMs: number,
  ) {
    super(`Table '${table}' stayed locked for more than ${timeoutMs} ms; try again`);
  }
}

/** The heap is over its budget: writes are refused until memory is freed; reads and deletes work. */
export class StorageFullError extends DatabaseError {
  readonly code = 'STORAGE_FULL';

  constructor(usedBytes: number, limitBytes: number) {
    super(
      `The database is over its memory budget (${Math.round(usedBytes / 1048576)} MiB used of ` +
        `${Math.round(limitBytes / 1048576)} MiB, MAX_MEMORY_MB): writes are refused; reads and deletes still work`,
    );
  }
}

/** A query would hold more rows at once than MAX_RESULT_ROWS allows. */
export class ResultTooLargeError extends DatabaseError {
  readonly code = 'RESULT_TOO_LARGE';

  constructor(
    rows: number,
    maxRows: number,
    what = 'hold',
    advice = 'Lower offset + limit, or follow the Link cursors instead of paging by offset',
  ) {
    super(
      `This query would ${what} ${rows} rows; the cap is ${maxRows} (MAX_RESULT_ROWS). ${advice}`,
    );
  }
}

/** The disk is full: the write was not logged, so it was not applied. Reads keep working. */
export class DiskFullError extends DatabaseError {
  readonly code = 'DISK_FULL';

  constructor(file: string) {
    super(
      `The disk holding ${file} is full: this write was not saved and not applied; reads still work, and writes resume once there is space`,
    );
  }
}

/** The journal cannot be written or synced (EIO, a closed journal during shutdown…). */
export class StorageUnavailableError extends DatabaseError {
  readonly code = 'STORAGE_UNAVAILABLE';

  constructor(reason: string) {
    super(`Writes are unavailable: ${reason}. Reads still work`);
  }
}

/**
 * A read was ended to bound memory: the superseded record versions kept alive for open reads
 * passed SNAPSHOT_MAX_MB, and this read was the oldest. Retrying reads the current state.
 */
export class SnapshotTooOldError extends DatabaseError {
  readonly code = 'SNAPSHOT_TOO_OLD';

  constructor(limitBytes: number) {
    super(
      `This read was ended: the record versions kept alive for open reads passed ${Math.round(limitBytes / 1048576)} MiB (SNAPSHOT_MAX_MB) and it was the oldest open read. Retry it`,
    );
  }
}

/**
 * Cluster mode: no outcome within WRITE_TIMEOUT_MS. The command may or may not be in the log:
 * retry with the same Idempotency-Key.
 */
export class WriteUnconfirmedError extends DatabaseError {
  readonly code = 'WRITE_UNCONFIRMED';
  /** Seconds a client should wait before retrying (Retry-After). */
  readonly retryAfterSeconds = 1;

  constructor(timeoutMs: number) {
    super(
      `No outcome for this write within ${timeoutMs} ms (WRITE_TIMEOUT_MS): it may or may not have happened. Retry it with the same Idempotency-Key`,
    );
  }
}

/**
 * Cluster mode: the stream already holds this Idempotency-Key's request (it dropped the repeat
 * as a duplicate), but this replica has no answer for it: forgotten early, or not arrived yet.
 * Never a second write; the outcome must be read back.
 */
export class IdempotencyKeyExpiredError extends DatabaseError {
  readonly code = 'IDEMPOTENCY_KEY_EXPIRED';
  readonly retryAfterSeconds = 1;

  constructor(readonly seq: number) {
    super(
      `A request with this Idempotency-Key was already applied (log entry ${seq}), and its answer is not kept here (forgotten early, or still on its way from the replica that took it): it was not written again. Retry shortly for the first answer, or read the outcome back`,
    );
  }
}
