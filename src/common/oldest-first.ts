/** An item of an OldestFirst queue: its position is kept on it, so it can leave in O(log n). */
export interface Queued {
  /** Ordered by this first… */
  readonly seq: number;
  /** …then by this (insertion order). */
  readonly order: number;
  /** Where the item sits in the heap; -1 when it is not queued. */
  position: number;
}

function before(a: Queued, b: Queued): boolean {
  return a.seq < b.seq || (a.seq === b.seq && a.order < b.order);
}

/**
 * A binary min-heap by (seq, order): the oldest item by sequence first, and within equal
 * sequences the first inserted. Any item can be removed (expired, replaced) without a search.
 */
export class OldestFirst<T extends Queued> {
  private readonly heap: T[] = [];

  get size(): number {
    return this.heap.length;
  }

  peek(): T | undefined {
    return this.heap[0];
  }

  push(item: T): void {
    item.position = this.heap.length;
    this.heap.push(item);
    this.up(item.position);
  }

  remove(item: T): void {
    const at = item.position;
    if (at < 0 || this.heap[at] !== item) return;
    const last = this.heap.pop() as T;
    item.position = -1;
    if (last === item) return;
    this.heap[at] = last;
    last.position = at;
    this.down(at);
    this.up(last.position);
  }

  private up(at: number): void {
    const heap = this.heap;
    while (at > 0) {
      const parent = (at - 1) >> 1;
      if (!before(heap[at], heap[parent])) return;
      this.swap(at, parent);
      at = parent;
    }
  }

  private down(at: number): void {
    const heap = this.heap;
    for (;;) {
      const left = 2 * at + 1;
      const right = left + 1;
      let least = at;
      if (left < heap.length && before(heap[left], heap[least])) least = left;
      if (right < heap.length && before(heap[right], heap[least])) least = right;
      if (least === at) return;
      this.swap(at, least);
      at = least;
    }
  }

  private swap(a: number, b: number): void {
    const heap = this.heap;
    [heap[a], heap[b]] = [heap[b], heap[a]];
    heap[a].position = a;
    heap[b].position = b;
  }
}
