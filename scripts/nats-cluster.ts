import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  eachLine,
  exited,
  freePort,
  killOnExit,
  onExit,
  stopChild,
  StopWaiting,
  waitFor,
} from './processes';

export { freePort, StopWaiting, waitFor } from './processes';

/**
 * Local nats-server processes (clustered, with JetStream) for the cluster tests and
 * `npm run cluster:local`. Every process is started here and stopped here by its own PID, never by
 * name: the machine's shared nats-server on 4222 is not ours to touch.
 */

/** The nats-server binary (Debian's package); NATS_SERVER_BIN overrides it. */
export const NATS_SERVER_BIN = process.env.NATS_SERVER_BIN ?? '/usr/sbin/nats-server';

export interface NatsClusterOptions {
  /** How many servers; 1 starts a single server with no cluster route. @default 3 */
  readonly servers?: number;
  /** Enables JetStream (`-js`, each server with its own store dir). @default true */
  readonly jetstream?: boolean;
  /** How long start and restart wait for the servers to be ready. @default 60000 */
  readonly readyTimeoutMs?: number;
  /** Receives each line the servers log (they log to stderr); kept quiet by default. */
  readonly log?: (server: string, line: string) => void;
}

export interface NatsServer {
  /** The server's name (`-n`): what JetStream reports as a stream's leader. */
  readonly name: string;
  /** Its client URL, nats://127.0.0.1:<port>. */
  readonly url: string;
  /** Its monitoring endpoint, http://127.0.0.1:<port>. */
  readonly monitorUrl: string;
  /** The PID of its current process (a restart changes it). */
  readonly pid: number;
  /** Its JetStream store directory (`-sd`), kept across restarts. */
  readonly storeDir: string;
}

export interface NatsCluster {
  /** The servers' client URLs, in server order. */
  readonly urls: string[];
  readonly servers: NatsServer[];
  /**
   * Sends `signal` (default SIGKILL) to server `index` by its PID and waits until the process
   * has exited; a server still running 10 s after another signal gets SIGKILL.
   */
  kill(index: number, signal?: NodeJS.Signals): Promise<void>;
  /**
   * Starts server `index` again on the same ports and store dir (stopping it first if it runs)
   * and waits until it is healthy, its routes are back and it knows the JetStream meta leader.
   */
  restart(index: number): Promise<void>;
  /** The name of the server leading `stream`'s Raft group, as the servers report it, if any. */
  streamLeader(stream: string): Promise<string | undefined>;
  /** Stops every server (SIGTERM, SIGKILL after 10 s), waits for them, removes the store dirs. */
  stop(): Promise<void>;
}

interface Ports {
  readonly client: number;
  readonly route: number;
  readonly monitor: number;
}

interface Member {
  readonly name: string;
  readonly ports: Ports;
  readonly storeDir: string;
  child: ChildProcess;
  /** The last lines it logged, for error messages. */
  readonly tail: string[];
}

const START_ATTEMPTS = 3;
const TAIL_LINES = 30;

async function getJson<T>(url: string): Promise<{ status: number; body: T }> {
  const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
  return { status: response.status, body: (await response.json()) as T };
}

class NatsServerExited extends StopWaiting {
  constructor(
    member: Member,
    readonly portInUse: boolean,
  ) {
    const { child } = member;
    const how =
      child.pid === undefined
        ? `could not be started (NATS_SERVER_BIN=${NATS_SERVER_BIN})`
        : `exited (${child.exitCode ?? child.signalCode})`;
    super(`nats-server ${member.name} ${how}; its last lines:\n${member.tail.join('\n')}`);
  }
}

/**
 * Starts `servers` nats-server processes on free loopback ports, clustered (routes to all the
 * others) and with JetStream, and waits until they are ready: every /healthz answers ok (with
 * JetStream, only once it is in contact with a meta leader), every server has a route to each
 * other one, and all of them name the same JetStream meta leader. When another process takes one
 * of the ports first, it starts again on new ones. Stop it with `stop()` (in an afterAll); should
 * this process exit without that, its servers are killed (SIGKILL) on the way out.
 *
 * @throws when a server exits early (its last log lines are in the message) or the cluster is
 * not ready within `readyTimeoutMs`.
 */
