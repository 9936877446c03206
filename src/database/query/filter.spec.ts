import fc from 'fast-check';
import {
  compilePredicate,
  IN_LIST_MAX,
  parseCondition,
  parseGroup,
  type Predicate,
} from './filter';
import { QueryError } from './query.errors';

const parse = (field: string, raw: string): Predicate =>
  parseCondition(field.split('.'), raw, field);
const test = (field: string, raw: string) => compilePredicate(parse(field, raw));

describe('parseCondition', () => {
  it.each([
    ['Paris', { kind: 'cmp', path: ['f'], op: 'eq', value: 'Paris' }],
    ['30', { kind: 'cmp', path: ['f'], op: 'eq', value: 30 }],
    ['-1.5e3', { kind: 'cmp', path: ['f'], op: 'eq', value: -1500 }],
    ['007', { kind: 'cmp', path: ['f'], op: 'eq', value: '007' }],
    ['eq."007"', { kind: 'cmp', path: ['f'], op: 'eq', value: '007' }],
    ['eq."a\\"b"', { kind: 'cmp', path: ['f'], op: 'eq', value: 'a"b' }],
    ['eq.true', { kind: 'cmp', path: ['f'], op: 'eq', value: true }],
    ['eq.null', { kind: 'cmp', path: ['f'], op: 'eq', value: null }],
    ['eq.a.b.c', { kind: 'cmp', path: ['f'], op: 'eq', value: 'a.b.c' }],
    ['St.Louis', { kind: 'cmp', path: ['f'], op: 'eq', value: 'St.Louis' }],
    ['gte.18', { kind: 'cmp', path: ['f'], op: 'gte', value: 18 }],
    ['lt.m', { kind: 'cmp', path: ['f'], op: 'lt', value: 'm' }],
    ['in.(new,paid,"a,b",3)', { kind: 'in', path: ['f'], values: ['new', 'paid', 'a,b', 3] }],
    ['in.()', { kind: 'in', path: ['f'], values: [] }],
    ['like.A*', { kind: 'like', path: ['f'], pattern: 'A*', ignoreCase: false }],
    ['ilike.*Ex*', { kind: 'like', path: ['f'], pattern: '*ex*', ignoreCase: true }],
    ['is.null', { kind: 'is', path: ['f'], value: null }],
    ['is.false', { kind: 'is', path: ['f'], value: false }],
    ['not.gte.18', { kind: 'not', operand: { kind: 'cmp', path: ['f'], op: 'gte', value: 18 } }],
  ])('parses %s', (raw, expected) => {
    expect(parse('f', raw)).toEqual(expected);
  });

  it.each([
    ['gtt.5', /unknown operator 'gtt'/],
    ['not.5', /unknown operator 'not'/],
    ['in.(1,2', /parenthesised list/],
    ['in.1,2', /parenthesised list/],
    ['is.maybe', /is takes null, true or false/],
    ['gt.true', /gt compares numbers or strings/],
    ['lte.null', /lte compares numbers or strings/],
    ['eq."unterminated', /malformed quoted value/],
    ['eq.1e999', /out of range/],
    [
      `in.(${Array.from({ length: IN_LIST_MAX + 1 }, (_, i) => i).join(',')})`,
      /in lists are limited/,
    ],
  ])('refuses %s, naming the parameter', (raw, message) => {
    const attempt = () => parse('age', raw);

    expect(attempt).toThrow(QueryError);
    expect(attempt).toThrow(message);
    expect(attempt).toThrow(/parameter 'age'/);
  });
});

describe('parseGroup', () => {
  it('parses terms whose paths and values contain dots, and nested groups', () => {
    expect(
      parseGroup('or', '(address.city.eq.St.Louis,and(age.gte.18,not.or(a.is.null,b.eq.1)))', 'or'),
    ).toEqual({
      kind: 'or',
      operands: [
        { kind: 'cmp', path: ['address', 'city'], op: 'eq', value: 'St.Louis' },
        {
          kind: 'and',
          operands: [
            { kind: 'cmp', path: ['age'], op: 'gte', value: 18 },
            {
              kind: 'not',
              operand: {
                kind: 'or',
                operands: [
                  { kind: 'is', path: ['a'], value: null },
                  { kind: 'cmp', path: ['b'], op: 'eq', value: 1 },
                ],
              },
            },
          ],
        },
      ],
    });
  });

  it.each([
    'age.lt.18',
    '()',
    '(age)',
    '(age.lt.18',
    `(${'and('.repeat(9)}a.eq.1${')'.repeat(9)})`,
  ])('refuses %s', (text) => {
    expect(() => parseGroup('or', text, 'or')).toThrow(QueryError);
  });
});

