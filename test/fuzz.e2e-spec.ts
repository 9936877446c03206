import fc from 'fast-check';
import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { createTestApp } from './helpers/test-app';

/** Property-based fuzzing through HTTP: whatever a client sends, the answer is never a 5xx. */
describe('Fuzzing', () => {
  let app: INestApplication;
  let http: ReturnType<INestApplication['getHttpServer']>;

  beforeAll(async () => {
    app = await createTestApp({ env: { BODY_LIMIT: '256kb' } });
    http = app.getHttpServer();
    await request(http)
      .post('/api/v1/data/fz')
      .send([
        { id: 'a', n: 1 },
        { id: 'b', n: 'x' },
      ])
      .expect(201);
  });

  afterAll(() => app.close());

  afterEach(() => expect(Object.keys(Object.prototype)).toEqual([]));

  const nastyKey = fc.oneof(
    fc.constantFrom(
      '__proto__',
      'constructor',
      'prototype',
      'toString',
      'id',
      'created_at',
      '',
      '\u0000',
      '\ud800',
    ),
    fc.string({ maxLength: 8 }),
    fc.string({ unit: 'binary', maxLength: 6 }),
  );
  const json = fc.letrec<{ value: unknown }>((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.constant(null),
      fc.boolean(),
      fc.double(),
      fc.integer(),
      fc.string({ unit: 'binary', maxLength: 12 }),
      fc.array(tie('value'), { maxLength: 4 }),
      fc.dictionary(nastyKey, tie('value'), { maxKeys: 5 }),
    ),
  })).value;
  const rawBody = fc.oneof(
    json.map((value) => JSON.stringify(value) ?? 'null'),
    fc.string({ unit: 'binary', maxLength: 40 }),
  );
  const name = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 12 }),
    fc.constantFrom('fz', 'constructor', 'a', '..'),
  );

  it('answers arbitrary JSON bodies on every write route without a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('post', 'put', 'patch'),
        fc.constantFrom('fz', 'users', 'orders'),
        rawBody,
        async (method, table, body) => {
          const url = method === 'post' ? `/api/v1/data/${table}` : `/api/v1/data/${table}/a`;
          const res = await request(http)
            [method](url)
            .set('Content-Type', 'application/json')
            .send(body);

          expect(res.status).toBeLessThan(500);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('answers arbitrary table names and ids without a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        name,
        name,
        fc.constantFrom('get', 'put', 'delete'),
        async (table, id, method) => {
          const res = await request(http)
            [method](`/api/v1/data/${encodeURIComponent(table)}/${encodeURIComponent(id)}`)
            .send(method === 'put' ? { a: 1 } : undefined);

          expect(res.status).toBeLessThan(500);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('answers arbitrary query strings on lists and joins without a 5xx', async () => {
    const word = fc.oneof(
      fc.string({ maxLength: 10 }),
      fc.constantFrom(
        'n',
        'id',
        'sort',
        'fields',
        'limit',
        'offset',
        'cursor',
        'count',
        'or',
        'and',
        'left.n',
        'right.id',
        'type',
      ),
    );
    const value = fc.oneof(
      fc.string({ maxLength: 16 }),
      fc.constantFrom(
        'eq.1',
        'in.(1,"a")',
        'not.is.null',
        '(n.eq.1,id.like.*)',
        '-n,id',
        'n,left.n',
        'inner',
        'full',
        'none',
        '5',
      ),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(word, value), { maxLength: 5 }),
        fc.boolean(),
        async (pairs, join) => {
          const query = new URLSearchParams(pairs).toString();
          const url = join ? `/api/v1/join/fz/fz/id?${query}` : `/api/v1/data/fz?${query}`;
          const res = await request(http).get(url);

          expect(res.status).toBeLessThan(500);
        },
      ),
      { numRuns: 400 },
    );
  });
});

/**
 * Model-based: random sequences of create, put, patch, delete and bulk writes run against the
 * service and against a plain Map; both end in the same state, and every answer is the one the
 * model predicts.
 */
