import { STATUS_CODES } from 'node:http';
import { HttpException, HttpStatus } from '@nestjs/common';
import {
  DatabaseError,
  type DatabaseErrorCode,
  type FieldError,
} from '../../database/database.errors';
import { QueryError } from '../../database/query/query.errors';
import { ApiProblemException } from './api-problem.exception';

/** RFC 9457 problem details, as memdb answers every error. */
export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  instance?: string;
  errors?: readonly FieldError[];
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';
/** The code of every error memdb did not expect: its cause is logged, never sent. */
export const INTERNAL_ERROR = 'INTERNAL_ERROR';

/** Every storage failure has a status; `satisfies` makes a new code without one a compile error. */
export const DATABASE_ERROR_STATUS = {
  TABLE_NOT_FOUND: HttpStatus.NOT_FOUND,
  RECORD_NOT_FOUND: HttpStatus.NOT_FOUND,
  DUPLICATE_RECORD: HttpStatus.CONFLICT,
  RECORD_INVALID: HttpStatus.BAD_REQUEST,
  INVALID_NAME: HttpStatus.BAD_REQUEST,
  INVALID_QUERY: HttpStatus.BAD_REQUEST,
  TABLE_EXISTS: HttpStatus.CONFLICT,
  INDEX_EXISTS: HttpStatus.CONFLICT,
  INDEX_NOT_FOUND: HttpStatus.NOT_FOUND,
  UNIQUE_VIOLATION: HttpStatus.CONFLICT,
  PRECONDITION_FAILED: HttpStatus.PRECONDITION_FAILED,
  STORAGE_FULL: HttpStatus.INSUFFICIENT_STORAGE,
  DISK_FULL: HttpStatus.INSUFFICIENT_STORAGE,
  STORAGE_UNAVAILABLE: HttpStatus.SERVICE_UNAVAILABLE,
  RESULT_TOO_LARGE: HttpStatus.UNPROCESSABLE_ENTITY,
  LOCK_TIMEOUT: HttpStatus.SERVICE_UNAVAILABLE,
  SNAPSHOT_TOO_OLD: HttpStatus.SERVICE_UNAVAILABLE,
  WRITE_UNCONFIRMED: HttpStatus.SERVICE_UNAVAILABLE,
  IDEMPOTENCY_KEY_EXPIRED: HttpStatus.CONFLICT,
} as const satisfies Record<DatabaseErrorCode, HttpStatus>;

/** Errors thrown below Nest (body parsing) carry an http-errors status and `expose`. */
interface ExposedHttpError {
  status?: unknown;
  statusCode?: unknown;
  expose?: unknown;
  message?: unknown;
}

/** Field-level detail of a domain error: invalid fields, the query parameter, the bulk index. */
function fieldErrorsOf(error: DatabaseError): readonly FieldError[] | undefined {
  if (error instanceof QueryError) return [{ field: error.parameter, message: error.reason }];
  return (error as { errors?: readonly FieldError[] }).errors;
}

/** The problem `type` URI of a code: `RECORD_NOT_FOUND` → `urn:memdb:problem:record-not-found`. */
export function problemType(code: string): string {
  return `urn:memdb:problem:${code.toLowerCase().replaceAll('_', '-')}`;
}

function statusCode(status: number): string {
  return (HttpStatus[status] as string | undefined) ?? `HTTP_${status}`;
}

export function build(
  status: number,
  code: string,
  detail: string,
  errors?: readonly FieldError[],
): ProblemDetails {
  const problem: ProblemDetails = {
    type: problemType(code),
    title: STATUS_CODES[status] ?? 'Error',
    status,
    detail,
    code,
  };
  if (errors !== undefined) problem.errors = errors;
  return problem;
}

/**
 * Turns anything thrown while serving a request into problem details. Unknown errors become a
 * bare 500 whose detail reveals nothing of the cause.
 */
export function toProblem(error: unknown): ProblemDetails {
  if (error instanceof DatabaseError) {
    return build(
      DATABASE_ERROR_STATUS[error.code],
      error.code,
      error.message,
      fieldErrorsOf(error),
    );
  }
  if (error instanceof ApiProblemException) {
    return build(error.getStatus(), error.code, error.message, error.errors);
  }
  if (error instanceof HttpException) {
    const status = error.getStatus();
    return build(status, statusCode(status), detailOf(error, status));
  }
  const exposed = error as ExposedHttpError | null;
  const status = Number(exposed?.status ?? exposed?.statusCode);
  if (exposed?.expose === true && status >= 400 && status < 500) {
    return build(status, statusCode(status), String(exposed.message));
  }
  return build(
    HttpStatus.INTERNAL_SERVER_ERROR,
    INTERNAL_ERROR,
    'The server failed to handle this request; it has been logged.',
  );
}

function detailOf(error: HttpException, status: number): string {
  if (status === HttpStatus.TOO_MANY_REQUESTS) {
    return 'Too many requests from this client; retry after the number of seconds in Retry-After.';
  }
  return error.message;
}
