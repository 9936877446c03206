/**
 * Lets writes run concurrently while a maintenance step (a snapshot's point-in-time copy, a
 * restore's swap) can stop new ones and wait for those in flight. The pause is short: it only
 * covers switching the log and copying table references.
 */
export class WriteGate {
  private inFlight = 0;
  private paused: Promise<void> | undefined;
  private drained: (() => void) | undefined;

  async run<T>(write: () => Promise<T>): Promise<T> {
    while (this.paused !== undefined) await this.paused;
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
}
