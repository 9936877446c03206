import { ApiProblemException } from '../problems/api-problem.exception';
import { JsonObjectPipe, MAX_JSON_DEPTH } from './json-object.pipe';

function nested(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = { d: value };
  return value;
}

describe('JsonObjectPipe', () => {
  const pipe = new JsonObjectPipe();

  it('passes plain objects through unchanged', () => {
    const body = { a: [1, { b: null }], constructor: 'x' };

    expect(pipe.transform(body)).toBe(body);
  });

  it.each([[undefined], [null], ['text'], [42], [[{ a: 1 }]]])(
    'rejects %j with INVALID_BODY',
    (value) => {
      expect(() => pipe.transform(value)).toThrow(ApiProblemException);
    },
  );

  it('accepts nesting up to MAX_JSON_DEPTH and rejects one level more', () => {
    expect(() => pipe.transform(nested(MAX_JSON_DEPTH))).not.toThrow();
    expect(() => pipe.transform(nested(MAX_JSON_DEPTH + 1))).toThrow(/nested deeper than 32/);
  });

  it('rejects very deep bodies without overflowing the stack', () => {
    expect(() => pipe.transform(nested(100_000))).toThrow(ApiProblemException);
  });

  it('rejects __proto__ members at any depth, in arrays too', () => {
    expect(() => pipe.transform(JSON.parse('{"__proto__":{"x":1}}'))).toThrow(/__proto__/);
    expect(() => pipe.transform(JSON.parse('{"a":[{"__proto__":1}]}'))).toThrow(/a\[0\]/);
  });
});
