import { ApiProblemException } from '../problems/api-problem.exception';
import { assertJsonWithinLimits, JSON_LIMITS, JsonObjectPipe } from './json-object.pipe';

function nested(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = { d: value };
  return value;
}

describe('JsonObjectPipe', () => {
  const pipe = new JsonObjectPipe();

  it('passes plain objects through unchanged', () => {
    const body = { a: [1, { b: null }] };

    expect(pipe.transform(body)).toBe(body);
  });

  it.each([[undefined], [null], ['text'], [42], [[{ a: 1 }]]])(
    'rejects %j with INVALID_BODY',
    (value) => {
      expect(() => pipe.transform(value)).toThrow(ApiProblemException);
    },
  );
});

describe('assertJsonWithinLimits', () => {
  const check =
    (value: unknown, maxDepth = 32) =>
    () =>
      assertJsonWithinLimits(value, maxDepth);

  it('accepts constructor and prototype members and lone surrogates in values', () => {
    expect(
      check(JSON.parse('{"a":[1,{"b":null}],"constructor":{"prototype":{"x":1}},"s":"\\ud800"}')),
    ).not.toThrow();
  });

  it('accepts nesting up to MAX_DEPTH and rejects one level more, in arrays too', () => {
    expect(check(nested(32))).not.toThrow();
    expect(check(nested(33))).toThrow(/nested deeper than 32/);
    expect(check(nested(4), 3)).toThrow(/deeper than 3/);
    expect(check(JSON.parse(`${'['.repeat(40)}${']'.repeat(40)}`))).toThrow(/deeper/);
  });

  it('rejects very deep bodies without overflowing the stack', () => {
    expect(check(nested(100_000))).toThrow(ApiProblemException);
  });

  it('rejects __proto__ members at any depth, in arrays too', () => {
    expect(check(JSON.parse('{"__proto__":{"x":1}}'))).toThrow(/__proto__/);
    expect(check(JSON.parse('{"a":[{"__proto__":1}]}'))).toThrow(/a\[0\]/);
  });

  it.each([
    ['a number beyond double range', '{"n":1e999}', /out of range/],
    ['a member name with a lone surrogate', '{"\\ud800":1}', /lone surrogate/],
    [
      'an over-long member name',
      `{"${'k'.repeat(JSON_LIMITS.keyLength + 1)}":1}`,
      /longer than 256/,
    ],
    [
      'an over-long string',
      `{"s":"${'x'.repeat(JSON_LIMITS.stringLength + 1)}"}`,
      /longer than 1048576/,
    ],
    [
      'too many members',
      JSON.stringify(Object.fromEntries(Array.from({ length: 10_001 }, (_, i) => [`k${i}`, i]))),
      /more than 10000/,
    ],
  ])('rejects %s', (_name, json, message) => {
    expect(check(JSON.parse(json))).toThrow(message);
  });
});
