import type { INestApplication } from '@nestjs/common';
import { EventSource } from 'eventsource';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { CHANGE_FEEDS } from '../src/changes/changes.controller';
import { deleteStream, startReplica, streamNames } from './helpers/cluster';
import { natsClusters } from './helpers/nats-cluster';
import { tempDirs } from './helpers/temp-dirs';
import { createTestApp } from './helpers/test-app';

/**
 * The change feed (issue 13): GET /api/v1/changes as Server-Sent Events, read with a real
 * EventSource client (the `eventsource` package), and as a long-poll.
 */
jest.setTimeout(60_000);

type Http = ReturnType<INestApplication['getHttpServer']>;

interface Received {
  readonly type: string;
  readonly id: string;
  readonly data: Record<string, unknown>;
}

/** An EventSource on the app, keeping every event it receives in order. */
class Feed {
  readonly events: Received[] = [];
  private readonly source: EventSource;
  private waiters: (() => void)[] = [];

  constructor(base: string, path: string, headers: Record<string, string> = {}) {
    this.source = new EventSource(`${base}${path}`, {
      fetch: (input, init) =>
        fetch(input, { ...init, headers: { ...(init?.headers ?? {}), ...headers } }),
    });
    for (const type of ['change', 'table', 'reset', 'overflow']) {
      this.source.addEventListener(type, (event) => {
        this.events.push({ type, id: event.lastEventId, data: JSON.parse(event.data) });
        for (const wake of this.waiters) wake();
      });
    }
  }

  opened(): Promise<void> {
    if (this.source.readyState === EventSource.OPEN) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.source.addEventListener('open', () => resolve(), { once: true });
      this.source.addEventListener('error', (e) => reject(new Error(String(e.message))), {
        once: true,
      });
    });
  }

  /** Resolves once `count` events have arrived (they are in `events`). */
  async received(count: number): Promise<Received[]> {
    while (this.events.length < count) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
      this.waiters = [];
    }
    return this.events;
  }

  close(): void {
    this.source.close();
  }
}

