import { HttpException, HttpStatus } from '@nestjs/common';
import type { FieldError } from '../../database/database.errors';

/** An HTTP-level problem raised at the edge (pipes, guards): status, a code and a detail. */
export class ApiProblemException extends HttpException {
  constructor(
    status: HttpStatus,
    readonly code: string,
    detail: string,
    readonly errors?: readonly FieldError[],
    /** Response headers the problem needs (WWW-Authenticate, Allow…). */
    readonly headers?: Readonly<Record<string, string>>,
  ) {
    super(detail, status);
  }
}

/** A request whose parameters, query or body failed validation. */
export class RequestValidationException extends ApiProblemException {
  constructor(errors: readonly FieldError[]) {
    super(
      HttpStatus.BAD_REQUEST,
      'VALIDATION_FAILED',
      `Invalid request: ${errors.map((e) => e.field).join(', ')}`,
      errors,
    );
  }
}
