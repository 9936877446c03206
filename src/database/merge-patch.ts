import type { JsonObject, JsonValue } from './record.types';

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * RFC 7396 JSON Merge Patch: `null` removes a member, objects merge recursively, anything else
 * replaces. Returns new objects and never mutates `target`. Only own members of the target are
 * considered, so names such as `constructor` behave like any other.
 */
export function applyMergePatch(target: JsonValue | undefined, patch: JsonValue): JsonValue {
  if (!isObject(patch)) return patch;
  const result: JsonObject = isObject(target) ? { ...target } : {};
  for (const key of Object.keys(patch)) {
    const value = patch[key];
    if (value === null) {
      delete result[key];
    } else {
      result[key] = applyMergePatch(Object.hasOwn(result, key) ? result[key] : undefined, value);
    }
  }
  return result;
}
