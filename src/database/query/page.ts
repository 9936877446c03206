import type { CursorKey } from './cursor';
import type { RowKey } from './sort';
import { TopK } from './top-k';
import type { Yielder } from './yielder';

export interface PageRequest<K> {
  readonly limit: number;
  readonly offset: number;
  /** Keyset position: only items strictly after it. */
  readonly after?: K;
  /** Count every match (for X-Total-Count); false lets a scan stop at the page's end. */
  readonly count: boolean;
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
  { limit, offset, after, count }: PageRequest<readonly number[]>,
  yielder: Yielder,
): Promise<Page<T>> {
  const out: T[] = [];
  let total = 0;
  let skipped = 0;
  let more = false;
  for (const item of rows) {
    if (yielder.due()) await yielder.pause();
    if (test !== undefined && !test(item)) continue;
    total++;
    if (more) {
      if (!count) break;
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
    total: count ? total : undefined,
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

/**
 * Pages grouped rows in default order without visiting every row: whole groups are counted
 * and skipped by size, and the cursor is found inside a group by binary search. Keys increase
 * through each group and from one group to the next.
 */
export async function pageGroups<G, T>(
  groups: Iterable<G>,
  shape: GroupShape<G, T>,
  { limit, offset, after, count }: PageRequest<readonly number[]>,
  yielder: Yielder,
): Promise<Page<T>> {
  const out: T[] = [];
  let total = 0;
  let toSkip = offset;
  let more = false;
  let lastKey: readonly number[] | undefined;
  for (const group of groups) {
    if (yielder.due()) await yielder.pause();
    const size = shape.size(group);
    if (size === 0) continue;
    total += size;
    if (more) {
      if (!count) break;
      continue;
    }
    let start = 0;
    if (after !== undefined) {
      let low = 0;
      let high = size;
      while (low < high) {
        const middle = (low + high) >>> 1;
        if (compareSeqKeys(shape.keyOf(group, middle), after) <= 0) low = middle + 1;
        else high = middle;
      }
      start = low;
    }
    const available = size - start;
    if (toSkip >= available) {
      toSkip -= available;
      continue;
    }
    start += toSkip;
    toSkip = 0;
    for (let i = start; i < size; i++) {
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
