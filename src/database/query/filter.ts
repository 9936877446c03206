import type { JsonPrimitive } from '../record.types';
import { compileGetter, parseFieldPath, type FieldPath } from './field-path';
import { QueryError } from './query.errors';
import { parseQuoted, parseValue, splitTopLevel } from './values';
import { wildcardMatch } from './wildcard';

export const COMPARISON_OPERATORS = ['eq', 'ne', 'gt', 'gte', 'lt', 'lte'] as const;
export const OPERATORS = [...COMPARISON_OPERATORS, 'in', 'like', 'ilike', 'is'] as const;
export type ComparisonOperator = (typeof COMPARISON_OPERATORS)[number];
export type Operator = (typeof OPERATORS)[number];

/** Most values an `in.(…)` list may hold. */
export const IN_LIST_MAX = 500;
/** Most conditions in one `or=(…)`/`and=(…)` group tree, and its deepest nesting. */
export const GROUP_TERMS_MAX = 100;
export const GROUP_DEPTH_MAX = 8;
const PATTERN_MAX = 256;

/** A parsed filter. Plain data: it is compared, fingerprinted and planned. */
export type Predicate =
  | {
      readonly kind: 'cmp';
      readonly path: FieldPath;
      readonly op: ComparisonOperator;
      readonly value: JsonPrimitive;
    }
  | { readonly kind: 'in'; readonly path: FieldPath; readonly values: readonly JsonPrimitive[] }
  | {
      readonly kind: 'like';
      readonly path: FieldPath;
      readonly pattern: string;
      readonly ignoreCase: boolean;
    }
  | { readonly kind: 'is'; readonly path: FieldPath; readonly value: null | boolean }
  | { readonly kind: 'not'; readonly operand: Predicate }
  | { readonly kind: 'and' | 'or'; readonly operands: readonly Predicate[] };

const OPERATOR_SET: ReadonlySet<string> = new Set(OPERATORS);
const OPERATOR_FORM = /^(not\.)?([a-z]+)\.([\s\S]*)$/;
const GROUP_FORM = /^(not\.)?(and|or)(\([\s\S]*\))$/;

/**
 * Parses one filter value such as `gte.18`, `not.in.(a,b)` or a bare `Paris` (meaning eq).
 * A value shaped `word.rest` with a lowercase word that is not an operator is refused, so a
 * typo such as `gtt.5` cannot silently become an equality; `eq.` matches such text literally.
 * @throws QueryError naming `parameter`.
 */
export function parseCondition(path: FieldPath, raw: string, parameter: string): Predicate {
  const match = OPERATOR_FORM.exec(raw);
  if (!match) return { kind: 'cmp', path, op: 'eq', value: parseValue(raw, parameter) };
  const [, negated, op, rest] = match;
  if (!OPERATOR_SET.has(op)) {
    throw new QueryError(
      parameter,
      `unknown operator '${op}'; use one of ${OPERATORS.join(', ')} (to match text containing a dot, write eq.${raw.slice(0, 40)})`,
    );
  }
  const predicate = parseOperator(path, op as Operator, rest, parameter);
  return negated ? { kind: 'not', operand: predicate } : predicate;
}

function parseOperator(path: FieldPath, op: Operator, rest: string, parameter: string): Predicate {
  switch (op) {
    case 'in': {
      if (!rest.startsWith('(') || !rest.endsWith(')')) {
        throw new QueryError(parameter, 'in takes a parenthesised list: in.(a,b,c)');
      }
      const inner = rest.slice(1, -1);
      const items = inner === '' ? [] : splitTopLevel(inner, parameter);
      if (items.length > IN_LIST_MAX) {
        throw new QueryError(parameter, `in lists are limited to ${IN_LIST_MAX} values`);
      }
      return { kind: 'in', path, values: items.map((item) => parseValue(item, parameter)) };
    }
    case 'like':
    case 'ilike': {
      const pattern = rest.startsWith('"') ? parseQuoted(rest, parameter) : rest;
      if (pattern.length > PATTERN_MAX) {
        throw new QueryError(parameter, `patterns are limited to ${PATTERN_MAX} characters`);
      }
      const ignoreCase = op === 'ilike';
      return {
        kind: 'like',
        path,
        pattern: ignoreCase ? pattern.toLowerCase() : pattern,
        ignoreCase,
      };
    }
    case 'is': {
      if (rest !== 'null' && rest !== 'true' && rest !== 'false') {
        throw new QueryError(parameter, 'is takes null, true or false');
      }
      return { kind: 'is', path, value: rest === 'null' ? null : rest === 'true' };
    }
    default: {
      const value = parseValue(rest, parameter);
      if (op !== 'eq' && op !== 'ne' && typeof value !== 'number' && typeof value !== 'string') {
        throw new QueryError(
          parameter,
          `${op} compares numbers or strings, not ${JSON.stringify(value)}`,
        );
      }
      return { kind: 'cmp', path, op, value };
    }
  }
}

/**
 * Parses a logical group such as `(age.lt.18,age.gt.65)` or `(a.eq.1,and(b.eq.2,c.eq.3))`.
 * Each term is `path.operator.value`; the path ends at its first segment that is an operator.
 * @throws QueryError naming `parameter`.
 */
