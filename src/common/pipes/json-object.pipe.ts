import { HttpStatus, Injectable, type PipeTransform } from '@nestjs/common';
import type { JsonObject } from '../../database/record.types';
import { ApiProblemException } from '../problems/api-problem.exception';

/** Documented caps on what a record body may hold (besides MAX_DEPTH and BODY_LIMIT). */
export const JSON_LIMITS = {
  /** Longest member name, in UTF-16 code units. */
  keyLength: 256,
  /** Most members in one object. */
  members: 10_000,
  /** Longest string value, in UTF-16 code units. */
  stringLength: 1_048_576,
} as const;

function invalid(detail: string): ApiProblemException {
  return new ApiProblemException(HttpStatus.BAD_REQUEST, 'INVALID_BODY', detail);
}

const at = (path: string) => path || 'the root';

/**
 * Walks a parsed body once, refusing what memdb will not store: nesting deeper than
 * `maxDepth` (checked before descending, so the walk itself never goes deeper), `__proto__`
 * members, member names that are too long or hold lone surrogates, too many members, numbers
 * that are not finite (`1e999`), over-long strings.
 */
function checkValue(value: unknown, depth: number, maxDepth: number, path: string): void {
  switch (typeof value) {
    case 'number':
      if (!Number.isFinite(value)) throw invalid(`The number at ${at(path)} is out of range`);
      return;
    case 'string':
      if (value.length > JSON_LIMITS.stringLength) {
        throw invalid(
          `The string at ${at(path)} is longer than ${JSON_LIMITS.stringLength} characters`,
        );
      }
      return;
    case 'object':
      break;
    default:
      return;
  }
  if (value === null) return;
  if (depth > maxDepth)
    throw invalid(`The body is nested deeper than ${maxDepth} levels (at ${at(path)}; MAX_DEPTH)`);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++)
      checkValue(value[i], depth + 1, maxDepth, `${path}[${i}]`);
    return;
  }
  const keys = Object.keys(value);
  if (keys.length > JSON_LIMITS.members) {
    throw invalid(`The object at ${at(path)} has more than ${JSON_LIMITS.members} members`);
  }
  for (const key of keys) {
    if (key === '__proto__')
      throw invalid(`The member name '__proto__' is not allowed (at ${at(path)})`);
    if (key.length > JSON_LIMITS.keyLength) {
      throw invalid(
        `A member name at ${at(path)} is longer than ${JSON_LIMITS.keyLength} characters`,
      );
    }
    if (!key.isWellFormed()) throw invalid(`A member name at ${at(path)} holds a lone surrogate`);
    checkValue(
      (value as Record<string, unknown>)[key],
      depth + 1,
      maxDepth,
      path ? `${path}.${key}` : key,
    );
  }
}

/**
 * Walks any parsed JSON body against the limits above and MAX_DEPTH. Run once per request by
 * JsonBodyGuard, before any pipe or validator recurses into the body.
 */
export function assertJsonWithinLimits(value: unknown, maxDepth: number): void {
  checkValue(value, 1, maxDepth, '');
}

/**
 * Checks one record body's shape: a JSON object (not an array, string, number or null).
 * `where` names it in a batch (`[3]`). Its content was checked by assertJsonWithinLimits.
 */
export function assertRecordBody(value: unknown, where = ''): asserts value is JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid(
      value === undefined
        ? 'A JSON object body is required (Content-Type: application/json)'
        : `The body${where ? ` element ${where}` : ''} must be a JSON object`,
    );
  }
}

/** Accepts one record body (PUT, PATCH). */
@Injectable()
export class JsonObjectPipe implements PipeTransform<unknown, JsonObject> {
  transform(value: unknown): JsonObject {
    assertRecordBody(value);
    return value;
  }
}