describe('Change feed: GET /api/v1/changes', () => {
  let app: INestApplication;
  let http: Http;
  let base: string;
  const feeds: Feed[] = [];
  const open = async (path: string, headers?: Record<string, string>) => {
    const feed = new Feed(base, path, headers);
    feeds.push(feed);
    await feed.opened();
    return feed;
  };

  beforeAll(async () => {
    app = await createTestApp({ env: { CHANGES_RETAIN: '50' } });
    http = app.getHttpServer();
    base = await listening(app);
  });
  afterEach(() => {
    for (const feed of feeds.splice(0)) feed.close();
  });
  afterAll(() => app.close());

  it('streams every insert, update, delete, bulk write and table event in order, with its position', async () => {
    const feed = await open('/api/v1/changes?tables=feed1');
    const created = await request(http).post('/api/v1/tables').send({ name: 'feed1' }).expect(201);
    const bulk = await request(http)
      .post('/api/v1/data/feed1')
      .send([
        { id: 'a', n: 1 },
        { id: 'b', n: 2 },
        { id: 'c', n: 3 },
      ])
      .expect(201);
    const patched = await request(http).patch('/api/v1/data/feed1/b').send({ n: 20 }).expect(200);
    const deleted = await request(http).delete('/api/v1/data/feed1/c').expect(204);
    // A 409 changes nothing: no event.
    await request(http).post('/api/v1/data/feed1').send({ id: 'a' }).expect(409);
    const index = await request(http)
      .post('/api/v1/tables/feed1/indexes')
      .send({ field: 'n' })
      .expect(201);
    const seq = (res: request.Response) => Number(res.headers['x-memdb-seq']);

    const events = await feed.received(7);
    expect(events.map((e) => [e.type, e.id, e.data.op])).toEqual([
      ['table', `${seq(created)}.0`, 'create_table'],
      ['change', `${seq(bulk)}.0`, 'insert'],
      ['change', `${seq(bulk)}.1`, 'insert'],
      ['change', `${seq(bulk)}.2`, 'insert'],
      ['change', `${seq(patched)}.0`, 'update'],
      ['change', `${seq(deleted)}.0`, 'delete'],
      ['table', `${seq(index)}.0`, 'create_index'],
    ]);
    expect(events[1].data).toEqual({
      pos: `${seq(bulk)}.0`,
      seq: seq(bulk),
      table: 'feed1',
      op: 'insert',
      id: 'a',
      record: bulk.body[0],
    });
    expect(events[4].data.record).toEqual(patched.body);
    expect(events[5].data).toMatchObject({ id: 'c', record: null });
    expect(events[6].data).toMatchObject({ table: 'feed1', field: 'n' });
  });

  it('answers with SSE headers and the sequence it starts after', async () => {
    const res = await fetch(`${base}/api/v1/changes`, {
      headers: { Accept: 'text/event-stream' },
    });
    try {
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
      expect(res.headers.get('cache-control')).toBe('no-cache');
      expect(res.headers.get('x-accel-buffering')).toBe('no');
      expect(res.headers.get('x-memdb-seq')).toMatch(/^\d+$/);
    } finally {
      await res.body?.cancel();
    }
  });

  it('resumes with Last-Event-ID after a cut, missing nothing and repeating nothing while writes go on', async () => {
    const first = await open('/api/v1/changes?tables=feed2');
    for (let i = 0; i < 5; i++)
      await request(http)
        .post('/api/v1/data/feed2')
        .send({ id: `r${i}` })
        .expect(201);
    const seen = (await first.received(5)).slice(0, 3);
    first.close();
    for (let i = 5; i < 10; i++)
      await request(http)
        .post('/api/v1/data/feed2')
        .send({ id: `r${i}` })
        .expect(201);
    const second = await open('/api/v1/changes?tables=feed2', {
      'Last-Event-ID': seen[2].id,
    });
    const rest = await second.received(7);
    expect([...seen, ...rest].map((e) => e.data.id)).toEqual(
      Array.from({ length: 10 }, (_, i) => `r${i}`),
    );
  });

  it('resumes after a whole entry with since=<seq>', async () => {
    const one = await request(http).post('/api/v1/data/feed3').send({ id: 'x' }).expect(201);
    await request(http).post('/api/v1/data/feed3').send({ id: 'y' }).expect(201);
    const feed = await open(`/api/v1/changes?tables=feed3&since=${one.headers['x-memdb-seq']}`);
    const [event] = await feed.received(1);
    expect(event.data.id).toBe('y');
  });

  it('sends reset for a resume point older than what is kept, and for one ahead of the log', async () => {
    const old = await open('/api/v1/changes', { 'Last-Event-ID': '1.0' });
    const [reset] = await old.received(1);
    expect(reset.type).toBe('reset');
    expect(reset.data.reason).toBe('too_old');
    expect(reset.id).toBe(reset.data.continue_from);

    // Ahead of the log (after a restart without DATA_DIR, say): after MIN_SEQ_WAIT_MS, a reset.
    const now = await request(http).get('/api/v1/tables').expect(200);
    const ahead = await open(`/api/v1/changes?since=${Number(now.headers['x-memdb-seq']) + 1000}`);
    const [second] = await ahead.received(1);
    expect(second.type).toBe('reset');
    expect(second.data.reason).toBe('ahead');
    expect(Number(second.data.continue_from)).toBeGreaterThanOrEqual(
      Number(now.headers['x-memdb-seq']),
    );
  });

  it('long-polls: answers at once with what follows since, or with none after wait', async () => {
    const one = await request(http).post('/api/v1/data/feed4').send({ id: 'p' }).expect(201);
    const since = Number(one.headers['x-memdb-seq']) - 1;
    const res = await request(http).get(`/api/v1/changes?tables=feed4&since=${since}`).expect(200);
    expect(res.body).toMatchObject({ reset: null, last_pos: `${since + 1}.0` });
    expect(res.body.changes.map((c: { id: string }) => c.id)).toEqual(['p']);

    const waited = request(http)
      .get(`/api/v1/changes?tables=feed4&since=${since + 1}&wait=30`)
      .then((r) => r);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await request(http).post('/api/v1/data/feed4').send({ id: 'q' }).expect(201);
    expect((await waited).body.changes.map((c: { id: string }) => c.id)).toEqual(['q']);

    // Last-Event-ID works for a long-poll too, and wins over since.
    const resumed = await request(http)
      .get(`/api/v1/changes?tables=feed4&since=0&wait=0`)
      .set('Last-Event-ID', `${since + 1}.0`)
      .expect(200);
    expect(resumed.body.changes.map((c: { id: string }) => c.id)).toEqual(['q']);

    const empty = await request(http).get(`/api/v1/changes?tables=nothing-here&wait=0`).expect(200);
    expect(empty.body.changes).toEqual([]);
  });

  it('refuses bad parameters with 400', async () => {
    for (const query of [
      'since=-1',
      'since=abc',
      'wait=61',
      'limit=0',
      'limit=10001',
      'tables=a,,b',
    ]) {
      const res = await request(http).get(`/api/v1/changes?${query}&wait=0`);
      expect({ query, status: res.status }).toEqual({ query, status: 400 });
    }
    const res = await request(http)
      .get('/api/v1/changes')
      .set('Accept', 'text/event-stream')
      .set('Last-Event-ID', 'nope');
    expect(res.status).toBe(400);
  });
});

