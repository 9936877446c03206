import type { DatabaseError } from './database.errors';
import type { TableData } from './persistence/snapshot';
import type { JsonObject, StoredRecord } from './record.types';
import type { VersionCondition } from './record-version';

/**
 * The format version of commands: every logged command carries it. A server meeting a version
 * it does not know stops (see StateMachine.apply) rather than skip an entry.
 */
export const COMMAND_VERSION = 1;

/**
 * One write, as the log holds it: everything that varies (ids, times) is already decided, so
 * applying the same commands in the same order gives the same state and the same outcomes on
 * any server. State-dependent checks (existence, duplicates, unique values, If-Match, a merged
 * PATCH against a typed table's schema) are made when the command is applied.
 */
export type Command =
  | {
      readonly v: 1;
      readonly op: 'insert';
      readonly table: string;
      /** Whole records (id, created_at, updated_at set); all or none. */
      readonly records: readonly StoredRecord[];
      /** Errors name the failing record's index (a bulk write). */
      readonly bulk: boolean;
    }
  | {
      readonly v: 1;
      readonly op: 'replace';
      readonly table: string;
      readonly id: string;
      /** The record's new client fields (checked against the schema before logging). */
      readonly fields: JsonObject;
      /** The command's time (ISO 8601); see StateMachine for the updated_at rule. */
      readonly at: string;
      readonly ifMatch?: VersionCondition;
    }
  | {
      readonly v: 1;
      readonly op: 'patch';
      readonly table: string;
      readonly id: string;
      /** An RFC 7396 merge patch of the client fields. */
      readonly patch: JsonObject;
      readonly at: string;
      readonly ifMatch?: VersionCondition;
    }
  | {
      readonly v: 1;
      readonly op: 'delete';
      readonly table: string;
      readonly id: string;
      readonly ifMatch?: VersionCondition;
    }
  | { readonly v: 1; readonly op: 'createTable'; readonly table: string }
  /** Changes nothing: a strong read waits until its replica has applied one (cluster mode). */
  | { readonly v: 1; readonly op: 'barrier' }
  /**
   * Changes no data: an answer kept for Idempotency-Key, which every replica keeps as it applies
   * the entry (cluster mode), so a retry on any replica gets the first answer.
   */
  | { readonly v: 1; readonly op: 'answer'; readonly answer: unknown }
  | { readonly v: 1; readonly op: 'dropTable'; readonly table: string }
  /**
   * Replaces all data with a backup's (cluster mode: every replica swaps at this entry). The
   * tables were checked before the command was logged; the command's sequence creates them.
   */
  | {
      readonly v: 1;
      readonly op: 'restore';
      readonly tables: readonly Pick<TableData, 'name' | 'indexes' | 'records'>[];
    }
  | {
      readonly v: 1;
      readonly op: 'createIndex';
      readonly table: string;
      readonly field: string;
      readonly unique: boolean;
    }
  | { readonly v: 1; readonly op: 'dropIndex'; readonly table: string; readonly field: string }
  /**
   * Records stored as they are, replacing any with the same id (journals written before
   * commands: their `put` entries hold the records as they were applied).
   */
  | {
      readonly v: 1;
      readonly op: 'put';
      readonly table: string;
      readonly records: readonly StoredRecord[];
    };

/** What applying a command gave: its value, or the state-dependent error it failed with. */
export type Outcome =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly error: DatabaseError };

/** A command and its place in the log. */
export interface LogEntry {
  readonly seq: number;
  readonly command: Command;
}

/**
 * Why a value is not a command this server can apply, or undefined when it is one. Checks the
 * shape only; the values were checked before the command was logged.
 */
export function commandProblem(value: unknown): string | undefined {
  const command = value as Partial<Record<string, unknown>> | null;
  if (typeof command !== 'object' || command === null) return 'not a command';
  if (command.v !== COMMAND_VERSION) {
    return `command format version ${JSON.stringify(command.v)} is not one this server knows (it knows ${COMMAND_VERSION}): upgrade memdb`;
  }
  if (command.op === 'barrier') return undefined;
  if (command.op === 'answer')
    return 'answer' in command ? undefined : 'an answer without its answer';
  if (command.op === 'restore')
    return Array.isArray(command.tables) ? undefined : 'a restore without its tables';
  if (typeof command.table !== 'string') return 'a command without a table';
  const ok = (() => {
    switch (command.op) {
      case 'insert':
        return Array.isArray(command.records) && typeof command.bulk === 'boolean';
      case 'put':
        return Array.isArray(command.records);
      case 'replace':
        return (
          isObject(command.fields) &&
          typeof command.id === 'string' &&
          typeof command.at === 'string'
        );
      case 'patch':
        return (
          isObject(command.patch) &&
          typeof command.id === 'string' &&
          typeof command.at === 'string'
        );
      case 'delete':
        return typeof command.id === 'string';
      case 'createTable':
      case 'dropTable':
        return true;
      case 'createIndex':
        return typeof command.field === 'string' && typeof command.unique === 'boolean';
      case 'dropIndex':
        return typeof command.field === 'string';
      default:
        return false;
    }
  })();
  return ok ? undefined : `not a valid '${String(command.op)}' command`;
}

function isObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
