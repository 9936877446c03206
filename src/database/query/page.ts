import { ResultTooLargeError } from '../database.errors';
import type { CursorKey } from './cursor';
import type { RowKey } from './sort';
import { TopK } from './top-k';
import { PAUSE, type LazyRows, type Yielder } from './yielder';

export interface PageRequest<K> {
  readonly limit: number;
  readonly offset: number;
  /** Keyset position: only items strictly after it. */
  readonly after?: K;
  /** Count every match (for X-Total-Count); false lets a scan stop at the page's end. */
  readonly count: boolean;
  /** The number of matches when known without a scan (an unfiltered table's size). */
  readonly knownTotal?: number;
}

export interface Page<T> {
  readonly items: T[];
  /** Matches in all, before paging; undefined when not counted. */
  readonly total?: number;
  /** Key of the page's last item when another page follows. */
  readonly nextKey?: CursorKey;
}

/** The item a page's next cursor points at: its last. */
export function lastOf<T>(page: Page<T>): T | undefined {
  return page.items[page.items.length - 1];
}

/** Candidates and the test they must pass (none when they are already filtered). */
export interface Candidates<T> {
  readonly rows: Iterable<T>;
  readonly test?: (row: T) => boolean;
}

export function compareSeqKeys(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

/** Pages candidates that already arrive in key order (default order: sequence numbers). */
export async function pageInOrder<T>(
  { rows, test }: Candidates<T>,
  keyOf: (item: T) => readonly number[],
  { limit, offset, after, count, knownTotal }: PageRequest<readonly number[]>,
  yielder: Yielder,
): Promise<Page<T>> {
  const out: T[] = [];
  let total = 0;
  let skipped = 0;
  const counting = count && knownTotal === undefined;
  let more = false;
  for (const item of rows) {
    if (yielder.due()) await yielder.pause();
    if (test !== undefined && !test(item)) continue;
    total++;
    if (more) {
      if (!counting) break;
      continue;
    }
    if (after !== undefined && compareSeqKeys(keyOf(item), after) <= 0) continue;
    if (skipped < offset) {
      skipped++;
      continue;
    }
    if (out.length < limit) out.push(item);
    else more = true;
  }
  return {
    items: out,
    total: count ? (knownTotal ?? total) : undefined,
    // The key comes from the read's snapshot (keyOf), so it is the row's even when the record
    // was deleted while the scan went on.
    nextKey: more && out.length > 0 ? keyOf(out[out.length - 1]) : undefined,
  };
}

/**
 * Pages candidates in the order of `compare` over their keys (explicit sort; keys end in ids).
 * Only the first offset + limit + 1 are kept (a bounded heap), never the whole result.
 */
export async function pageSorted<T>(
  { rows, test }: Candidates<T>,
  keyOf: (item: T) => RowKey,
  compare: (a: RowKey, b: RowKey) => number,
  { limit, offset, after, count }: PageRequest<RowKey>,
  yielder: Yielder,
): Promise<Page<T>> {
  const top = new TopK<{ item: T; key: RowKey }>(offset + limit + 1, (a, b) =>
    compare(a.key, b.key),
  );
  let total = 0;
  for (const item of rows) {
    if (yielder.due()) await yielder.pause();
    if (test !== undefined && !test(item)) continue;
    total++;
    const key = keyOf(item);
    if (after === undefined || compare(key, after) > 0) top.offer({ item, key });
  }
  const window = top.sorted().slice(offset);
  const more = window.length > limit;
  const page = more ? window.slice(0, limit) : window;
  return {
    items: page.map((entry) => entry.item),
    total: count ? total : undefined,
    nextKey: more && page.length > 0 ? page[page.length - 1].key : undefined,
  };
}

/** A run of rows sharing an anchor, in key order (a join group). */
export interface GroupShape<G, T> {
  size(group: G): number;
  keyOf(group: G, index: number): readonly number[];
  rowAt(group: G, index: number): T;
}

/** The position in a group of its first row after `after` (keys increase through a group). */
function firstAfter<G, T>(
  group: G,
  size: number,
  shape: GroupShape<G, T>,
  after: readonly number[],
): number {
  let low = 0;
  let high = size;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (compareSeqKeys(shape.keyOf(group, middle), after) <= 0) low = middle + 1;
    else high = middle;
  }
  return low;
}

/**
 * For groups met in order: the position of the first row of each to keep, after the cursor key
 * `after` and once `offset` rows have been skipped (the group's size when none is kept). Whole
 * groups are skipped by their size, without visiting their rows.
 */
