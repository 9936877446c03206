import { open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { StoredRecord } from '../record.types';
import type { IndexInfo } from '../table';
import { DamagedFileError, encodeEntry, readEntriesPaced } from './log-format';

/** A table as a snapshot holds it: its indexes and its records in insertion order. */
export interface TableData {
  readonly name: string;
  readonly indexes: readonly IndexInfo[];
  readonly records: readonly StoredRecord[];
}

export const SNAPSHOT_FORMAT = 'memdb-snapshot';
export const SNAPSHOT_VERSION = 1;
/** Records per line of a snapshot: large enough to keep lines few, small enough to stream. */
const RECORDS_PER_LINE = 1000;

type SnapshotLine =
  | {
      readonly t: 'header';
      readonly format: string;
      readonly version: number;
      readonly tables: number;
      readonly records: number;
    }
  | { readonly t: 'table'; readonly name: string; readonly indexes: readonly IndexInfo[] }
  | { readonly t: 'records'; readonly records: readonly StoredRecord[] }
  | { readonly t: 'end'; readonly tables: number; readonly records: number };

/**
 * The lines of a snapshot (also the backup format): a header with the counts, each table
 * followed by its records in chunks, and an end line repeating the counts, so a file cut
 * short is recognised however it was cut.
 */
export function* snapshotLines(tables: readonly TableData[]): Generator<Buffer> {
  const records = tables.reduce((sum, table) => sum + table.records.length, 0);
  yield encodeEntry({
    t: 'header',
    format: SNAPSHOT_FORMAT,
    version: SNAPSHOT_VERSION,
    tables: tables.length,
    records,
  } satisfies SnapshotLine);
  for (const table of tables) {
    yield encodeEntry({
      t: 'table',
      name: table.name,
      indexes: table.indexes,
    } satisfies SnapshotLine);
    for (let i = 0; i < table.records.length; i += RECORDS_PER_LINE) {
      yield encodeEntry({
        t: 'records',
        records: table.records.slice(i, i + RECORDS_PER_LINE),
      } satisfies SnapshotLine);
    }
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
): Promise<number> {
  const temporary = `${path}${TEMPORARY_SUFFIX}`;
  const file = await open(temporary, 'w');
  let bytes = 0;
  let written = false;
  try {
    let chunk: Buffer[] = [];
    let chunkBytes = 0;
    for (const line of snapshotLines(tables)) {
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
  const read = await readEntriesPaced(bytes);
  const damage = read.corruption ?? read.truncatedTail;
  if (damage !== undefined) throw new DamagedFileError(file, damage.offset, damage.reason);
  const fail = (index: number, reason: string): never => {
    throw new DamagedFileError(file, read.offsets[index] ?? read.validBytes, reason);
  };
  const header = read.entries[0] as Partial<Extract<SnapshotLine, { t: 'header' }>> | undefined;
  if (header?.t !== 'header' || header.format !== SNAPSHOT_FORMAT) fail(0, 'not a memdb snapshot');
  if (header?.version !== SNAPSHOT_VERSION)
    fail(0, `unknown snapshot version ${String(header?.version)}`);
  const tables: { name: string; indexes: IndexInfo[]; records: StoredRecord[] }[] = [];
  let records = 0;
  let ended = false;
  for (let i = 1; i < read.entries.length; i++) {
    const line = read.entries[i] as Partial<Record<string, unknown>> | null;
    if (ended) fail(i, 'data after the end line');
    switch (line?.t) {
      case 'table':
        if (typeof line.name !== 'string' || !Array.isArray(line.indexes))
          fail(i, 'bad table line');
        tables.push({
          name: line.name as string,
          indexes: line.indexes as IndexInfo[],
          records: [],
        });
        break;
      case 'records': {
        const chunk = line.records;
        if (tables.length === 0 || !Array.isArray(chunk)) fail(i, 'records outside a table');
        // A loop, not push(...chunk): a huge line would overflow the call stack.
        for (const record of chunk as StoredRecord[])
          tables[tables.length - 1].records.push(record);
        records += (chunk as unknown[]).length;
        break;
      }
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
  return tables;
}
