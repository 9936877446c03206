import { plainToInstance, type ClassConstructor } from 'class-transformer';
import { getMetadataStorage, validateSync } from 'class-validator';
import type { FieldError } from '../../database/database.errors';
import type { JsonObject, RecordValidator } from '../../database/record.types';
import { flattenValidationErrors } from './flatten-validation-errors';

/**
 * A typed table's validator from a class-validator DTO: no implicit conversion (`"30"` is not
 * an integer), unknown fields rejected. Unknown fields are found from the record's own keys,
 * not by class-transformer, which skips names such as `toString` or `constructor`.
 */
export function classValidatorSchema(dto: ClassConstructor<object>): RecordValidator {
  const declared = new Set(
    getMetadataStorage()
      .getTargetValidationMetadatas(dto, '', true, false)
      .map((metadata) => metadata.propertyName),
  );
  return (fields: JsonObject) => {
    const known: JsonObject = {};
    const unknown: FieldError[] = [];
    for (const key of Object.keys(fields)) {
      if (declared.has(key)) known[key] = fields[key];
      else unknown.push({ field: key, message: `property ${key} should not exist` });
    }
    const errors = validateSync(plainToInstance(dto, known), {
      forbidUnknownValues: true,
      validationError: { target: false, value: false },
    });
    return [...unknown, ...flattenValidationErrors(errors)];
  };
}
