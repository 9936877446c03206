import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Servers that stand in for Redis in its failure modes, for the storage's specs, the e2e spec
 * and bench/redis-throttle.ts (the proxies work for any TCP protocol: the cluster's e2e specs
 * hold a replica's NATS connection with HoldingProxy). Everything here is stopped by the
 * caller: processes by their PID.
 */

/** A free loopback port: the OS picks one, which is released at once (nothing listens on it). */
export async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

/** A listening loopback server that tracks its connections, to close them all. */
abstract class TrackingServer {
  protected readonly sockets = new Set<net.Socket>();
  private readonly server = net.createServer((socket) => {
    this.track(socket);
    this.accept(socket);
  });

  protected abstract accept(socket: net.Socket): void;

  protected track(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => this.sockets.delete(socket));
  }

  async listen(): Promise<number> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    return (this.server.address() as net.AddressInfo).port;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    this.server.close();
    await once(this.server, 'close');
  }
}

/** Accepts connections and never answers on them, like a stalled server or a half-open path. */
export class Blackhole extends TrackingServer {
  protected accept(): void {}
}

/**
 * A TCP proxy that can hold back what the server sends and let it through later, in order and
 * whole: a client that falls behind (a replica behind its log) for as long as a test wants,
 * its connection intact. What the client sends always goes through.
 */
export class HoldingProxy extends TrackingServer {
  private held: (() => void)[] | undefined;

  constructor(private readonly target: { host: string; port: number }) {
    super();
  }

  /** From now on the server's bytes wait, for every connection. */
  hold(): void {
    this.held ??= [];
  }

  /** Sends what was held, then lets everything through again. */
  release(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const send of held) send();
  }

  protected accept(client: net.Socket): void {
    const upstream = net.connect(this.target.port, this.target.host);
    this.track(upstream);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('data', (data) => upstream.write(data));
    upstream.on('data', (data) => {
      if (this.held === undefined) client.write(data);
      else this.held.push(() => client.write(data));
    });
  }
}

/**
 * A TCP proxy to a Redis that can go silent, as a firewall or a partition does: the connections
 * stay open and nothing gets through. `silence('existing')` affects the connections it holds
 * (new ones pass); `silence('all')` every connection, new ones included.
 */
export class SilencingProxy extends TrackingServer {
  private readonly silenced = new WeakSet<net.Socket>();
  private silentForAll = false;

  constructor(private readonly target: { host: string; port: number }) {
    super();
  }

  silence(which: 'existing' | 'all'): void {
    for (const socket of this.sockets) this.silenced.add(socket);
    if (which === 'all') this.silentForAll = true;
  }

  protected accept(client: net.Socket): void {
    const upstream = net.connect(this.target.port, this.target.host);
    this.track(upstream);
    const passes = () => !this.silentForAll && !this.silenced.has(client);
    client.on('data', (data) => passes() && upstream.write(data));
    upstream.on('data', (data) => passes() && client.write(data));
  }
}

/** Whether a Redis answers PING on this port. */
function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const done = (answered: boolean) => {
      socket.destroy();
      resolve(answered);
    };
    socket.setTimeout(500, () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (data) => done(data.toString().startsWith('+PONG')));
    socket.on('error', () => done(false));
  });
}

/** A redis-server of the test's own on a loopback `port`, without persistence. */
export class RedisProcess {
  private child?: ChildProcess;

  constructor(readonly port: number) {}

  async start(): Promise<void> {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1'];
    this.child = spawn('redis-server', [...args, '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    });
    for (let i = 0; i < 100; i++) {
      if (await answersPing(this.port)) return;
      await sleep(50);
    }
    throw new Error(`redis-server did not answer on port ${this.port}`);
  }

  /** Kills it by its PID and waits until it has exited. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }
}
