import { HttpStatus, Injectable, type PipeTransform } from '@nestjs/common';
import type { JsonObject } from '../../database/record.types';
import { ApiProblemException } from '../problems/api-problem.exception';

/** Deepest nesting accepted in a record body; deeper bodies are refused before any recursion. */
export const MAX_JSON_DEPTH = 32;

function invalid(detail: string): ApiProblemException {
  return new ApiProblemException(HttpStatus.BAD_REQUEST, 'INVALID_BODY', detail);
}

/** Throws on nesting deeper than MAX_JSON_DEPTH or a `__proto__` member at any depth. */
function checkValue(value: unknown, depth: number, path: string): void {
  if (typeof value !== 'object' || value === null) return;
  if (depth > MAX_JSON_DEPTH) {
    throw invalid(
      `The body is nested deeper than ${MAX_JSON_DEPTH} levels (at ${path || 'the root'})`,
    );
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) checkValue(value[i], depth + 1, `${path}[${i}]`);
    return;
  }
  for (const key of Object.keys(value)) {
    if (key === '__proto__')
      throw invalid(`The member name '__proto__' is not allowed (at ${path || 'the root'})`);
    checkValue((value as Record<string, unknown>)[key], depth + 1, path ? `${path}.${key}` : key);
  }
}

/**
 * Checks one record body: a JSON object (not an array, string, number or null), at most
 * MAX_JSON_DEPTH deep, without `__proto__` members. `where` names it in a batch (`[3]`).
 */
export function assertRecordBody(value: unknown, where = ''): asserts value is JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid(
      value === undefined
        ? 'A JSON object body is required (Content-Type: application/json)'
        : `The body${where ? ` element ${where}` : ''} must be a JSON object`,
    );
  }
  checkValue(value, where ? 2 : 1, where);
}

/** Accepts one record body (PUT, PATCH). */
@Injectable()
export class JsonObjectPipe implements PipeTransform<unknown, JsonObject> {
  transform(value: unknown): JsonObject {
    assertRecordBody(value);
    return value;
  }
}
