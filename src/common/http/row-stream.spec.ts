import { Writable, type Readable } from 'node:stream';
import { SnapshotTooOldError } from '../../database/database.errors';
import { PAUSE, type LazyRows } from '../../database/query/yielder';
import {
  JSON_TYPE,
  joinRowSerializer,
  NDJSON_TYPE,
  negotiateRowType,
  rowStream,
} from './row-stream';

async function text(stream: Readable): Promise<string> {
  let out = '';
  for await (const chunk of stream) out += String(chunk);
  return out;
}

describe('rowStream', () => {
  it.each([
    [[], JSON_TYPE, '[]'],
    [[], NDJSON_TYPE, ''],
    [[{ a: 1 }], JSON_TYPE, '[{"a":1}]'],
    [[{ a: 1 }, { b: null }], JSON_TYPE, '[{"a":1},{"b":null}]'],
    [[{ a: 1 }, { b: null }], NDJSON_TYPE, '{"a":1}\n{"b":null}\n'],
  ] as const)('writes %j as %s: %j', async (rows, type, expected) => {
    expect(await text(rowStream(rows, type).getStream())).toBe(expected);
  });

  it('sets the content type of each format', () => {
    expect(rowStream([], JSON_TYPE).getHeaders().type).toBe('application/json; charset=utf-8');
    expect(rowStream([], NDJSON_TYPE).getHeaders().type).toBe('application/x-ndjson');
  });

  it('writes a result larger than one chunk whole and in order', async () => {
    const rows = Array.from({ length: 50_000 }, (_, i) => ({ i, pad: 'x'.repeat(20) }));
    expect(JSON.parse(await text(rowStream(rows, JSON_TYPE).getStream()))).toEqual(rows);
  });

  it('reads rows only as fast as the consumer takes them (back-pressure)', async () => {
    let produced = 0;
    function* many(): LazyRows<unknown> {
      for (let i = 0; i < 1_000_000; i++) {
        produced++;
        yield { i };
      }
    }
    // A consumer that takes one chunk and never finishes writing it.
    const stalled = new Writable({ highWaterMark: 1, write: () => undefined });
    rowStream(many(), NDJSON_TYPE).getStream().pipe(stalled);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(produced).toBeGreaterThan(0);
    expect(produced).toBeLessThan(50_000);
  });

  it('gives the event loop back at PAUSE markers, even before any row', async () => {
    const order: string[] = [];
    function* slow(): LazyRows<unknown> {
      yield PAUSE;
      order.push('after first pause');
      yield { a: 1 };
      yield PAUSE;
      yield { a: 2 };
    }
    setImmediate(() => order.push('other work'));
    const out = await text(rowStream(slow(), NDJSON_TYPE).getStream());
    expect(out).toBe('{"a":1}\n{"a":2}\n');
    expect(order).toEqual(['other work', 'after first pause']);
  });

  it('fails the stream when reading a row throws', async () => {
    function* broken(): LazyRows<unknown> {
      yield { a: 1 };
      throw new Error('boom');
    }
    await expect(text(rowStream(broken(), JSON_TYPE).getStream())).rejects.toThrow('boom');
  });

  it('ends NDJSON with a last line holding the problem when reading a row throws', async () => {
    function* ended(): LazyRows<unknown> {
      yield { a: 1 };
      throw new SnapshotTooOldError(1048576);
    }
    const lines = (await text(rowStream(ended(), NDJSON_TYPE).getStream())).split('\n');

    expect(lines).toHaveLength(3);
    expect(lines[2]).toBe('');
    expect(JSON.parse(lines[0])).toEqual({ a: 1 });
    expect(JSON.parse(lines[1])).toEqual({
      error: expect.objectContaining({ status: 503, code: 'SNAPSHOT_TOO_OLD' }),
    });
  });

  it('closes its read once, when it ends, fails or is abandoned', async () => {
    const close = jest.fn();
    await text(rowStream([{ a: 1 }], NDJSON_TYPE, { close }).getStream());
    const abandoned = rowStream([{ a: 1 }], JSON_TYPE, { close }).getStream();
    abandoned.destroy();
    await new Promise((resolve) => abandoned.once('close', resolve));

    expect(close).toHaveBeenCalledTimes(2);
  });
});

describe('negotiateRowType', () => {
  it.each([
    [undefined, JSON_TYPE],
    ['*/*', JSON_TYPE],
    ['application/json', JSON_TYPE],
    ['text/csv', JSON_TYPE],
    ['application/x-ndjson', NDJSON_TYPE],
    ['application/ndjson', 'application/ndjson'],
    ['application/json;q=0.9, application/x-ndjson', NDJSON_TYPE],
    ['application/x-ndjson;q=0.1, */*', JSON_TYPE],
    ['application/x-ndjson;q=0', JSON_TYPE],
  ])('%p → %s', (accept, type) => {
    expect(negotiateRowType(accept)).toBe(type);
  });
});

describe('joinRowSerializer', () => {
  it('writes exactly what JSON.stringify writes, reusing repeated records', () => {
    const ada = { id: 'u1', name: 'Ada "the first"', tags: ['a'] };
    const bob = { id: 'u2', nested: { deep: [1, { x: null }] } };
    const o1 = { id: 'o1', user_id: 'u1', total: 1.5 };
    const o2 = { id: 'o2', user_id: 'u1', note: '\u2028 line' };
    const rows = [
      { left: ada, right: o1 },
      { left: ada, right: o2 },
      { left: ada, right: o2 },
      { left: bob, right: null },
      { left: null, right: o1 },
      { left: bob },
      { left: ada },
      { left: { id: 'u1' }, right: { total: 1.5 } },
      { left: o1, right: ada },
    ];
    const serialize = joinRowSerializer();
    expect(rows.map(serialize)).toEqual(rows.map((row) => JSON.stringify(row)));
  });
});