describe('compilePredicate', () => {
  it('never coerces across types', () => {
    expect(test('a', '3')({ a: '3' })).toBe(false);
    expect(test('a', 'eq."3"')({ a: 3 })).toBe(false);
    expect(test('a', 'gt.2')({ a: '3' })).toBe(false);
    expect(test('a', 'in.(1,true)')({ a: 'true' })).toBe(false);
    expect(test('a', 'eq.true')({ a: 'true' })).toBe(false);
  });

  it('reads own members only: constructor and toString are missing unless stored', () => {
    expect(test('constructor', 'is.null')({})).toBe(true);
    expect(test('toString', 'like.*')({})).toBe(false);
    expect(test('constructor', 'eq.x')({ constructor: 'x' })).toBe(true);
  });

  it('treats a missing field as null for is.null and as different for ne and not', () => {
    expect(test('a', 'is.null')({})).toBe(true);
    expect(test('a', 'eq.null')({})).toBe(false);
    expect(test('a', 'ne.1')({})).toBe(true);
    expect(test('a', 'not.eq.1')({})).toBe(true);
  });

  it('matches nested paths', () => {
    expect(test('address.city', 'Paris')({ address: { city: 'Paris' } })).toBe(true);
    expect(test('address.city', 'Paris')({ address: 'Paris' })).toBe(false);
  });
});

// --- property: every operator against a plain reference implementation ---

type Scalar = string | number | boolean | null;
type Op = 'eq' | 'ne' | 'gt' | 'gte' | 'lt' | 'lte' | 'in' | 'like' | 'ilike' | 'is';

const scalar = fc.oneof(
  fc.integer({ min: -5, max: 5 }),
  fc.constantFrom('a', 'b', 'ab', 'B', 'ba', '3', 'true', ''),
  fc.boolean(),
  fc.constant(null),
);
const record = fc.record(
  { a: scalar, b: scalar, n: fc.record({ c: scalar }, { requiredKeys: [] }) },
  { requiredKeys: [] },
);

function render(value: Scalar): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

const condition = fc.oneof(
  fc.record({ op: fc.constantFrom<Op>('eq', 'ne'), value: scalar }),
  fc.record({
    op: fc.constantFrom<Op>('gt', 'gte', 'lt', 'lte'),
    value: fc.oneof(fc.integer({ min: -5, max: 5 }), fc.constantFrom('a', 'b', 'B', '')),
  }),
  fc.record({ op: fc.constant<Op>('in'), value: fc.array(scalar, { maxLength: 4 }) }),
  fc.record({
    op: fc.constantFrom<Op>('like', 'ilike'),
    value: fc.constantFrom('*', 'a*', '*b', '*A*', 'b', 'a*b', ''),
  }),
  fc.record({ op: fc.constant<Op>('is'), value: fc.constantFrom(null, true, false) }),
);

function reference(op: Op, expected: unknown, actual: unknown): boolean {
  switch (op) {
    case 'eq':
      return actual === expected;
    case 'ne':
      return actual !== expected;
    case 'gt':
      return typeof actual === typeof expected && (actual as number) > (expected as number);
    case 'gte':
      return typeof actual === typeof expected && (actual as number) >= (expected as number);
    case 'lt':
      return typeof actual === typeof expected && (actual as number) < (expected as number);
    case 'lte':
      return typeof actual === typeof expected && (actual as number) <= (expected as number);
    case 'in':
      return (expected as unknown[]).some((value) => value === actual);
    case 'like':
    case 'ilike': {
      if (typeof actual !== 'string') return false;
      const flags = op === 'ilike' ? 'i' : '';
      const source = (expected as string)
        .replace(/[.+?^${}()|[\]\\]/g, '\\$&')
        .replaceAll('*', '.*');
      return new RegExp(`^${source}$`, `s${flags}`).test(actual);
    }
    case 'is':
      return expected === null ? actual === null || actual === undefined : actual === expected;
  }
}

describe('compilePredicate (property)', () => {
  it('agrees with a plain reference for every operator, path and negation', () => {
    fc.assert(
      fc.property(
        record,
        fc.constantFrom('a', 'b', 'n.c'),
        condition,
        fc.boolean(),
        (rec, field, cond, negate) => {
          const text =
            cond.op === 'in'
              ? `in.(${(cond.value as Scalar[]).map(render).join(',')})`
              : cond.op === 'like' || cond.op === 'ilike'
                ? `${cond.op}.${JSON.stringify(cond.value)}`
                : cond.op === 'is'
                  ? `is.${String(cond.value)}`
                  : `${cond.op}.${render(cond.value as Scalar)}`;
          const predicate = parse(field, (negate ? 'not.' : '') + text);
          const actual =
            field === 'n.c'
              ? (rec.n as Record<string, unknown> | undefined)?.c
              : (rec as Record<string, unknown>)[field];
          const expected = reference(
            cond.op,
            cond.value,
            field === 'n.c' && !rec.n ? undefined : actual,
          );

          expect(compilePredicate(predicate)(rec)).toBe(negate ? !expected : expected);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
