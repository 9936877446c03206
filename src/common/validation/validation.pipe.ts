import { ValidationPipe } from '@nestjs/common';
import { RequestValidationException } from '../problems/api-problem.exception';
import { flattenValidationErrors } from './flatten-validation-errors';

/**
 * The one pipe for params, queries and DTO bodies: unknown properties are rejected, nothing is
 * converted implicitly (query numbers declare `@Type(() => Number)`), failures list each field.
 */
export function createValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    forbidUnknownValues: true,
    transform: true,
    transformOptions: { enableImplicitConversion: false },
    validationError: { target: false, value: false },
    exceptionFactory: (errors) => new RequestValidationException(flattenValidationErrors(errors)),
  });
}