describe('Change feed: filters, slow subscribers and limits', () => {
  let app: INestApplication;
  let http: Http;
  let base: string;

  beforeAll(async () => {
    app = await createTestApp({
      env: { CHANGES_BUFFER_BYTES: '1024', CHANGES_MAX_SUBSCRIBERS: '3', BODY_LIMIT: '4mb' },
    });
    http = app.getHttpServer();
    base = await listening(app);
  });
  afterAll(() => app.close());

  it('filters one table with list filters: records entering and leaving, with matches', async () => {
    const feed = new Feed(base, '/api/v1/changes?tables=orders2&status=eq.paid');
    try {
      await feed.opened();
      await request(http)
        .post('/api/v1/data/orders2')
        .send({ id: 'o1', status: 'new' })
        .expect(201);
      await request(http)
        .post('/api/v1/data/orders2')
        .send({ id: 'o2', status: 'paid' })
        .expect(201);
      await request(http).patch('/api/v1/data/orders2/o1').send({ status: 'paid' }).expect(200);
      await request(http).patch('/api/v1/data/orders2/o2').send({ status: 'refunded' }).expect(200);
      await request(http).patch('/api/v1/data/orders2/o2').send({ note: 'still out' }).expect(200);
      await request(http).delete('/api/v1/data/orders2/o1').expect(204);
      await request(http).post('/api/v1/data/other2').send({ id: 'x', status: 'paid' }).expect(201);
      await feed.received(4);
      await request(http)
        .post('/api/v1/data/orders2')
        .send({ id: 'o3', status: 'paid' })
        .expect(201);
      const all = await feed.received(5);
      expect(all.map((e) => [e.data.op, e.data.id, e.data.matches])).toEqual([
        ['insert', 'o2', true],
        ['update', 'o1', true],
        ['update', 'o2', false],
        ['delete', 'o1', false],
        ['insert', 'o3', true],
      ]);
    } finally {
      feed.close();
    }
    const bad = await request(http).get('/api/v1/changes?tables=a,b&status=eq.paid&wait=0');
    expect(bad.status).toBe(400);
    const noTable = await request(http).get('/api/v1/changes?status=eq.paid&wait=0');
    expect(noTable.status).toBe(400);
    const badOp = await request(http).get('/api/v1/changes?tables=a&status=zz.paid&wait=0');
    expect(badOp.status).toBe(400);
  });

  it('ends the stream of a subscriber that stops reading with event: overflow and where to resume', async () => {
    const { get } = await import('node:http');
    const text = await new Promise<string>((resolve, reject) => {
      const req = get(
        `${base}/api/v1/changes?tables=flood`,
        { headers: { Accept: 'text/event-stream' } },
        (res) => {
          // Stops reading: the server's unsent bytes grow past CHANGES_BUFFER_BYTES.
          res.pause();
          void (async () => {
            for (let i = 0; i < 20; i++) {
              const records = Array.from({ length: 500 }, (_, j) => ({
                id: `f${i}-${j}`,
                pad: 'x'.repeat(500),
              }));
              await request(http).post('/api/v1/data/flood').send(records).expect(201);
            }
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => (body += chunk));
            res.on('end', () => resolve(body));
            res.resume();
          })().catch(reject);
        },
      );
      req.on('error', reject);
    });
    const overflow = /event: overflow\ndata: (.*)\n\n$/.exec(text);
    expect(overflow).not.toBeNull();
    const { resume_from } = JSON.parse(overflow![1]) as { resume_from: string };
    const ids = [...text.matchAll(/^id: (.*)$/gm)].map((m) => m[1]);
    expect(resume_from).toBe(ids.at(-1));
    // Resuming from there goes on with the very next change: the next record of that bulk
    // write (500 changes each), or the first of the next write.
    const next = await request(http)
      .get('/api/v1/changes?tables=flood&limit=1&wait=0')
      .set('Last-Event-ID', resume_from)
      .expect(200);
    const [seq, i] = resume_from.split('.').map(Number);
    expect(next.body.reset).toBeNull();
    expect(next.body.changes.map((c: { pos: string }) => c.pos)).toEqual([
      i < 499 ? `${seq}.${i + 1}` : `${seq + 1}.0`,
    ]);
  });

  it('refuses feeds past CHANGES_MAX_SUBSCRIBERS with 503 and Retry-After', async () => {
    const feeds = [0, 1, 2].map(() => new Feed(base, '/api/v1/changes'));
    try {
      await Promise.all(feeds.map((feed) => feed.opened()));
      const res = await request(http).get('/api/v1/changes?wait=1');
      expect(res.status).toBe(503);
      expect(res.body.code).toBe('TOO_MANY_SUBSCRIBERS');
      expect(res.headers['retry-after']).toBeDefined();
    } finally {
      for (const feed of feeds) feed.close();
    }
    // Closed by their clients: their places are free again.
    const open = app.get<{ count: number }>(CHANGE_FEEDS);
    while (open.count > 0) await new Promise((resolve) => setTimeout(resolve, 10));
    await request(http).get('/api/v1/changes?wait=0').expect(200);
  });
});

