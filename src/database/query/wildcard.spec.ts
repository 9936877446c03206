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
  ])('%s against %s is %s', (pattern, text, expected) => {
    expect(wildcardMatch(pattern, text)).toBe(expected);
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
