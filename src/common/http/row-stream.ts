import { Logger, StreamableFile } from '@nestjs/common';
import Negotiator from 'negotiator';
import { Readable } from 'node:stream';
import { PAUSE, Yielder, type LazyRows } from '../../database/query/yielder';
import { INTERNAL_ERROR, PROBLEM_CONTENT_TYPE, toProblem } from '../problems/problem-details';

export const JSON_TYPE = 'application/json';
export const NDJSON_TYPE = 'application/x-ndjson';
/** The registered name of NDJSON, answered when asked for by name. */
const NDJSON_ALIAS = 'application/ndjson';
/** Media types a list or join can answer with; JSON first, so `*\/*` and ties get JSON. */
export const ROW_TYPES = [JSON_TYPE, NDJSON_TYPE, NDJSON_ALIAS] as const;
export type RowType = (typeof ROW_TYPES)[number];

/**
 * The row format the client prefers by its Accept header (q-values and wildcards count).
 * JSON when there is no Accept header or when it names neither format.
 */
export function negotiateRowType(accept: string | undefined): RowType {
  // Most clients send no Accept, */* or application/json: no need to parse those.
  if (accept === undefined || accept === '*/*' || !accept.includes('ndjson')) return JSON_TYPE;
  return (new Negotiator({ headers: { accept } }).mediaType(ROW_TYPES) as RowType) ?? JSON_TYPE;
}

/** Bytes gathered before a chunk is handed to the socket. */
const CHUNK_CHARS = 64 * 1024;

/** How a row stream reads and writes its rows. */
export interface RowStreamOptions {
  /** Paces the reading of the rows (shared with the query that produces them). */
  readonly yielder?: Yielder;
  /** JSON text of one row. @default JSON.stringify */
  readonly serialize?: (row: unknown) => string;
  /** Called once when the stream ends, fails or is abandoned (closes the read's snapshot). */
  readonly close?: () => void;
}

/**
 * A response body that serializes rows as they are read: a JSON array, or one JSON text per
 * line (NDJSON). It only produces a chunk when the socket has taken the previous ones
 * (back-pressure), and gives the event loop back whenever `yielder` says its slice of work is
 * used up, or the row source says so with PAUSE, so other requests keep being answered while
 * a large result streams. Nothing holds more than one chunk of text at a time.
 *
 * A failure while rows are read (a read ended by SNAPSHOT_MAX_MB, say) must never look like a
 * whole result: NDJSON ends with a last line `{"error": <problem details>}`; a JSON array is
 * destroyed before its `]`, so the connection closes mid-body.
 */
export function rowStream(
  rows: LazyRows<unknown>,
  type: RowType,
  { yielder = new Yielder(), serialize = JSON.stringify, close }: RowStreamOptions = {},
): StreamableFile {
  const array = type === JSON_TYPE;
  const iterator = rows[Symbol.iterator]();
  let first = true;
  let opened = !array;

  const fill = (stream: Readable): void => {
    let chunk = opened ? '' : '[';
    opened = true;
    let ended = false;
    let pause = false;
    try {
      while (chunk.length < CHUNK_CHARS) {
        const next = iterator.next();
        if (next.done === true) {
          ended = true;
          break;
        }
        if (next.value === PAUSE) {
          pause = true;
          break;
        }
        const text = serialize(next.value);
        if (array) chunk += first ? text : `,${text}`;
        else chunk += `${text}\n`;
        first = false;
        if (yielder.due()) {
          pause = true;
          break;
        }
      }
    } catch (error) {
      if (array) {
        stream.destroy(error as Error);
        return;
      }
      chunk += `${JSON.stringify({ error: toProblem(error) })}\n`;
      ended = true;
    }
    if (ended && array) chunk += ']';
    const hand = (): void => {
      if (stream.destroyed) return;
      if (chunk.length > 0) stream.push(chunk);
      if (ended) stream.push(null);
      // Nothing to push yet (a long filtered scan): read on without waiting to be asked.
      else if (chunk.length === 0) fill(stream);
    };
    if (pause) void yielder.pause().then(hand);
    else hand();
  };

  const body = new Readable({
    highWaterMark: CHUNK_CHARS,
    read() {
      fill(this);
    },
    destroy(error, callback) {
      // Ends the row source's read (its snapshot) whether it ran to the end, failed or was
      // abandoned by a client that went away.
      try {
        iterator.return?.();
      } finally {
        close?.();
      }
      callback(error);
    },
  });
  const file = new StreamableFile(body, {
    type: array ? `${JSON_TYPE}; charset=utf-8` : type,
  });
  // Nest's default answers a stream that fails before its first byte with a bare 400: answer
  // with the problem instead (503 SNAPSHOT_TOO_OLD for a read ended before it began). Once
  // bytes are out, the connection is closed so the body never looks whole.
  file.setErrorHandler((error, res) => {
    if (res.destroyed) return;
    if (res.headersSent) {
      if (res.destroy !== undefined) res.destroy();
      else res.end();
      return;
    }
    const problem = toProblem(error);
    if (problem.code === INTERNAL_ERROR) logger.error(error);
    res.statusCode = problem.status;
    (res as { setHeader?: (name: string, value: string) => void }).setHeader?.(
      'Content-Type',
      PROBLEM_CONTENT_TYPE,
    );
    res.send(JSON.stringify(problem));
  });
  return file;
}

const logger = new Logger('RowStream');

/**
 * JSON of join rows (`{"left":…,"right":…}`, the same text as JSON.stringify), with each side's
 * last record remembered: consecutive rows of a join share their anchor record (a user with
 * each of their orders), which is then serialized once per group instead of once per row.
 */
export function joinRowSerializer(): (row: unknown) => string {
  let lastLeft: unknown;
  let leftText = 'null';
  let lastRight: unknown;
  let rightText = 'null';
  return (row) => {
    const { left, right } = row as { left: unknown; right?: unknown };
    if (left !== lastLeft || lastLeft === undefined) {
      lastLeft = left;
      leftText = JSON.stringify(left);
    }
    if (right === undefined) return `{"left":${leftText}}`;
    if (right !== lastRight) {
      lastRight = right;
      rightText = JSON.stringify(right);
    }
    return `{"left":${leftText},"right":${rightText}}`;
  };
}
