import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import type { Readable } from 'node:stream';

/**
 * Child processes for the cluster harness and `npm run cluster:local`: each is stopped by its
 * own PID, never by name, and none outlives this process.
 */

/** Children still running: killed (SIGKILL) when this process exits, however it exits. */
const running = new Set<ChildProcess>();
const exitHooks = new Set<() => void>();
process.once('exit', () => {
  for (const child of running) {
    try {
      process.kill(child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const hook of exitHooks) hook();
});

/** Kills `child` by its PID when this process exits, unless it has exited by then. */
export function killOnExit(child: ChildProcess): ChildProcess {
  running.add(child);
  child.once('exit', () => running.delete(child));
  child.once('error', () => running.delete(child));
  return child;
}

/** Runs `hook` (synchronous) when this process exits; returns a function that cancels it. */
export function onExit(hook: () => void): () => void {
  exitHooks.add(hook);
  return () => exitHooks.delete(hook);
}

/** Whether `child` has exited, or never started (spawn failed: no PID). */
export function exited(child: ChildProcess): boolean {
  return child.pid === undefined || child.exitCode !== null || child.signalCode !== null;
}

/** Resolves once `child` has exited; with `graceMs`, sends it SIGKILL if that takes longer. */
export function waitExit(child: ChildProcess, graceMs?: number): Promise<void> {
  if (exited(child)) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = graceMs === undefined ? undefined : setTimeout(() => kill(child), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Sends `signal` to `child` by its PID and waits for it to exit (SIGKILL after `graceMs`). */
export async function stopChild(
  child: ChildProcess,
  signal: NodeJS.Signals = 'SIGTERM',
  graceMs = 10_000,
): Promise<void> {
  if (exited(child)) return;
  kill(child, signal);
  await waitExit(child, signal === 'SIGKILL' ? undefined : graceMs);
}

function kill(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(child.pid!, signal);
  } catch {
    // it exited meanwhile
  }
}

/** Calls `onLine` with each whole line `stream` carries. */
export function eachLine(stream: Readable, onLine: (line: string) => void): void {
  let partial = '';
  stream.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop()!;
    lines.forEach(onLine);
  });
  stream.on('end', () => partial && onLine(partial));
}

/** Ports handed out by this process, so that two servers never get the same one. */
const handedOut = new Set<number>();

/**
 * A loopback port that was free a moment ago (bound as port 0, then closed). Another process can
 * still take it before the caller binds it: callers retry on EADDRINUSE.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const { port } = server.address() as { port: number };
        server.close(() => resolve(port));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

/** Thrown by a `waitFor` check that will never succeed: `waitFor` rethrows it at once. */
export class StopWaiting extends Error {}

/**
 * Polls `check` every 50 ms until it returns something other than undefined, and returns that.
 * A check that throws counts as not yet (a server not listening yet), except with `StopWaiting`.
 *
 * @throws after `timeoutMs`, naming `what`, the last error and `detail()`.
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs: number,
  detail: () => string = () => '',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      if (error instanceof StopWaiting) throw error;
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const cause = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}${cause}${detail()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
