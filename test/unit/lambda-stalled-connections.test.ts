import { expect } from 'chai';
import { sweepConnections, sweepEveryMs, type Seen } from '../../src/lambda/stalled-connections.ts';

interface SweepCase {
  name: string;
  seen: Array<[string, Seen]>;
  inUse: Array<{ key: string; bytes: number }>;
  now: number;
  expected: { seen: Array<[string, Seen]>; stalled: string[] };
}

describe('sweepConnections', () => {
  const stallMs = 1_000;
  const cases: SweepCase[] = [
    {
      name: 'starts the clock of a connection it sees for the first time',
      seen: [],
      inUse: [{ key: 'a', bytes: 0 }],
      now: 5_000,
      expected: { seen: [['a', { bytes: 0, since: 5_000 }]], stalled: [] },
    },
    {
      name: 'gives up a connection whose bytes have not moved for stallMs',
      seen: [['a', { bytes: 300, since: 4_000 }]],
      inUse: [{ key: 'a', bytes: 300 }],
      now: 5_000,
      expected: { seen: [['a', { bytes: 300, since: 4_000 }]], stalled: ['a'] },
    },
    {
      name: 'keeps a connection that has not stalled for stallMs yet',
      seen: [['a', { bytes: 300, since: 4_001 }]],
      inUse: [{ key: 'a', bytes: 300 }],
      now: 5_000,
      expected: { seen: [['a', { bytes: 300, since: 4_001 }]], stalled: [] },
    },
    {
      name: 'starts the clock again when bytes moved, however long it was quiet before',
      seen: [['a', { bytes: 300, since: 0 }]],
      inUse: [{ key: 'a', bytes: 301 }],
      now: 5_000,
      expected: { seen: [['a', { bytes: 301, since: 5_000 }]], stalled: [] },
    },
    {
      name: 'forgets connections no longer in use (back in the free pool, or closed)',
      seen: [
        ['a', { bytes: 300, since: 0 }],
        ['b', { bytes: 10, since: 4_500 }],
      ],
      inUse: [{ key: 'b', bytes: 10 }],
      now: 5_000,
      expected: { seen: [['b', { bytes: 10, since: 4_500 }]], stalled: [] },
    },
    {
      name: 'judges each connection on its own',
      seen: [
        ['a', { bytes: 0, since: 3_000 }],
        ['b', { bytes: 50, since: 3_000 }],
        ['c', { bytes: 70, since: 3_000 }],
      ],
      inUse: [
        { key: 'a', bytes: 0 },
        { key: 'b', bytes: 90 },
        { key: 'c', bytes: 70 },
      ],
      now: 5_000,
      expected: {
        seen: [
          ['a', { bytes: 0, since: 3_000 }],
          ['b', { bytes: 90, since: 5_000 }],
          ['c', { bytes: 70, since: 3_000 }],
        ],
        stalled: ['a', 'c'],
      },
    },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const out = sweepConnections(new Map(c.seen), c.inUse, c.now, stallMs);
      expect([...out.seen]).to.deep.equal(c.expected.seen);
      expect(out.stalled).to.deep.equal(c.expected.stalled);
    });
  }

  it('sweeps four times per stall limit, and not more than every 25 ms', () => {
    expect([10_000, 500, 60].map(sweepEveryMs)).to.deep.equal([2_500, 125, 25]);
  });
});