describe('Model-based: the service behaves like a Map', () => {
  type Model = Map<string, Record<string, unknown>>;
  interface Real {
    http: ReturnType<INestApplication['getHttpServer']>;
    table: string;
  }
  const ids = fc.constantFrom('a', 'b', 'c', 'd');
  const fields = fc.dictionary(
    fc.constantFrom('x', 'y', 'z'),
    fc.oneof(fc.integer({ min: 0, max: 3 }), fc.constant('s'), fc.constant(null)),
    {
      maxKeys: 3,
    },
  );
  const strip = (record: Record<string, unknown>) => {
    const { created_at: _c, updated_at: _u, ...rest } = record;
    return rest;
  };
  const withoutNulls = (fields: Record<string, unknown>) =>
    Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== null));

  class Create implements fc.AsyncCommand<Model, Real> {
    constructor(
      readonly id: string,
      readonly fields: Record<string, unknown>,
    ) {}
    check = () => true;
    async run(model: Model, real: Real) {
      const res = await request(real.http)
        .post(`/api/v1/data/${real.table}`)
        .send({ ...this.fields, id: this.id });
      if (model.has(this.id)) return expect(res.status).toBe(409);
      expect(res.status).toBe(201);
      model.set(this.id, { id: this.id, ...this.fields });
    }
    toString = () => `create(${this.id}, ${JSON.stringify(this.fields)})`;
  }
  class Put implements fc.AsyncCommand<Model, Real> {
    constructor(
      readonly id: string,
      readonly fields: Record<string, unknown>,
    ) {}
    check = () => true;
    async run(model: Model, real: Real) {
      const res = await request(real.http)
        .put(`/api/v1/data/${real.table}/${this.id}`)
        .send(this.fields);
      if (!model.has(this.id)) return expect(res.status).toBe(404);
      expect(res.status).toBe(200);
      model.set(this.id, { id: this.id, ...this.fields });
    }
    toString = () => `put(${this.id}, ${JSON.stringify(this.fields)})`;
  }
  class Patch implements fc.AsyncCommand<Model, Real> {
    constructor(
      readonly id: string,
      readonly fields: Record<string, unknown>,
    ) {}
    check = () => true;
    async run(model: Model, real: Real) {
      const res = await request(real.http)
        .patch(`/api/v1/data/${real.table}/${this.id}`)
        .send(this.fields);
      const current = model.get(this.id);
      if (current === undefined) return expect(res.status).toBe(404);
      expect(res.status).toBe(200);
      const next = { ...current, ...this.fields };
      for (const [key, value] of Object.entries(this.fields)) if (value === null) delete next[key];
      model.set(this.id, next);
    }
    toString = () => `patch(${this.id}, ${JSON.stringify(this.fields)})`;
  }
  class Delete implements fc.AsyncCommand<Model, Real> {
    constructor(readonly id: string) {}
    check = () => true;
    async run(model: Model, real: Real) {
      const res = await request(real.http).delete(`/api/v1/data/${real.table}/${this.id}`);
      expect(res.status).toBe(model.delete(this.id) ? 204 : 404);
    }
    toString = () => `delete(${this.id})`;
  }
  class Bulk implements fc.AsyncCommand<Model, Real> {
    constructor(readonly records: { id: string; fields: Record<string, unknown> }[]) {}
    check = () => true;
    async run(model: Model, real: Real) {
      const res = await request(real.http)
        .post(`/api/v1/data/${real.table}`)
        .send(this.records.map(({ id, fields }) => ({ ...fields, id })));
      const batchIds = this.records.map((r) => r.id);
      const clash = batchIds.some((id, i) => model.has(id) || batchIds.indexOf(id) !== i);
      if (clash) return expect(res.status).toBe(409);
      expect(res.status).toBe(201);
      for (const { id, fields } of this.records) model.set(id, { id, ...fields });
    }
    toString = () => `bulk(${JSON.stringify(this.records)})`;
  }

  let app: INestApplication;
  let run = 0;

  beforeAll(async () => {
    app = await createTestApp();
  });

  afterAll(() => app.close());

  it('ends every random command sequence in the model state', async () => {
    const commands = [
      fc.tuple(ids, fields).map(([id, f]) => new Create(id, withoutNulls(f))),
      fc.tuple(ids, fields).map(([id, f]) => new Put(id, withoutNulls(f))),
      fc.tuple(ids, fields).map(([id, f]) => new Patch(id, f)),
      ids.map((id) => new Delete(id)),
      fc
        .array(fc.record({ id: ids, fields: fields.map(withoutNulls) }), {
          minLength: 1,
          maxLength: 3,
        })
        .map((records) => new Bulk(records)),
    ];
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 25 }), async (sequence) => {
        const table = `model${run++}`;
        const http = app.getHttpServer();
        await request(http).post('/api/v1/tables').send({ name: table }).expect(201);
        const model: Model = new Map();
        await fc.asyncModelRun(() => ({ model, real: { http, table } }), sequence);

        const res = await request(http).get(`/api/v1/data/${table}?limit=1000`).expect(200);
        const actual = (res.body as Record<string, unknown>[])
          .map(strip)
          .sort((a, b) => String(a.id).localeCompare(String(b.id)));
        const expected = [...model.values()].sort((a, b) =>
          String(a.id).localeCompare(String(b.id)),
        );
        expect(actual).toEqual(expected);
      }),
      { numRuns: 60 },
    );
  });
});
