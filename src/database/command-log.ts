import { Logger } from '@nestjs/common';
import type { Command, LogEntry, Outcome } from './commands';
import type { Journal } from './persistence/change';
import { OldestFirst, type Queued } from '../common/oldest-first';
import { StorageUnavailableError } from './database.errors';
import type { StateMachine } from './state-machine';

/** A command's place in the log and what applying it gave. */
export interface Applied {
  readonly seq: number;
  readonly outcome: Outcome;
}

interface Ticket {
  readonly seq: number;
  readonly command: Command;
  /** Undefined while its journal write runs; then whether it was written. */
  written?: boolean;
  error?: unknown;
  resolve(applied: Applied): void;
  reject(error: unknown): void;
}

/** A request waiting for a position (X-Memdb-Min-Seq), in a heap by position. */
interface Waiter extends Queued {
  readonly resolve: (reached: boolean) => void;
}

/**
 * The embedded log: gives each command the next sequence number, writes it to the journal
 * (when DATA_DIR is set) and applies it, strictly in sequence order whatever order the writes
 * complete in. A command that could not be logged is not applied; its number is skipped
 * (numbers increase but need not be contiguous). Without a journal a command is applied at once.
 */
export class CommandLog {
  private journal: Journal | undefined;
  /** The last sequence number given out. */
  private last: number;
  private readonly pending: Ticket[] = [];
  private readonly waiters = new OldestFirst<Waiter>();
  private waiterOrder = 0;
  /** Set when an entry could not be applied: nothing more is applied or served. */
  stopped: Error | undefined;
  /** Told once when that happens (main.ts then stops the process, exit 1). */
  onStopped: ((error: Error) => void) | undefined;

  /**
   * Whether the log itself orders concurrent writes to a table (a stream does), so the write
   * path need not hold the table's lock while a write waits for its entry.
   */
  get sequencesItself(): boolean {
    return false;
  }

  constructor(protected readonly machine: StateMachine) {
    this.last = machine.appliedSeq;
  }

  /** From now on every command is written to `journal` before it is applied. */
  attach(journal: Journal | undefined): void {
    this.journal = journal;
    this.last = Math.max(this.last, this.machine.appliedSeq);
  }

  /** Continues numbering after `seq` (a loaded log). */
  continueAfter(seq: number): void {
    this.last = Math.max(this.last, seq);
  }

  get appliedSeq(): number {
    return this.machine.appliedSeq;
  }

  /** The last sequence number given out (applied, skipped or reserved). */
  get lastGiven(): number {
    return this.last;
  }

  /** Gives out a sequence number that applies no command (a restore's place in the log). */
  reserve(): number {
    return ++this.last;
  }

  /**
   * Logs and applies a command. Synchronous without a journal. (The Idempotency-Key's id matters
   * in cluster mode, where it is the message id; here the journal keeps the answers instead.)
   * @throws the journal's DatabaseError when it cannot be written (nothing is applied)
   */
  submit(command: Command, _idempotencyId?: string): Applied | Promise<Applied> {
    if (this.stopped !== undefined) throw this.stopped;
    const seq = ++this.last;
    if (this.journal === undefined) return this.applyNow(seq, command);
    return new Promise<Applied>((resolve, reject) => {
      const ticket: Ticket = { seq, command, resolve, reject };
      this.pending.push(ticket);
      this.journal!.append({ seq, command } satisfies LogEntry).then(
        () => this.settle(ticket, true),
        (error: unknown) => {
          ticket.error = error;
          this.settle(ticket, false);
        },
      );
    });
  }

  /** Applies an entry read back from the log (recovery). */
  replay(seq: number, command: Command): Outcome {
    this.last = Math.max(this.last, seq);
    return this.machine.apply(seq, command);
  }

  /**
   * Resolves true once entry `seq` is applied, false after `timeoutMs` or when `cancel` is
   * aborted (the client left). Waiters sit in a heap by position: waking and timing out cost
   * O(log n) each, however many wait.
   */
  waitFor(seq: number, timeoutMs: number, cancel?: AbortSignal): Promise<boolean> {
    if (this.machine.appliedSeq >= seq) return Promise.resolve(true);
    if (cancel?.aborted === true) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (reached: boolean) => {
        clearTimeout(timer);
        cancel?.removeEventListener('abort', abandon);
        this.waiters.remove(waiter);
        resolve(reached);
      };
      const abandon = () => done(false);
      const waiter: Waiter = { seq, order: this.waiterOrder++, position: -1, resolve: done };
      const timer = setTimeout(abandon, timeoutMs);
      cancel?.addEventListener('abort', abandon, { once: true });
      this.waiters.push(waiter);
    });
  }

  /**
   * Moves the applied position to `seq` without a command (a restore's swap), waking the
   * requests waiting for it.
   */
  advanceTo(seq: number): void {
    this.machine.skip(seq);
    this.notify();
  }

  private settle(ticket: Ticket, written: boolean): void {
    ticket.written = written;
    // Writes complete in order, but apply strictly in sequence order all the same.
    while (this.pending.length > 0 && this.pending[0].written !== undefined) {
      const next = this.pending.shift()!;
      if (this.stopped !== undefined) {
        // Never applied past an entry that could not be: every server must stop at it alike.
        next.reject(new StorageUnavailableError(`stopped: ${this.stopped.message}`));
      } else if (next.written === true) {
        try {
          next.resolve(this.applyNow(next.seq, next.command));
        } catch (error) {
          next.reject(error);
        }
      } else {
        this.machine.skip(next.seq);
        this.notify();
        next.reject(next.error);
      }
    }
  }

  protected applyNow(seq: number, command: Command): Applied {
    let outcome: Outcome;
    try {
      outcome = this.machine.apply(seq, command);
    } catch (error) {
      this.halt(error as Error);
      throw error;
    }
    if (this.waiters.size > 0) this.notify();
    return { seq, outcome };
  }

  /**
   * Stops at an entry that cannot be applied (a bug, or its stored body gone): never skipped,
   * so nothing more is applied or served.
   */
  protected halt(error: Error): void {
    if (this.stopped !== undefined) return;
    this.stopped = error;
    new Logger('CommandLog').error(
      `Stopped applying the log: ${error.message}. Every request now gets 503; a restart replays the log and stops at the same entry until a fixed memdb applies it.`,
    );
    this.onStopped?.(error);
  }

  protected notify(): void {
    const applied = this.machine.appliedSeq;
    for (let first = this.waiters.peek(); first !== undefined && first.seq <= applied;) {
      first.resolve(true);
      first = this.waiters.peek();
    }
  }
}
