import { expect } from 'chai';
import { splitFirstRows, type FirstRows } from '../../src/planner/first-rows.ts';

interface SplitCase {
  name: string;
  counts: number[];
  firstRows: number;
  expected: FirstRows;
}

describe('splitFirstRows', () => {
  const cases: SplitCase[] = [
    {
      name: 'keeps a small pass whole',
      counts: [10, 20],
      firstRows: 128,
      expected: { first: [10, 20], rest: [0, 0] },
    },
    {
      name: 'keeps a pass of exactly twice the first rows whole',
      counts: [256],
      firstRows: 128,
      expected: { first: [256], rest: [0] },
    },
    {
      name: 'splits one deep pool into its first rows and the rest',
      counts: [1_000],
      firstRows: 128,
      expected: { first: [128], rest: [872] },
    },
    {
      name: 'gives every pool one first row, then fills the rest of the first rows pool by pool, in the batch order',
      counts: [10, 10, 10, 10, 10, 10, 10],
      firstRows: 25,
      expected: { first: [10, 10, 1, 1, 1, 1, 1], rest: [0, 0, 9, 9, 9, 9, 9] },
    },
    {
      name: 'gives a hundred pools of ten rows a first row each, so that every decision goes in with the first commit',
      counts: Array.from({ length: 100 }, () => 10),
      firstRows: 128,
      expected: {
        first: [10, 10, 10, 2, ...Array.from({ length: 96 }, () => 1)],
        rest: [0, 0, 0, 8, ...Array.from({ length: 96 }, () => 9)],
      },
    },
    {
      name: 'gives first rows to the first pools only when there are more pools than first rows',
      counts: [3, 3, 3, 3, 3],
      firstRows: 2,
      expected: { first: [1, 1, 0, 0, 0], rest: [2, 2, 3, 3, 3] },
    },
    {
      name: 'leaves pools that dispatch nothing at zero on both sides',
      counts: [0, 600, 0, 300],
      firstRows: 128,
      expected: { first: [0, 127, 0, 1], rest: [0, 473, 0, 299] },
    },
    {
      name: 'never splits when the first rows are switched off',
      counts: [1_000],
      firstRows: 0,
      expected: { first: [1_000], rest: [0] },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const split = splitFirstRows(c.counts, c.firstRows);
      expect(split).to.deep.equal(c.expected);
      // Every row is in exactly one part.
      expect(split.first.map((n, i) => n + (split.rest[i] ?? 0))).to.deep.equal(c.counts);
    });
  }
});
