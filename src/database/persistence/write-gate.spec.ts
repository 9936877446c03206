import { WriteGate } from './write-gate';

class HeldTooLong extends Error {}

/** A promise and the function that resolves it. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('WriteGate', () => {
  it('fails a write held longer than the timeout, and runs none of it', async () => {
    const gate = new WriteGate(30);
    const release = deferred();
    const holding = gate.exclusive(() => release.promise);
    let ran = false;

    const write = gate.run(
      async () => {
        ran = true;
      },
      () => new HeldTooLong(),
    );

    await expect(write).rejects.toBeInstanceOf(HeldTooLong);
    release.resolve();
    await holding;
    expect(ran).toBe(false);
  });

  it('runs a write held for less than the timeout once the step ends', async () => {
    const gate = new WriteGate(5000);
    const release = deferred();
    const order: string[] = [];
    const holding = gate.exclusive(async () => {
      await release.promise;
      order.push('step');
    });

    const write = gate.run(
      async () => {
        order.push('write');
      },
      () => new HeldTooLong(),
    );
    release.resolve();

    await Promise.all([holding, write]);
    expect(order).toEqual(['step', 'write']);
  });

  it('starts a step only once the writes in flight have finished', async () => {
    const gate = new WriteGate(5000);
    const release = deferred();
    const order: string[] = [];
    const write = gate.run(
      async () => {
        await release.promise;
        order.push('write');
      },
      () => new HeldTooLong(),
    );

    const step = gate.exclusive(() => order.push('step'));
    release.resolve();

    await Promise.all([write, step]);
    expect(order).toEqual(['write', 'step']);
  });
});
