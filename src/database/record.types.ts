import type { FieldError } from './database.errors';

export type JsonPrimitive = string | number | boolean | null;
export type JsonValue = JsonPrimitive | JsonObject | JsonValue[];
export interface JsonObject {
  [key: string]: JsonValue;
}

/** Fields the server owns: a client can name `id` on create, never the timestamps. */
export const SERVER_FIELDS = ['id', 'created_at', 'updated_at'] as const;

/**
 * A stored record. Stored records are never mutated: every update stores a new object, so a
 * record can be handed to a response or a join without copying.
 */
export type StoredRecord = Readonly<
  JsonObject & { id: string; created_at: string; updated_at: string }
>;

/** Validates a record's client fields (server fields removed); returns the problems found. */
export type RecordValidator = (fields: JsonObject) => readonly FieldError[];
