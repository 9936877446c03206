import {
  type Attempt,
  type FinalAnswer,
  IdempotencyStore,
  type IdempotencyStoreOptions,
  isStorable,
  seqOf,
  type StoredAnswer,
} from './idempotency.store';

const MINUTE = 60_000;

function answer(status: number, seq?: number, body = '{"id":"a"}'): FinalAnswer {
  return {
    status,
    headers: {
      'content-type': 'application/json; charset=utf-8',
      ...(seq === undefined ? {} : { 'x-memdb-seq': String(seq) }),
    },
    body: Buffer.from(body),
  };
}

/** A store on a clock the test moves. */
function storeAt(options: Partial<IdempotencyStoreOptions> = {}) {
  let now = 1_000_000;
  const store = new IdempotencyStore({
    ttlMs: 10 * MINUTE,
    maxBytes: 1024 * 1024,
    now: () => now,
    ...options,
  });
  return { store, advance: (ms: number) => (now += ms), now: () => now };
}

function run(store: IdempotencyStore, key: string, request = 'r', scope = 's'): Attempt {
  const decision = store.begin(scope, key, request);
  if (decision.outcome !== 'run') throw new Error(`expected run, got ${decision.outcome}`);
  return decision.attempt;
}

describe('IdempotencyStore', () => {
  describe('begin', () => {
    it('runs a new key, then replays its stored answer for the same request', () => {
      const { store } = storeAt();
      const stored = answer(201, 7);

      store.complete(run(store, 'k'), stored);

      expect(store.begin('s', 'k', 'r')).toEqual({ outcome: 'replay', answer: stored });
    });

    it('says in-progress for the same request while the first runs', () => {
      const { store } = storeAt();
      run(store, 'k');

      expect(store.begin('s', 'k', 'r')).toEqual({ outcome: 'in-progress' });
    });

    it('says reused for another request with the key, running or answered', () => {
      const { store } = storeAt();
      const attempt = run(store, 'k', 'first');
      expect(store.begin('s', 'k', 'second')).toEqual({ outcome: 'reused' });

      store.complete(attempt, answer(201));

      expect(store.begin('s', 'k', 'second')).toEqual({ outcome: 'reused' });
    });

    it('keeps scopes apart: the same key in another scope runs', () => {
      const { store } = storeAt();
      store.complete(run(store, 'k', 'r', 'alice'), answer(201));

      expect(store.begin('bob', 'k', 'r').outcome).toBe('run');
      expect(store.begin('alice', 'k', 'r').outcome).toBe('replay');
    });

    it('runs the key again once its attempt is released', () => {
      const { store } = storeAt();
      store.release(run(store, 'k'));

      expect(store.begin('s', 'k', 'r').outcome).toBe('run');
    });
  });

  describe('complete', () => {
    it.each([400, 404, 409, 412, 422, 201, 204])('keeps a %i answer', (status) => {
      const { store } = storeAt();

      expect(store.complete(run(store, 'k'), answer(status))).toBe(true);
      expect(store.begin('s', 'k', 'r').outcome).toBe('replay');
    });

    it.each([429, 500, 503, 507])('keeps no %i answer and releases the key', (status) => {
      const { store } = storeAt();

      expect(store.complete(run(store, 'k'), answer(status))).toBe(false);
      expect(store.begin('s', 'k', 'r').outcome).toBe('run');
    });

    it('ignores an attempt that was released meanwhile and begun again', () => {
      const { store } = storeAt();
      const first = run(store, 'k');
      store.release(first);
      const second = run(store, 'k');

      expect(store.complete(first, answer(201))).toBe(false);
      expect(store.begin('s', 'k', 'r')).toEqual({ outcome: 'in-progress' });
      expect(store.complete(second, answer(201))).toBe(true);
    });

    it('tells onStored what it stored, JSON-serialisable, body in base64', () => {
      const { store, now } = storeAt();
      const heard: StoredAnswer[] = [];
      store.onStored = (stored) => heard.push(stored);

      store.complete(run(store, 'k', 'r', 's'), answer(201, 42, 'hello'));
      store.complete(run(store, 'gone'), answer(503));

      expect(heard).toEqual([
        {
          scope: 's',
          key: 'k',
          request: 'r',
          seq: 42,
          storedAt: now(),
          status: 201,
          headers: { 'content-type': 'application/json; charset=utf-8', 'x-memdb-seq': '42' },
          body: Buffer.from('hello').toString('base64'),
        },
      ]);
      expect(JSON.parse(JSON.stringify(heard))).toEqual(heard);
    });
  });

  describe('time to live', () => {
    it('replays until ttlMs after the answer was stored, then runs the key again', () => {
      const { store, advance } = storeAt({ ttlMs: 1000 });
      const attempt = run(store, 'k');
      advance(500);
      store.complete(attempt, answer(201));

      advance(999);
      expect(store.begin('s', 'k', 'r').outcome).toBe('replay');
      advance(1);
      expect(store.begin('s', 'k', 'r').outcome).toBe('run');
    });

    it('frees the key of a request that ran longer than ttlMs without an answer', () => {
      const { store, advance } = storeAt({ ttlMs: 1000 });
      const stale = run(store, 'k');
      advance(1000);

      const again = store.begin('s', 'k', 'r');

      expect(again.outcome).toBe('run');
      expect(store.complete(stale, answer(201))).toBe(false);
    });

    it('forgets expired answers and counts only live ones', () => {
      const { store, advance } = storeAt({ ttlMs: 1000 });
      store.complete(run(store, 'a'), answer(201));
      advance(600);
      store.complete(run(store, 'b'), answer(201));
      advance(600);

      expect(store.stats.answers).toBe(1);
      expect(store.export().map((stored) => stored.key)).toEqual(['b']);
    });
  });

  describe('size bound', () => {
    /** Bytes one answer(201, seq, body of `size`) is counted for. */
    function bytesOf(size: number): number {
      const { store } = storeAt();
      store.complete(run(store, 'probe'), answer(201, 1, 'x'.repeat(size)));
      return store.stats.bytes;
    }

    it('forgets the oldest answers by sequence, not by arrival, past maxBytes', () => {
      const { store } = storeAt({ maxBytes: 3 * bytesOf(1000) });
      for (const [key, seq] of [
        ['k5', 5],
        ['k2', 2],
        ['k9', 9],
      ] as const) {
        store.complete(run(store, key), answer(201, seq, 'x'.repeat(1000)));
      }

      store.complete(run(store, 'k7'), answer(201, 7, 'x'.repeat(1000)));

      expect(store.begin('s', 'k2', 'r').outcome).toBe('run');
      for (const key of ['k5', 'k9', 'k7'])
        expect(store.begin('s', key, 'r').outcome).toBe('replay');
    });

    it('forgets in the order stored among equal sequences (no X-Memdb-Seq: 0)', () => {
      const { store } = storeAt({ maxBytes: 2 * bytesOf(1000) + 10 });
      for (const key of ['a', 'b', 'c']) {
        store.complete(run(store, key), {
          status: 201,
          headers: { 'x-memdb-seq': '1' },
          body: Buffer.from('x'.repeat(1000)),
        });
      }

      expect(store.export().map((stored) => stored.key)).toEqual(['b', 'c']);
      expect(store.stats.bytes).toBeLessThanOrEqual(2 * bytesOf(1000) + 10);
    });

    it('does not keep an answer larger than maxBytes', () => {
      const { store } = storeAt({ maxBytes: 1000 });

      expect(store.complete(run(store, 'k'), answer(201, 1, 'x'.repeat(1000)))).toBe(false);
      expect(store.begin('s', 'k', 'r').outcome).toBe('run');
    });
  });

  describe('export and import', () => {
    it('loads what another store exported: replays, conflicts and ttl carry over', () => {
      const first = storeAt({ ttlMs: 1000 });
      first.store.complete(run(first.store, 'k', 'r'), answer(201, 3, 'body'));
      const second = storeAt({ ttlMs: 1000 });
      second.advance(500);

      second.store.import(JSON.parse(JSON.stringify(first.store.export())) as StoredAnswer[]);

      expect(second.store.begin('s', 'k', 'r')).toEqual({
        outcome: 'replay',
        answer: answer(201, 3, 'body'),
      });
      expect(second.store.begin('s', 'k', 'other')).toEqual({ outcome: 'reused' });
      second.advance(500);
      expect(second.store.begin('s', 'k', 'r').outcome).toBe('run');
    });

    it('skips expired answers, keeps the later of two for one key, and calls no onStored', () => {
      const { store, now } = storeAt({ ttlMs: 1000 });
      const heard: StoredAnswer[] = [];
      store.onStored = (stored) => heard.push(stored);
      const base = { scope: 's', seq: 0, status: 201, headers: {}, body: '' };

      store.import([
        { ...base, key: 'k', request: 'later', storedAt: now() - 10 },
        { ...base, key: 'k', request: 'earlier', storedAt: now() - 20 },
        { ...base, key: 'old', request: 'r', storedAt: now() - 1000 },
      ]);

      expect(store.export().map(({ key, request }) => ({ key, request }))).toEqual([
        { key: 'k', request: 'later' },
      ]);
      expect(heard).toEqual([]);
    });
  });
});

describe('isStorable', () => {
  it('keeps every answer but 5xx and 429', () => {
    expect([200, 201, 204, 400, 404, 409, 412, 413, 422].every(isStorable)).toBe(true);
    expect([429, 500, 503, 507].some(isStorable)).toBe(false);
  });
});

describe('seqOf', () => {
  it('reads X-Memdb-Seq, 0 without a plain integer', () => {
    expect(seqOf({ 'x-memdb-seq': '12' })).toBe(12);
    expect(seqOf({})).toBe(0);
    expect(seqOf({ 'x-memdb-seq': 'abc' })).toBe(0);
    expect(seqOf({ 'x-memdb-seq': '-1' })).toBe(0);
  });
});