export function parseGroup(kind: 'and' | 'or', text: string, parameter: string): Predicate {
  const budget = { terms: 0 };
  return parseGroupAt(kind, text, parameter, 1, budget);
}

function parseGroupAt(
  kind: 'and' | 'or',
  text: string,
  parameter: string,
  depth: number,
  budget: { terms: number },
): Predicate {
  if (depth > GROUP_DEPTH_MAX)
    throw new QueryError(parameter, `groups nest at most ${GROUP_DEPTH_MAX} deep`);
  if (!text.startsWith('(') || !text.endsWith(')') || text.length < 3) {
    throw new QueryError(
      parameter,
      `${kind} takes a parenthesised list of conditions: ${kind}=(a.eq.1,b.gt.2)`,
    );
  }
  const operands = splitTopLevel(text.slice(1, -1), parameter).map((term) => {
    if (++budget.terms > GROUP_TERMS_MAX) {
      throw new QueryError(parameter, `groups hold at most ${GROUP_TERMS_MAX} conditions`);
    }
    const group = GROUP_FORM.exec(term);
    if (group) {
      const nested = parseGroupAt(group[2] as 'and' | 'or', group[3], parameter, depth + 1, budget);
      return group[1] ? ({ kind: 'not', operand: nested } as const) : nested;
    }
    return parseTerm(term, parameter);
  });
  return { kind, operands };
}

function parseTerm(term: string, parameter: string): Predicate {
  const segments = term.split('.');
  for (let i = 1; i < segments.length - 1; i++) {
    const segment = segments[i];
    if (
      OPERATOR_SET.has(segment) ||
      (segment === 'not' && OPERATOR_SET.has(segments[i + 1] ?? ''))
    ) {
      const path = parseFieldPath(segments.slice(0, i).join('.'), parameter);
      return parseCondition(path, segments.slice(i).join('.'), parameter);
    }
  }
  throw new QueryError(parameter, `'${term.slice(0, 60)}' is not a condition such as age.gte.18`);
}

/** Combines conditions with AND; undefined when there are none. */
export function allOf(predicates: readonly Predicate[]): Predicate | undefined {
  if (predicates.length === 0) return undefined;
  return predicates.length === 1 ? predicates[0] : { kind: 'and', operands: predicates };
}

export type RecordTest = (record: unknown) => boolean;

/**
 * Compiles a predicate into a test. Comparisons never coerce across types: a string never
 * equals a number, and gt/lt order numbers with numbers and strings with strings only.
 */
export function compilePredicate(predicate: Predicate): RecordTest {
  switch (predicate.kind) {
    case 'cmp':
      return compileComparison(predicate.path, predicate.op, predicate.value);
    case 'in': {
      const get = compileGetter(predicate.path);
      const values = new Set<unknown>(predicate.values);
      return (record) => values.has(get(record));
    }
    case 'like': {
      const get = compileGetter(predicate.path);
      const { pattern, ignoreCase } = predicate;
      return (record) => {
        const value = get(record);
        return (
          typeof value === 'string' &&
          wildcardMatch(pattern, ignoreCase ? value.toLowerCase() : value)
        );
      };
    }
    case 'is': {
      const get = compileGetter(predicate.path);
      if (predicate.value === null) {
        return (record) => {
          const value = get(record);
          return value === null || value === undefined;
        };
      }
      const expected = predicate.value;
      return (record) => get(record) === expected;
    }
    case 'not': {
      const operand = compilePredicate(predicate.operand);
      return (record) => !operand(record);
    }
    case 'and': {
      const operands = predicate.operands.map(compilePredicate);
      return (record) => operands.every((test) => test(record));
    }
    case 'or': {
      const operands = predicate.operands.map(compilePredicate);
      return (record) => operands.some((test) => test(record));
    }
  }
}

function compileComparison(
  path: FieldPath,
  op: ComparisonOperator,
  expected: JsonPrimitive,
): RecordTest {
  const get = compileGetter(path);
  switch (op) {
    case 'eq':
      return (record) => get(record) === expected;
    case 'ne':
      return (record) => get(record) !== expected;
  }
  const type = typeof expected;
  const bound = expected as number | string;
  const sameType = (value: unknown): value is number | string => typeof value === type;
  switch (op) {
    case 'gt':
      return (record) => {
        const value = get(record);
        return sameType(value) && value > bound;
      };
    case 'gte':
      return (record) => {
        const value = get(record);
        return sameType(value) && value >= bound;
      };
    case 'lt':
      return (record) => {
        const value = get(record);
        return sameType(value) && value < bound;
      };
    case 'lte':
      return (record) => {
        const value = get(record);
        return sameType(value) && value <= bound;
      };
  }
}

/** Equality conditions at the top level of an AND, which an index on `path` can answer. */
export function indexableConditions(
  predicate: Predicate | undefined,
): { path: FieldPath; values: readonly JsonPrimitive[] }[] {
  if (predicate === undefined) return [];
  if (predicate.kind === 'and')
    return predicate.operands.flatMap((operand) => indexableConditions(operand));
  if (predicate.kind === 'cmp' && predicate.op === 'eq')
    return [{ path: predicate.path, values: [predicate.value] }];
  if (predicate.kind === 'in') return [{ path: predicate.path, values: predicate.values }];
  return [];
}
