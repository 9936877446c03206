import {
  JOIN_TYPES,
  hashJoin,
  joinGroups,
  type JoinRow,
  type JoinSpec,
  type Relation,
} from './hash-join';

type Row = Record<string, unknown>;

const relation = <T>(rows: T[]): Relation<T> => ({
  size: rows.length,
  values: () => rows.values(),
});

/** The obvious nested loop, as the reference: strict equality of scalar keys, left order. */
function nestedLoopJoin(left: Row[], right: Row[], spec: JoinSpec): JoinRow<Row, Row>[] {
  const leftKey = spec.leftKey as string;
  const rightKey = spec.rightKey as string;
  const scalar = (v: unknown) =>
    typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
  const matches = (l: Row, r: Row) => scalar(l[leftKey]) && l[leftKey] === r[rightKey];
  const out: JoinRow<Row, Row>[] = [];
  if (spec.type === 'right') {
    for (const r of right) {
      const found = left.filter((l) => matches(l, r));
      if (found.length === 0) out.push({ left: null, right: r });
      for (const l of found) out.push({ left: l, right: r });
    }
    return out;
  }
  for (const l of left) {
    const found = right.filter((r) => matches(l, r));
    if (spec.type === 'semi' && found.length > 0) out.push({ left: l });
    if (spec.type === 'anti' && found.length === 0) out.push({ left: l });
    if (spec.type === 'semi' || spec.type === 'anti') continue;
    for (const r of found) out.push({ left: l, right: r });
    if (found.length === 0 && spec.type !== 'inner') out.push({ left: l, right: null });
  }
  if (spec.type === 'full') {
    for (const r of right) if (!left.some((l) => matches(l, r))) out.push({ left: null, right: r });
  }
  return out;
}

/** Small deterministic PRNG so a failure can be replayed from its seed. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const KEY_POOL: unknown[] = [
  1,
  '1',
  2,
  '2',
  3,
  true,
  'true',
  null,
  0,
  '0',
  false,
  { nested: 1 },
  [1],
  'x',
  'y',
];

function randomRows(random: () => number, count: number, field: string, prefix: string): Row[] {
  return Array.from({ length: count }, (_, i) => {
    const row: Row = { id: `${prefix}${i}` };
    if (random() > 0.1) row[field] = KEY_POOL[Math.floor(random() * KEY_POOL.length)];
    return row;
  });
}

describe('hashJoin', () => {
  const users = [
    { id: 'u1', name: 'Ada' },
    { id: 'u2', name: 'Bob' },
    { id: 'u3', name: 'Cy' },
  ];
  const orders = [
    { id: 'o1', user_id: 'u1', total: 10 },
    { id: 'o2', user_id: 'u2', total: 20 },
    { id: 'o3', user_id: 'u1', total: 30 },
  ];
  const join = (left: Row[], right: Row[], spec: JoinSpec<Row> | JoinSpec) =>
    hashJoin(relation(left), relation(right), spec as JoinSpec<Row>);

  it('pairs records whose keys are equal, in left then right order, without merging', async () => {
    const rows = await join(users, orders, { leftKey: 'id', rightKey: 'user_id', type: 'inner' });

    expect(rows).toEqual([
      { left: users[0], right: orders[0] },
      { left: users[0], right: orders[2] },
      { left: users[1], right: orders[1] },
    ]);
    expect(rows[0].left).toBe(users[0]);
  });

  it('keeps unmatched left records with right: null in a left join', async () => {
    const rows = await join(users, orders, { leftKey: 'id', rightKey: 'user_id', type: 'left' });

    expect(rows.map((r) => [r.left?.['id'], r.right?.['id'] ?? null])).toEqual([
      ['u1', 'o1'],
      ['u1', 'o3'],
      ['u2', 'o2'],
      ['u3', null],
    ]);
  });

  it('never matches a number with its string, nor null or missing keys', async () => {
    const left = [{ k: 3 }, { k: null }, {}, { k: true }];
    const right = [{ k: '3' }, { k: null }, {}, { k: 'true' }];

    expect(await join(left, right, { leftKey: 'k', rightKey: 'k', type: 'inner' })).toEqual([]);
  });

  it('ignores inherited members such as constructor and toString as keys', async () => {
    for (const key of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      expect(
        await join([{ id: 1 }], [{ id: 2 }], { leftKey: key, rightKey: key, type: 'inner' }),
      ).toEqual([]);
    }
  });

  it('gives the same rows whichever side is smaller', async () => {
    const manyUsers = [...users, { id: 'u4' }, { id: 'u5' }, { id: 'u6' }];
    const fewOrders = orders.slice(0, 2);
    const spec: JoinSpec = { leftKey: 'id', rightKey: 'user_id', type: 'left' };
    const mirrored: JoinSpec = { ...spec, leftKey: 'user_id', rightKey: 'id' };

    expect(await join(manyUsers, fewOrders, spec)).toEqual(
      nestedLoopJoin(manyUsers, fewOrders, spec),
    );
    expect(await join(fewOrders, manyUsers, mirrored)).toEqual(
      nestedLoopJoin(fewOrders, manyUsers, mirrored),
    );
  });

  it.each(JOIN_TYPES)('equals a nested-loop join on random data (%s)', async (type) => {
    for (let seed = 1; seed <= 200; seed++) {
      const random = prng(seed);
      const left = randomRows(random, Math.floor(random() * 40), 'a', 'l');
      const right = randomRows(random, Math.floor(random() * 40), 'b', 'r');
      const spec: JoinSpec = { leftKey: 'a', rightKey: 'b', type };

      expect({ seed, rows: await join(left, right, spec) }).toEqual({
        seed,
        rows: nestedLoopJoin(left, right, spec),
      });
    }
  });

  it.each(JOIN_TYPES)(
    'gives the same rows through an index lookup as through a hash table (%s)',
    async (type) => {
      for (let seed = 1; seed <= 50; seed++) {
        const random = prng(seed);
        const left = randomRows(random, Math.floor(random() * 30), 'a', 'l');
        const right = randomRows(random, Math.floor(random() * 30), 'b', 'r');
        const rightLookup = (key: unknown) => right.filter((r) => r.b === key);

        const viaLookup = await join(left, right, {
          leftKey: 'a',
          rightKey: 'b',
          type,
          rightLookup,
        });

        expect(viaLookup).toEqual(
          nestedLoopJoin(left, right, { leftKey: 'a', rightKey: 'b', type }),
        );
      }
    },
  );

  it('joins on nested paths', async () => {
    const left = [{ id: 1, ref: { user: 'u1' } }];
    const right = [{ id: 'u1' }];

    expect(
      await join(left, right, { leftKey: ['ref', 'user'], rightKey: 'id', type: 'inner' }),
    ).toEqual([{ left: left[0], right: right[0] }]);
  });

  it('produces groups lazily: the first group needs only the first left record', async () => {
    function* leftRows(): Generator<Row> {
      yield { k: 1 };
      throw new Error('read past the first row');
    }
    const groups = await joinGroups(
      { size: 2, values: leftRows },
      relation<Row>([{ k: 1 }, { k: 1 }]),
      {
        leftKey: 'k',
        rightKey: 'k',
        type: 'inner',
      },
    );
    const iterator = groups[Symbol.iterator]();

    expect(iterator.next().value).toEqual({ left: { k: 1 }, matches: [{ k: 1 }, { k: 1 }] });
    expect(() => iterator.next()).toThrow('read past the first row');
  });
});