export async function startNatsCluster({
  servers: size = 3,
  jetstream = true,
  readyTimeoutMs = 60_000,
  log,
}: NatsClusterOptions = {}): Promise<NatsCluster> {
  if (!Number.isInteger(size) || size < 1) throw new Error(`servers must be 1 or more: ${size}`);
  const root = mkdtempSync(join(tmpdir(), 'memdb-nats-'));
  const removeRoot = () => rmSync(root, { recursive: true, force: true });
  const cancelRemoval = onExit(removeRoot);
  const clusterName = `memdb-${process.pid}-${root.slice(-6)}`;
  let members: Member[] = [];

  const args = (member: Member): string[] => {
    const list = ['-a', '127.0.0.1', '-p', String(member.ports.client)];
    list.push('-m', String(member.ports.monitor), '-n', member.name);
    if (jetstream) list.push('-js', '-sd', member.storeDir);
    if (size > 1) {
      const routes = members
        .filter((other) => other !== member)
        .map((other) => `nats://127.0.0.1:${other.ports.route}`);
      list.push('--cluster_name', clusterName);
      list.push('--cluster', `nats://127.0.0.1:${member.ports.route}`);
      list.push('--routes', routes.join(','));
    }
    return list;
  };

  const launch = (member: Member): void => {
    const child = spawn(NATS_SERVER_BIN, args(member), { stdio: ['ignore', 'pipe', 'pipe'] });
    member.child = child;
    member.tail.length = 0;
    killOnExit(child);
    child.once('error', (error) => member.tail.push(`${NATS_SERVER_BIN}: ${error.message}`));
    const onLine = (line: string): void => {
      member.tail.push(line);
      if (member.tail.length > TAIL_LINES) member.tail.shift();
      log?.(member.name, line);
    };
    eachLine(child.stdout!, onLine);
    eachLine(child.stderr!, onLine);
  };

  const monitor = <T>(member: Member, path: string) =>
    getJson<T>(`http://127.0.0.1:${member.ports.monitor}${path}`);
  const live = () => members.filter((member) => !exited(member.child));

  /**
   * True once every running server is healthy and routed to every other running one; throws
   * if one of `expected` has exited.
   */
  const allReady = async (expected: Member[]): Promise<true | undefined> => {
    for (const member of expected) {
      if (exited(member.child)) {
        const portInUse = member.tail.some((line) => /address already in use/i.test(line));
        throw new NatsServerExited(member, portInUse);
      }
    }
    const up = live();
    const checks = await Promise.all(
      up.map(async (member) => {
        const health = await monitor<{ status: string }>(member, '/healthz');
        const varz = await monitor<{ server_id: string }>(member, '/varz');
        const routez = await monitor<{ routes?: { remote_id: string }[] }>(member, '/routez');
        const routed = new Set((routez.body.routes ?? []).map((route) => route.remote_id));
        return { id: varz.body.server_id, healthy: health.body.status === 'ok', routed };
      }),
    );
    const ids = checks.map((check) => check.id);
    const ok = checks.every(
      (check) => check.healthy && ids.every((id) => id === check.id || check.routed.has(id)),
    );
    return ok ? true : undefined;
  };

  /** The JetStream meta leader, once every running server names the same one. */
  const metaLeader = async (): Promise<string | undefined> => {
    const named = await Promise.all(
      live().map(async (member) => {
        const jsz = await monitor<{ meta_cluster?: { leader?: string } }>(member, '/jsz');
        return jsz.body.meta_cluster?.leader;
      }),
    );
    return named.every((leader) => leader === named[0]) ? named[0] : undefined;
  };

  const detail = () =>
    members
      .map((member) => `\n--- ${member.name}, last lines ---\n${member.tail.join('\n')}`)
      .join('');

  const waitReady = async (expected: Member[]): Promise<void> => {
    const deadline = Date.now() + readyTimeoutMs;
    const what = `${expected.map((member) => member.name).join(', ')} to be healthy and routed`;
    await waitFor(what, () => allReady(expected), readyTimeoutMs, detail);
    if (jetstream && size > 1)
      await waitFor('a JetStream meta leader', metaLeader, deadline - Date.now(), detail);
  };

  const stopAll = () => Promise.all(members.map((member) => stopChild(member.child)));
  const cleanUp = async () => {
    await stopAll();
    removeRoot();
    cancelRemoval();
  };

  for (let attempt = 1; ; attempt++) {
    members = [];
    for (let i = 1; i <= size; i++) {
      const name = `nats-${i}`;
      const storeDir = join(root, name);
      rmSync(storeDir, { recursive: true, force: true });
      if (jetstream) mkdirSync(storeDir);
      const route = size > 1 ? await freePort() : 0;
      const ports = { client: await freePort(), route, monitor: await freePort() };
      members.push({ name, ports, storeDir, child: undefined!, tail: [] });
    }
    members.forEach(launch);
    try {
      await waitReady(members);
      break;
    } catch (error) {
      // Another process bound one of the ports between our probe and the server: new ports.
      if (error instanceof NatsServerExited && error.portInUse && attempt < START_ATTEMPTS) {
        await stopAll();
        continue;
      }
      await cleanUp();
      throw error;
    }
  }

  const memberAt = (index: number): Member => {
    const member = members[index];
    if (member === undefined) throw new Error(`No nats-server at index ${index}`);
    return member;
  };

  let stopped: Promise<void> | undefined;
  const servers: NatsServer[] = members.map((member) => ({
    name: member.name,
    url: `nats://127.0.0.1:${member.ports.client}`,
    monitorUrl: `http://127.0.0.1:${member.ports.monitor}`,
    get pid() {
      return member.child.pid!;
    },
    storeDir: member.storeDir,
  }));

  return {
    urls: servers.map((server) => server.url),
    servers,

    async kill(index, signal = 'SIGKILL') {
      await stopChild(memberAt(index).child, signal);
    },

    async restart(index) {
      const member = memberAt(index);
      if (stopped !== undefined) throw new Error('This NATS cluster is stopped');
      await stopChild(member.child);
      launch(member);
      await waitReady([member]);
    },

    async streamLeader(stream) {
      for (const member of live()) {
        const jsz = await monitor<{
          account_details?: { stream_detail?: { name: string; cluster?: { leader?: string } }[] }[];
        }>(member, '/jsz?streams=true&accounts=true').catch(() => undefined);
        const found = (jsz?.body.account_details ?? [])
          .flatMap((account) => account.stream_detail ?? [])
          .find((candidate) => candidate.name === stream);
        // Only the leader's own word counts: the others may still name a leader that is gone.
        // A lone server (no cluster) leads whatever it holds.
        const leads = found?.cluster ? found.cluster.leader === member.name : found && size === 1;
        if (leads) return member.name;
      }
      return undefined;
    },

    stop() {
      stopped ??= cleanUp();
      return stopped;
    },
  };
}
