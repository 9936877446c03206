/**
 * Lets writes run concurrently while a maintenance step (a snapshot's point-in-time copy, a
 * restore's swap) can stop new ones and wait for those in flight. The pause is short: it only
 * covers switching the journal's file descriptor and copying or swapping table references, no
 * I/O. A write held longer than `timeoutMs` fails, as a wait for a table's lock does.
 */
export class WriteGate {
  private inFlight = 0;
  private paused: Promise<void> | undefined;
  private drained: (() => void) | undefined;

  constructor(private readonly timeoutMs: number) {}

  /**
   * Runs `write` once no step holds writes.
   * @throws what `timedOut` returns, when writes stay held for more than `timeoutMs`
   */
  async run<T>(write: () => Promise<T>, timedOut: () => Error): Promise<T> {
    if (this.paused !== undefined) await this.open(timedOut);
    this.inFlight++;
    try {
      return await write();
    } finally {
      this.inFlight--;
      if (this.inFlight === 0) this.drained?.();
    }
  }

  /** Runs `step` with no write in flight and none starting. Only one step at a time. */
  async exclusive<T>(step: () => T | Promise<T>): Promise<T> {
    while (this.paused !== undefined) await this.paused;
    let resume!: () => void;
    this.paused = new Promise((resolve) => (resume = resolve));
    try {
      if (this.inFlight > 0) await new Promise<void>((resolve) => (this.drained = resolve));
      this.drained = undefined;
      return await step();
    } finally {
      this.paused = undefined;
      resume();
    }
  }

  private async open(timedOut: () => Error): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(timedOut()), this.timeoutMs);
    });
    try {
      while (this.paused !== undefined) await Promise.race([this.paused, expired]);
    } finally {
      clearTimeout(timer);
    }
  }
}
