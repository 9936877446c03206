/** One invalid field of a record or request: `field` is a dot path, `message` says why. */
export interface FieldError {
  readonly field: string;
  readonly message: string;
}

/** Machine-readable codes of storage failures; the HTTP edge maps each to a status. */
export type DatabaseErrorCode =
  | 'TABLE_NOT_FOUND'
  | 'RECORD_NOT_FOUND'
  | 'DUPLICATE_RECORD'
  | 'RECORD_INVALID'
  | 'INVALID_NAME'
  | 'LOCK_TIMEOUT';

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

  constructor(
    readonly table: string,
    readonly id: string,
  ) {
    super(`Record '${id}' already exists in table '${table}'`);
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
