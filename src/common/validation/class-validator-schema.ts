import { plainToInstance, type ClassConstructor } from 'class-transformer';
import { validateSync } from 'class-validator';
import type { JsonObject, RecordValidator } from '../../database/record.types';
import { flattenValidationErrors } from './flatten-validation-errors';

/**
 * A typed table's validator from a class-validator DTO: no implicit conversion (`"30"` is not
 * an integer), unknown fields rejected.
 */
export function classValidatorSchema(dto: ClassConstructor<object>): RecordValidator {
  return (fields: JsonObject) =>
    flattenValidationErrors(
      validateSync(plainToInstance(dto, fields), {
        whitelist: true,
        forbidNonWhitelisted: true,
        forbidUnknownValues: true,
        validationError: { target: false, value: false },
      }),
    );
}
