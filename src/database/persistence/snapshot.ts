import { open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { StoredRecord } from '../record.types';
import type { IndexInfo } from '../table';
import { DamagedFileError, encodeEntry, readEntriesPaced } from './log-format';

/**
 * A table as a snapshot holds it: its indexes and its records in insertion order; since
 * version 2 also the sequence of the command that created it, each record's order number and
 * the next one (what keeps cursors valid across a restart). Version 1 files have none of those.
 */
export interface TableData {
  readonly name: string;
  readonly indexes: readonly IndexInfo[];
  readonly records: readonly StoredRecord[];
  readonly created?: number;
  readonly ords?: readonly number[];
  readonly next?: number;
}

/**
 * A whole snapshot: its tables, the log sequence whose state it holds, and the answers kept for
 * Idempotency-Key replays (version 2; a backup has none).
 */
export interface SnapshotData {
  readonly tables: TableData[];
  readonly seq?: number;
  readonly answers?: unknown[];
}

export const SNAPSHOT_FORMAT = 'memdb-snapshot';
/** Version 2 adds `seq` to the header, `created` and `next` to tables, `ords` to records. */
export const SNAPSHOT_VERSION = 2;
const READABLE_VERSIONS: readonly unknown[] = [1, 2];
/** Records per line of a snapshot: large enough to keep lines few, small enough to stream. */
const RECORDS_PER_LINE = 1000;

type SnapshotLine =
  | {
      readonly t: 'header';
      readonly format: string;
      readonly version: number;
      readonly tables: number;
      readonly records: number;
      readonly seq?: number;
    }
  | {
      readonly t: 'table';
      readonly name: string;
      readonly indexes: readonly IndexInfo[];
      readonly created?: number;
      readonly next?: number;
    }
  | {
      readonly t: 'records';
      readonly records: readonly StoredRecord[];
      readonly ords?: readonly number[];
    }
  | { readonly t: 'answers'; readonly answers: readonly unknown[] }
  | { readonly t: 'end'; readonly tables: number; readonly records: number };

/**
 * The lines of a snapshot (also the backup format): a header with the counts, each table
 * followed by its records in chunks, and an end line repeating the counts, so a file cut
 * short is recognised however it was cut.
 */
export function* snapshotLines(
  tables: readonly TableData[],
  seq?: number,
  answers: readonly unknown[] = [],
): Generator<Buffer> {
  const records = tables.reduce((sum, table) => sum + table.records.length, 0);
  yield encodeEntry({
    t: 'header',
    format: SNAPSHOT_FORMAT,
    version: SNAPSHOT_VERSION,
    tables: tables.length,
    records,
    seq,
  } satisfies SnapshotLine);
  for (const table of tables) {
    yield encodeEntry({
      t: 'table',
      name: table.name,
      indexes: table.indexes,
      created: table.created,
      next: table.next,
    } satisfies SnapshotLine);
    for (let i = 0; i < table.records.length; i += RECORDS_PER_LINE) {
      yield encodeEntry({
        t: 'records',
        records: table.records.slice(i, i + RECORDS_PER_LINE),
        ords: table.ords?.slice(i, i + RECORDS_PER_LINE),
      } satisfies SnapshotLine);
    }
  }
  for (let i = 0; i < answers.length; i += RECORDS_PER_LINE) {
    yield encodeEntry({
      t: 'answers',
      answers: answers.slice(i, i + RECORDS_PER_LINE),
    } satisfies SnapshotLine);
  }
  yield encodeEntry({ t: 'end', tables: tables.length, records } satisfies SnapshotLine);
}

/**
 * Writes a snapshot atomically: to a temporary file, synced, renamed over `path`, and the
 * directory synced, so a crash leaves either the old file or the whole new one.
 */
export async function writeSnapshotFile(
  path: string,
  tables: readonly TableData[],
  seq?: number,
  answers?: readonly unknown[],
): Promise<number> {
  const temporary = `${path}${TEMPORARY_SUFFIX}`;
  const file = await open(temporary, 'w');
  let bytes = 0;
  let written = false;
  try {
    let chunk: Buffer[] = [];
    let chunkBytes = 0;
    for (const line of snapshotLines(tables, seq, answers)) {
      chunk.push(line);
      chunkBytes += line.length;
      if (chunkBytes >= 1 << 20) {
        await file.write(Buffer.concat(chunk));
        bytes += chunkBytes;
        chunk = [];
        chunkBytes = 0;
      }
    }
    if (chunkBytes > 0) await file.write(Buffer.concat(chunk));
    bytes += chunkBytes;
    await file.datasync();
    written = true;
  } finally {
    await file.close();
    // A failed write leaves no temporary file behind (it matters most when the disk is full).
    if (!written) await unlink(temporary).catch(() => undefined);
  }
  await rename(temporary, path);
  await syncDirectory(join(path, '..'));
  return bytes;
}

/** Files being written end in this; any left at start are from a crash and are removed. */
export const TEMPORARY_SUFFIX = '.tmp';

export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Reads a whole snapshot. Any damage is fatal: a snapshot is only ever renamed into place
 * complete, so a bad one is not a crash's leftover.
 * @throws DamagedFileError
 */
export async function parseSnapshot(bytes: Buffer, file: string): Promise<TableData[]> {
  return (await parseSnapshotData(bytes, file)).tables;
}

/** parseSnapshot, with the sequence the snapshot holds (version 2). @throws DamagedFileError */
export async function parseSnapshotData(bytes: Buffer, file: string): Promise<SnapshotData> {
  const read = await readEntriesPaced(bytes);
  const damage = read.corruption ?? read.truncatedTail;
  if (damage !== undefined) throw new DamagedFileError(file, damage.offset, damage.reason);
  const fail = (index: number, reason: string): never => {
    throw new DamagedFileError(file, read.offsets[index] ?? read.validBytes, reason);
  };
  const header = read.entries[0] as Partial<Extract<SnapshotLine, { t: 'header' }>> | undefined;
  if (header?.t !== 'header' || header.format !== SNAPSHOT_FORMAT) fail(0, 'not a memdb snapshot');
  if (!READABLE_VERSIONS.includes(header?.version))
    fail(0, `unknown snapshot version ${String(header?.version)}: written by a newer memdb`);
  if (header?.seq !== undefined && !isCount(header.seq)) fail(0, 'bad sequence in the header');
  const tables: {
    name: string;
    indexes: IndexInfo[];
    records: StoredRecord[];
    created?: number;
    next?: number;
    ords?: number[];
  }[] = [];
  const answers: unknown[] = [];
  let records = 0;
  let ended = false;
  for (let i = 1; i < read.entries.length; i++) {
    const line = read.entries[i] as Partial<Record<string, unknown>> | null;
    if (ended) fail(i, 'data after the end line');
    switch (line?.t) {
      case 'table':
        if (typeof line.name !== 'string' || !Array.isArray(line.indexes))
          fail(i, 'bad table line');
        if (!optionalCount(line.created) || !optionalCount(line.next)) fail(i, 'bad table line');
        tables.push({
          name: line.name as string,
          indexes: line.indexes as IndexInfo[],
          records: [],
          created: line.created as number | undefined,
          next: line.next as number | undefined,
        });
        break;
      case 'records': {
        const chunk = line.records;
        if (tables.length === 0 || !Array.isArray(chunk)) fail(i, 'records outside a table');
        // A loop, not push(...chunk): a huge line would overflow the call stack.
        const table = tables[tables.length - 1];
        for (const record of chunk as StoredRecord[]) table.records.push(record);
        // Order numbers come with every chunk of a table, or with none.
        const ords = line.ords;
        if (ords !== undefined) {
          const valid =
            Array.isArray(ords) &&
            ords.length === (chunk as unknown[]).length &&
            ords.every(isCount) &&
            (table.ords !== undefined || table.records.length === ords.length);
          if (!valid) fail(i, 'bad order numbers');
          table.ords ??= [];
          for (const ord of ords as number[]) table.ords.push(ord);
        } else if (table.ords !== undefined) {
          fail(i, 'records without order numbers');
        }
        records += (chunk as unknown[]).length;
        break;
      }
      case 'answers':
        if (!Array.isArray(line.answers)) fail(i, 'bad answers line');
        for (const answer of line.answers as unknown[]) answers.push(answer);
        break;
      case 'end':
        if (line.tables !== tables.length || line.records !== records)
          fail(i, 'the counts at the end do not match the content');
        ended = true;
        break;
      default:
        fail(i, 'unknown line');
    }
  }
  if (!ended) fail(read.entries.length, 'no end line: the snapshot is incomplete');
  if (header?.tables !== tables.length || header.records !== records)
    fail(0, 'the counts in the header do not match the content');
  for (const table of tables) {
    const { ords } = table;
    if (ords === undefined) continue;
    // Ascending, each below the next one to give out: loaded as they are, they keep the order.
    for (let k = 1; k < ords.length; k++)
      if (ords[k] <= ords[k - 1]) fail(0, `order numbers of ${table.name} are not ascending`);
    if (ords.length > 0 && table.next !== undefined && table.next <= ords[ords.length - 1])
      fail(0, `order numbers of ${table.name} reach past its next one`);
  }
  return { tables, seq: header?.seq, answers };
}

function isCount(value: unknown): boolean {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

function optionalCount(value: unknown): boolean {
  return value === undefined || isCount(value);
}
