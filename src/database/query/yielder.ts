import { performance } from 'node:perf_hooks';

const CHECK_EVERY = 1024;

/**
 * Yielded by a lazy row source (a streamed result) when its slice of work is used up, even if
 * it has found no row yet: the consumer sends what it holds and gives the event loop back.
 */
export const PAUSE: unique symbol = Symbol('pause');

/** Rows read lazily, with PAUSE markers between slices of work. */
export type LazyRows<T> = Iterable<T | typeof PAUSE>;

/**
 * Lets a long scan, join or sort give the event loop back: call `due()` once per unit of
 * work and `await pause()` when it says so. It checks the clock every 1024 units and asks for a
 * pause once `sliceMs` of work has run, so small requests keep being answered while a large
 * query runs, at a cost of one counter increment per unit.
 */
export class Yielder {
  private units = 0;
  private sliceStart = performance.now();

  constructor(private readonly sliceMs = 8) {}

  due(): boolean {
    if (++this.units % CHECK_EVERY !== 0) return false;
    return performance.now() - this.sliceStart >= this.sliceMs;
  }

  pause(): Promise<void> {
    return new Promise((resolve) =>
      setImmediate(() => {
        this.sliceStart = performance.now();
        resolve();
      }),
    );
  }
}