function skipper<G, T>(
  shape: GroupShape<G, T>,
  offset: number,
  after: readonly number[] | undefined,
): (group: G, size: number) => number {
  let toSkip = offset;
  return (group, size) => {
    const start = after === undefined || size === 0 ? 0 : firstAfter(group, size, shape, after);
    const available = size - start;
    if (toSkip >= available) {
      toSkip -= available;
      return size;
    }
    const first = start + toSkip;
    toSkip = 0;
    return first;
  };
}

/**
 * Pages grouped rows in default order without visiting every row: whole groups are counted
 * and skipped by size, and the cursor is found inside a group by binary search. Keys increase
 * through each group and from one group to the next.
 */
export async function pageGroups<G, T>(
  groups: Iterable<G | typeof PAUSE>,
  shape: GroupShape<G, T>,
  { limit, offset, after, count }: PageRequest<readonly number[]>,
  yielder: Yielder,
): Promise<Page<T>> {
  const out: T[] = [];
  let total = 0;
  const firstOf = skipper(shape, offset, after);
  let more = false;
  let lastKey: readonly number[] | undefined;
  for (const group of groups) {
    if (group === PAUSE) {
      await yielder.pause();
      continue;
    }
    if (yielder.due()) await yielder.pause();
    const size = shape.size(group);
    if (size === 0) continue;
    total += size;
    if (more) {
      if (!count) break;
      continue;
    }
    for (let i = firstOf(group, size); i < size; i++) {
      if (out.length === limit) {
        more = true;
        break;
      }
      out.push(shape.rowAt(group, i));
      lastKey = shape.keyOf(group, i);
    }
  }
  return { items: out, total: count ? total : undefined, nextKey: more ? lastKey : undefined };
}

/** Every candidate that passes its test, pausing on long runs. */
export async function collect<T>({ rows, test }: Candidates<T>, yielder: Yielder): Promise<T[]> {
  if (test === undefined && Array.isArray(rows)) return rows;
  const out: T[] = [];
  for (const row of rows) {
    if (yielder.due()) await yielder.pause();
    if (test === undefined || test(row)) out.push(row);
  }
  return out;
}

/** Where a whole result starts: after `offset` rows, or after a cursor's key. */
export interface StreamStart<K> {
  readonly offset: number;
  readonly after?: K;
}

/** Every candidate in key order from `start`, read as it is consumed (a whole result). */
export function* streamInOrder<T>(
  { rows, test }: Candidates<T>,
  keyOf: (item: T) => readonly number[],
  { offset, after }: StreamStart<readonly number[]>,
  yielder: Yielder,
): LazyRows<T> {
  let toSkip = offset;
  for (const item of rows) {
    if (yielder.due()) yield PAUSE;
    if (test !== undefined && !test(item)) continue;
    if (after !== undefined && compareSeqKeys(keyOf(item), after) <= 0) continue;
    if (toSkip > 0) toSkip--;
    else yield item;
  }
}

/** Every row of the groups from `start`, read as it is consumed; whole groups are skipped by size. */
export function* streamGroups<G, T>(
  groups: Iterable<G | typeof PAUSE>,
  shape: GroupShape<G, T>,
  { offset, after }: StreamStart<readonly number[]>,
  yielder: Yielder,
): LazyRows<T> {
  const firstOf = skipper(shape, offset, after);
  for (const group of groups) {
    if (group === PAUSE) {
      yield PAUSE;
      continue;
    }
    if (yielder.due()) yield PAUSE;
    const size = shape.size(group);
    for (let i = firstOf(group, size); i < size; i++) yield shape.rowAt(group, i);
  }
}

/**
 * Every candidate from `start` in the order of `compare` (explicit sort of a whole result).
 * Sorting needs them all at once, so more than `maxRows` matches are refused.
 * @throws ResultTooLargeError
 */
export async function sortAll<T>(
  { rows, test }: Candidates<T>,
  keyOf: (item: T) => RowKey,
  compare: (a: RowKey, b: RowKey) => number,
  { offset, after }: StreamStart<RowKey>,
  maxRows: number,
  yielder: Yielder,
): Promise<T[]> {
  const entries: { item: T; key: RowKey }[] = [];
  for (const item of rows) {
    if (yielder.due()) await yielder.pause();
    if (test !== undefined && !test(item)) continue;
    const key = keyOf(item);
    if (after !== undefined && compare(key, after) <= 0) continue;
    if (entries.length === maxRows) {
      throw new ResultTooLargeError(
        maxRows + 1,
        maxRows,
        'sort at least',
        'Filter the result, or read it in default order',
      );
    }
    entries.push({ item, key });
  }
  entries.sort((a, b) => compare(a.key, b.key));
  return entries.slice(offset).map((entry) => entry.item);
}
