/**
 * `npm run cluster:local`: three clustered nats-server processes with JetStream on free loopback
 * ports, and three memdb replicas (dist/main.js, built first if missing) on 8001-8003 using them
 * and the local Redis. Replicas' output is forwarded, each line prefixed by its name. Ctrl-C (or
 * SIGTERM) stops everything this script started, by PID.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { join } from 'node:path';
import { startNatsCluster, type NatsCluster } from './nats-cluster';
import { eachLine, exited, killOnExit, StopWaiting, stopChild, waitFor } from './processes';

const ROOT = join(__dirname, '..');
const REPLICAS = 3;
const FIRST_PORT = 8001;
const REDIS_URL = 'redis://127.0.0.1:6379';

interface Replica {
  readonly name: string;
  readonly url: string;
  readonly child: ChildProcess;
}

function say(line: string): void {
  process.stdout.write(`[cluster-local] ${line}\n`);
}

/** Whether something accepts TCP connections on 127.0.0.1:`port` (a hint only). */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect(port, '127.0.0.1');
    const answer = (yes: boolean) => {
      socket.destroy();
      resolve(yes);
    };
    socket.setTimeout(1000, () => answer(false));
    socket.once('connect', () => answer(true));
    socket.once('error', () => answer(false));
  });
}

function startReplica(index: number, natsUrls: string[]): Replica {
  const name = `replica-${index + 1}`;
  const port = FIRST_PORT + index;
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'main.js')], {
    cwd: ROOT,
    // The user's environment (THROTTLE_LIMIT, LOG_LEVEL, API_KEYS…) with this replica's own place.
    env: {
      ...process.env,
      PORT: String(port),
      HOST: process.env.HOST ?? '127.0.0.1',
      NATS_URL: natsUrls.join(','),
      REDIS_URL,
      REPLICA_NAME: name,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  killOnExit(child);
  const prefix = `[${name}] `;
  eachLine(child.stdout!, (line) => process.stdout.write(prefix + line + '\n'));
  eachLine(child.stderr!, (line) => process.stderr.write(prefix + line + '\n'));
  return { name, url: `http://127.0.0.1:${port}`, child };
}

async function main(): Promise<void> {
  let cluster: NatsCluster | undefined;
  const replicas: Replica[] = [];
  let stopping: Promise<void> | undefined;
  const stop = (code: number) => {
    stopping ??= (async () => {
      say('stopping replicas, then NATS…');
      await Promise.all(replicas.map((replica) => stopChild(replica.child)));
      await cluster?.stop();
      say('stopped');
      process.exit(code);
    })();
    return stopping;
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));

  try {
    if (!existsSync(join(ROOT, 'dist', 'main.js'))) {
      say('dist/main.js is missing: npm run build');
      const build = spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
      if (build.status !== 0) throw new Error('npm run build failed');
    }
    if (!(await listening(6379)))
      say(`warning: nothing listens on ${REDIS_URL}; start Redis (see DEVELOPERS.md)`);

    const started = Date.now();
    cluster = await startNatsCluster({ servers: 3 });
    say(`NATS cluster ready in ${Date.now() - started} ms:`);
    for (const server of cluster.servers)
      say(`  ${server.name}  ${server.url}  monitor ${server.monitorUrl}  pid ${server.pid}`);

    const natsUrls = cluster.urls;
    for (let i = 0; i < REPLICAS; i++) replicas.push(startReplica(i, natsUrls));
    for (const replica of replicas) {
      replica.child.once('exit', (code, signal) => {
        if (stopping === undefined) say(`${replica.name} exited (${code ?? signal})`);
      });
    }
    await Promise.all(
      replicas.map((replica) =>
        waitFor(
          `${replica.name} to answer ${replica.url}/health`,
          async () => {
            if (exited(replica.child)) throw new StopWaiting(`${replica.name} exited`);
            const response = await fetch(`${replica.url}/health`);
            return response.ok || undefined;
          },
          60_000,
        ),
      ),
    );
    say('memdb replicas:');
    for (const replica of replicas)
      say(`  ${replica.name}  ${replica.url}  pid ${replica.child.pid}`);
    say(`NATS_URL=${natsUrls.join(',')}`);
    say('Ctrl-C stops everything started here');
  } catch (error) {
    say(`failed: ${error instanceof Error ? error.message : String(error)}`);
    await stop(1);
  }
}

void main();
