import { crc32 } from 'node:zlib';

/**
 * memdb's files (journal and snapshot) are lines of `<crc32 as 8 hex digits> <JSON>\n`: one
 * entry per line, each with its own checksum, readable with standard tools. A line cannot hold
 * a raw newline (JSON escapes it), so a write cut short leaves a last line without its `\n`.
 */
export function encodeEntry(value: unknown): Buffer {
  const json = Buffer.from(JSON.stringify(value), 'utf8');
  const line = Buffer.allocUnsafe(json.length + 10);
  line.write(checksum(json), 0, 'latin1');
  line[8] = SPACE;
  json.copy(line, 9);
  line[line.length - 1] = NEWLINE;
  return line;
}

const SPACE = 0x20;
const NEWLINE = 0x0a;
const CHECKSUM = /^[0-9a-f]{8}$/;

function checksum(bytes: Uint8Array): string {
  return crc32(bytes).toString(16).padStart(8, '0');
}

/** A damaged place in a file: the byte offset where its first bad entry starts. */
export interface Damage {
  readonly offset: number;
  readonly reason: string;
}

export interface ReadResult {
  readonly entries: unknown[];
  /** Byte offset of each entry, for error messages. */
  readonly offsets: number[];
  /** Bytes of whole, valid entries from the start (where the next append belongs). */
  readonly validBytes: number;
  /** A last line without its newline: a write cut short, never acknowledged. */
  readonly truncatedTail?: Damage;
  /** An entry that is not what was written (bad checksum or JSON), with data after it or not. */
  readonly corruption?: Damage;
}

/**
 * Reads every entry of a file's bytes, stopping at the first bad one. A last line without
 * `\n` is a truncated tail; any other bad line (checksum, format, JSON) is corruption.
 */
export function readEntries(bytes: Buffer): ReadResult {
  return readEntriesSync(bytes, undefined) as ReadResult;
}

/** Lines read between pauses: a large file must not stop the event loop (liveness answers). */
const LINES_PER_SLICE = 2000;

/**
 * readEntries for large files: gives the event loop back every few thousand lines, so a long
 * load leaves health probes answered.
 */
export async function readEntriesPaced(bytes: Buffer): Promise<ReadResult> {
  const paused = { at: 0 };
  const entries: unknown[] = [];
  const offsets: number[] = [];
  let result = readEntriesSync(bytes, paused, entries, offsets);
  while (typeof result === 'number') {
    await new Promise((resolve) => setImmediate(resolve));
    result = readEntriesSync(bytes, paused, entries, offsets);
  }
  return result;
}

function readEntriesSync(
  bytes: Buffer,
  paused: { at: number } | undefined,
  entries: unknown[] = [],
  offsets: number[] = [],
): ReadResult | number {
  let offset = paused?.at ?? 0;
  let lines = 0;
  while (offset < bytes.length) {
    if (paused !== undefined && ++lines > LINES_PER_SLICE) {
      paused.at = offset;
      return offset;
    }
    const end = bytes.indexOf(NEWLINE, offset);
    if (end === -1) {
      return {
        entries,
        offsets,
        validBytes: offset,
        truncatedTail: { offset, reason: `${bytes.length - offset} bytes without a line end` },
      };
    }
    const problem = checkLine(bytes, offset, end);
    if (typeof problem === 'string') {
      return { entries, offsets, validBytes: offset, corruption: { offset, reason: problem } };
    }
    entries.push(problem.value);
    offsets.push(offset);
    offset = end + 1;
  }
  return { entries, offsets, validBytes: offset };
}

function checkLine(bytes: Buffer, start: number, end: number): string | { value: unknown } {
  if (end - start < 10 || bytes[start + 8] !== SPACE) return 'not an entry line';
  const sum = bytes.toString('latin1', start, start + 8);
  if (!CHECKSUM.test(sum)) return 'not an entry line';
  const json = bytes.subarray(start + 9, end);
  if (checksum(json) !== sum) return 'checksum mismatch';
  try {
    return { value: JSON.parse(json.toString('utf8')) as unknown };
  } catch {
    return 'invalid JSON';
  }
}

/** A file memdb cannot load as it is: names the file and the byte offset of the damage. */
export class DamagedFileError extends Error {
  constructor(
    readonly file: string,
    readonly offset: number,
    reason: string,
  ) {
    super(`${file} is damaged at byte ${offset}: ${reason}`);
    this.name = 'DamagedFileError';
  }
}
