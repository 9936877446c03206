import type { ConfigService } from '@nestjs/config';
import type { Env } from '../../config/env.validation';
import { ApiProblemException } from '../problems/api-problem.exception';
import { JSON_LIMITS, JsonObjectPipe } from './json-object.pipe';

function nested(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = { d: value };
  return value;
}

const config = (maxDepth: number) =>
  ({
    get: (key: string) => (key === 'MAX_DEPTH' ? maxDepth : undefined),
  }) as unknown as ConfigService<Env, true>;

describe('JsonObjectPipe', () => {
  const pipe = new JsonObjectPipe(config(32));

  it('passes plain objects through unchanged, constructor and prototype members included', () => {
    const body = JSON.parse(
      '{"a":[1,{"b":null}],"constructor":{"prototype":{"x":1}},"s":"\\ud800"}',
    );

    expect(pipe.transform(body)).toBe(body);
  });

  it.each([[undefined], [null], ['text'], [42], [[{ a: 1 }]]])(
    'rejects %j with INVALID_BODY',
    (value) => {
      expect(() => pipe.transform(value)).toThrow(ApiProblemException);
    },
  );

  it('accepts nesting up to MAX_DEPTH and rejects one level more', () => {
    expect(() => pipe.transform(nested(32))).not.toThrow();
    expect(() => pipe.transform(nested(33))).toThrow(/nested deeper than 32/);
    expect(() => new JsonObjectPipe(config(3)).transform(nested(4))).toThrow(/deeper than 3/);
  });

  it('rejects very deep bodies without overflowing the stack', () => {
    expect(() => pipe.transform(nested(100_000))).toThrow(ApiProblemException);
  });

  it('rejects __proto__ members at any depth, in arrays too', () => {
    expect(() => pipe.transform(JSON.parse('{"__proto__":{"x":1}}'))).toThrow(/__proto__/);
    expect(() => pipe.transform(JSON.parse('{"a":[{"__proto__":1}]}'))).toThrow(/a\[0\]/);
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
    expect(() => pipe.transform(JSON.parse(json))).toThrow(message);
  });
});
