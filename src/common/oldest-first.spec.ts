import fc from 'fast-check';
import { OldestFirst, type Queued } from './oldest-first';

const item = (seq: number, order: number): Queued => ({ seq, order, position: -1 });
const rank = (a: Queued, b: Queued) => a.seq - b.seq || a.order - b.order;

describe('OldestFirst', () => {
  it('gives the lowest seq first, then the first inserted, whatever is removed meanwhile', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 5 }), fc.boolean()), { maxLength: 60 }),
        (plan) => {
          const queue = new OldestFirst<Queued>();
          const model: Queued[] = [];
          plan.forEach(([seq, removeOne], order) => {
            const added = item(seq, order);
            queue.push(added);
            model.push(added);
            if (removeOne) {
              const victim = model.splice(order % model.length, 1)[0];
              queue.remove(victim);
              expect(victim.position).toBe(-1);
            }
          });
          model.sort(rank);
          const drained: Queued[] = [];
          for (let next = queue.peek(); next !== undefined; next = queue.peek()) {
            drained.push(next);
            queue.remove(next);
          }
          expect(drained).toEqual(model);
        },
      ),
    );
  });

  it('ignores removing an item it does not hold', () => {
    const queue = new OldestFirst<Queued>();
    const held = item(1, 0);
    queue.push(held);

    queue.remove(item(0, 1));

    expect(queue.size).toBe(1);
    expect(queue.peek()).toBe(held);
  });
});
