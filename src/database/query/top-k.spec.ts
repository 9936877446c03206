import fc from 'fast-check';
import { TopK } from './top-k';

describe('TopK', () => {
  it('keeps the k smallest, sorted, as a full sort would', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: -50, max: 50 })),
        fc.integer({ min: 0, max: 20 }),
        (values, k) => {
          const top = new TopK<number>(k, (a, b) => a - b);
          for (const value of values) top.offer(value);

          expect(top.sorted()).toEqual([...values].sort((a, b) => a - b).slice(0, k));
        },
      ),
      { numRuns: 500 },
    );
  });
});
