import type { ValidationError } from 'class-validator';
import type { FieldError } from '../../database/database.errors';

/** class-validator's error tree as one entry per bad field, named by dot path. */
export function flattenValidationErrors(
  errors: readonly ValidationError[],
  prefix = '',
): FieldError[] {
  const out: FieldError[] = [];
  for (const error of errors) {
    const field = prefix + error.property;
    const messages = Object.values(error.constraints ?? {});
    if (messages.length > 0) out.push({ field, message: messages.join('; ') });
    if (error.children && error.children.length > 0) {
      out.push(...flattenValidationErrors(error.children, `${field}.`));
    }
  }
  return out;
}
