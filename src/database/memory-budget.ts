import { getHeapStatistics } from 'node:v8';

const SAMPLE_INTERVAL_MS = 250;

/**
 * Whether the V8 heap is over a budget, sampled four times a second (sampling on every write
 * would cost more than the write). Between samples a burst can overshoot by what a quarter of
 * a second of writes allocates.
 */
export class MemoryBudget {
  private usedBytes: number;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly limitBytes: number,
    private readonly measure: () => number = () => getHeapStatistics().used_heap_size,
  ) {
    this.usedBytes = measure();
  }

  get exceeded(): boolean {
    return this.usedBytes > this.limitBytes;
  }

  get used(): number {
    return this.usedBytes;
  }

  start(): void {
    this.timer ??= setInterval(() => (this.usedBytes = this.measure()), SAMPLE_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
