import fc from 'fast-check';
import { wildcardMatch } from './wildcard';

describe('wildcardMatch', () => {
  it.each([
    ['*', '', true],
    ['a*', 'abc', true],
    ['*c', 'abc', true],
    ['a*c', 'abbbc', true],
    ['a*c', 'abcd', false],
    ['abc', 'abc', true],
    ['a.c', 'abc', false],
    ['*a*a*a*b', 'a'.repeat(5000), false],
    ['a*a', 'a', false],
    ['ab*ba', 'aba', false],
    ['**', 'x', true],
    ['a**b', 'ab', true],
  ])('%s against %s is %s', (pattern, text, expected) => {
    expect(wildcardMatch(pattern, text)).toBe(expected);
  });

  it('answers adversarial patterns on long texts (a backtracking matcher would need ~250M steps a call)', () => {
    const text = 'a'.repeat(1_000_000);

    for (let i = 0; i < 20; i++) expect(wildcardMatch(`*${'a'.repeat(250)}b`, text)).toBe(false);
    expect(wildcardMatch(`*${'a'.repeat(250)}*`, text)).toBe(true);
  });

  it('agrees with an anchored regular expression', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[ab*.]{0,6}$/),
        fc.stringMatching(/^[ab.]{0,8}$/),
        (pattern, text) => {
          const regex = new RegExp(`^${pattern.replaceAll('.', '\\.').replaceAll('*', '.*')}$`);
          expect(wildcardMatch(pattern, text)).toBe(regex.test(text));
        },
      ),
      { numRuns: 3000 },
    );
  });
});