describe('Change feed heartbeat', () => {
  it('sends a comment line every CHANGES_HEARTBEAT_MS, without an id', async () => {
    const app = await createTestApp({ env: { CHANGES_HEARTBEAT_MS: '200' } });
    try {
      const base = await listening(app);
      const { get } = await import('node:http');
      const text = await new Promise<string>((resolve, reject) => {
        get(`${base}/api/v1/changes`, { headers: { Accept: 'text/event-stream' } }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            body += chunk;
            // Two heartbeats seen: enough.
            if ((body.match(/^: heartbeat$/gm) ?? []).length >= 2) {
              res.destroy();
              resolve(body);
            }
          });
          res.on('error', reject);
        }).on('error', reject);
      });
      expect(text).not.toMatch(/^id:/m);
      expect(text).toMatch(/^: heartbeat\n\n/m);
    } finally {
      await app.close();
    }
  });
});

describe('Change feed at shutdown', () => {
  it('ends open feeds and long-polls at once when the app closes', async () => {
    const app = await createTestApp();
    const base = await listening(app);
    const { get } = await import('node:http');
    const ended = new Promise<string>((resolve, reject) => {
      get(`${base}/api/v1/changes`, { headers: { Accept: 'text/event-stream' } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve(body));
        res.on('error', reject);
      }).on('error', reject);
    });
    const poll = fetch(`${base}/api/v1/changes?wait=60`).then((res) => res.status);
    // Both are open once the server counts them.
    const feeds = app.get<{ count: number }>(CHANGE_FEEDS);
    while (feeds.count < 2) await new Promise((resolve) => setTimeout(resolve, 10));
    const started = Date.now();
    await app.close();
    expect(await ended).toContain(': memdb change feed');
    expect(await poll).toBe(200);
    // Not held until wait=60 or a heartbeat.
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});

describe('Change feed with API keys: tickets for EventSource', () => {
  const READ = 'feed-reader-0123456789abcdef';
  const WRITE = 'feed-writer-0123456789abcdef';
  let app: INestApplication;
  let http: Http;
  let base: string;

  beforeAll(async () => {
    app = await createTestApp({ env: { API_KEYS: `${READ}:read,${WRITE}:write` } });
    http = app.getHttpServer();
    base = await listening(app);
  });
  afterAll(() => app.close());

  it('issues a single-use ticket to a reader, good for one feed connection without headers', async () => {
    await request(http).post('/api/v1/changes/tickets').expect(401);
    const issued = await request(http)
      .post('/api/v1/changes/tickets')
      .set('X-API-Key', READ)
      .expect(201);
    expect(issued.body).toEqual({ ticket: expect.stringMatching(/^[\w-]{20,}$/), expires_in: 60 });
    expect(issued.headers['cache-control']).toBe('no-store');

    const refused = await fetch(`${base}/api/v1/changes`, {
      headers: { Accept: 'text/event-stream' },
    });
    expect(refused.status).toBe(401);
    await refused.body?.cancel();

    const feed = new Feed(base, `/api/v1/changes?tables=secret&ticket=${issued.body.ticket}`);
    try {
      await feed.opened();
      await request(http)
        .post('/api/v1/data/secret')
        .set('X-API-Key', WRITE)
        .send({ id: 's' })
        .expect(201);
      const [event] = await feed.received(1);
      expect(event.data).toMatchObject({ table: 'secret', id: 's' });
    } finally {
      feed.close();
    }
    // Used once: a second connection with it is refused.
    const again = await request(http).get(`/api/v1/changes?ticket=${issued.body.ticket}&wait=0`);
    expect(again.status).toBe(401);
    const forged = await request(http).get('/api/v1/changes?ticket=made-up&wait=0');
    expect(forged.status).toBe(401);
    // A ticket is for the feed only.
    const other = await request(http)
      .post('/api/v1/changes/tickets')
      .set('X-API-Key', READ)
      .expect(201);
    await request(http).get(`/api/v1/tables?ticket=${other.body.ticket}`).expect(401);
  });
});

/** An app listening on a free loopback port, and its base URL. */
async function listening(app: INestApplication): Promise<string> {
  await app.listen(0, '127.0.0.1');
  return `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
}

describe('Change feed with DATA_DIR, across a restart', () => {
  const dirs = tempDirs('memdb-changes-');

  it('resumes exactly after a restart: the journal replayed at start fills the feed again', async () => {
    const dir = dirs();
    const first = await createTestApp({ env: { DATA_DIR: dir } });
    const bulk = await request(first.getHttpServer())
      .post('/api/v1/data/kept')
      .send([{ id: 'k1' }, { id: 'k2' }])
      .expect(201);
    const one = await request(first.getHttpServer())
      .post('/api/v1/data/kept')
      .send({ id: 'k3' })
      .expect(201);
    await first.close();

    const second = await createTestApp({ env: { DATA_DIR: dir } });
    try {
      const base = await listening(second);
      const feed = new Feed(base, '/api/v1/changes?tables=kept', {
        'Last-Event-ID': `${bulk.headers['x-memdb-seq']}.0`,
      });
      try {
        await feed.opened();
        await request(second.getHttpServer())
          .post('/api/v1/data/kept')
          .send({ id: 'k4' })
          .expect(201);
        const events = await feed.received(3);
        expect(events.map((e) => [e.type, e.data.id])).toEqual([
          ['change', 'k2'],
          ['change', 'k3'],
          ['change', 'k4'],
        ]);
        expect(events[1].id).toBe(`${one.headers['x-memdb-seq']}.0`);
      } finally {
        feed.close();
      }
    } finally {
      await second.close();
    }
  });
});

describe('Change feed in cluster mode', () => {
  const startNats = natsClusters();
  const streamName = streamNames('changes');

  it('gives the same positions on every replica: a client reconnects to another with Last-Event-ID', async () => {
    const natsUrl = (await startNats({ servers: 1 })).urls[0];
    const stream = streamName();
    const a = await startReplica({ natsUrl, stream, name: 'feed-a' });
    const b = await startReplica({ natsUrl, stream, name: 'feed-b' });
    try {
      const [baseA, baseB] = [await listening(a), await listening(b)];
      const onA = new Feed(baseA, '/api/v1/changes?tables=cf');
      await onA.opened();
      for (const id of ['c1', 'c2', 'c3'])
        await request(b.getHttpServer()).post('/api/v1/data/cf').send({ id }).expect(201);
      const seen = (await onA.received(3)).slice(0, 2);
      onA.close();
      for (const id of ['c4', 'c5'])
        await request(a.getHttpServer()).post('/api/v1/data/cf').send({ id }).expect(201);

      const onB = new Feed(baseB, '/api/v1/changes?tables=cf', { 'Last-Event-ID': seen[1].id });
      try {
        await onB.opened();
        const rest = await onB.received(3);
        expect([...seen, ...rest].map((e) => e.data.id)).toEqual(['c1', 'c2', 'c3', 'c4', 'c5']);
        const positions = [...seen, ...rest].map((e) => e.id);
        expect(new Set(positions).size).toBe(5);
        // The long-poll on A names the same positions.
        const poll = await request(a.getHttpServer())
          .get(`/api/v1/changes?tables=cf&since=${Number(positions[0].split('.')[0]) - 1}&wait=0`)
          .set('X-Memdb-Min-Seq', positions[4].split('.')[0])
          .expect(200);
        expect(poll.body.changes.map((c: { pos: string }) => c.pos)).toEqual(positions);
      } finally {
        onB.close();
      }
    } finally {
      await Promise.all([a.close(), b.close()]);
      await deleteStream(natsUrl, stream);
    }
  });
});
