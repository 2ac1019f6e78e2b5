import { expect } from 'chai';
import { bestOffset, DB_CLOCK, DbClock, type ClockProbe } from '../../src/store/db-clock.ts';

interface OffsetCase {
  name: string;
  probes: ClockProbe[];
  now: number;
  expected: { offsetMs: number; errorMs: number } | undefined;
}

describe('bestOffset', () => {
  const drift = 100e-6;
  const cases: OffsetCase[] = [
    { name: 'knows nothing without a probe', probes: [], now: 1_000, expected: undefined },
    {
      name: "takes the database's reading as made halfway through the probe's round trip",
      probes: [{ sentAt: 1_000, answeredAt: 1_002, databaseMs: 5_001 }],
      now: 1_002,
      expected: { offsetMs: 4_000, errorMs: 1 },
    },
    {
      name: "widens a probe's bound by the drift since it was answered (100 ppm: 1 ms after 10 s)",
      probes: [{ sentAt: 1_000, answeredAt: 1_002, databaseMs: 5_001 }],
      now: 11_002,
      expected: { offsetMs: 4_000, errorMs: 2 },
    },
    {
      name: 'prefers a quick probe to a slow one of the same age (one that waited for a connection)',
      probes: [
        { sentAt: 1_000, answeredAt: 1_040, databaseMs: 5_035 },
        { sentAt: 2_000, answeredAt: 2_001, databaseMs: 6_000.5 },
      ],
      now: 2_001,
      expected: { offsetMs: 4_000, errorMs: 0.5 },
    },
    {
      name: 'prefers a recent probe to an old quicker one once drift has widened the old one past it',
      probes: [
        { sentAt: 0, answeredAt: 0.2, databaseMs: 4_000.1 },
        { sentAt: 30_000, answeredAt: 30_001, databaseMs: 34_001.5 },
      ],
      now: 30_001,
      expected: { offsetMs: 4_001, errorMs: 0.5 },
    },
    {
      name: 'ignores a probe answered before it was sent, or without a reading',
      probes: [
        { sentAt: 1_000, answeredAt: 999, databaseMs: 5_000 },
        { sentAt: 1_000, answeredAt: 1_001, databaseMs: Number.NaN },
      ],
      now: 1_001,
      expected: undefined,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const got = bestOffset(c.probes, c.now, drift);
      if (c.expected === undefined) expect(got).to.equal(undefined);
      else {
        expect(got?.offsetMs).to.be.closeTo(c.expected.offsetMs, 1e-9);
        expect(got?.errorMs).to.be.closeTo(c.expected.errorMs, 1e-9);
      }
    });
  }
});

describe('DbClock', () => {
  it('gives no offset while its best probe is bounded more loosely than maxErrorMs', () => {
    const clock = new DbClock();
    const rtt = 2 * DB_CLOCK.maxErrorMs + 1;
    clock.record({ sentAt: 0, answeredAt: rtt, databaseMs: 10_000 });
    expect(clock.offsetMs(rtt)).to.equal(undefined);
    clock.record({ sentAt: 100, answeredAt: 101, databaseMs: 10_100.5 });
    expect(clock.offsetMs(101)).to.equal(10_000);
  });

  it('gives no offset once its probes are old enough for drift to exceed maxErrorMs', () => {
    const clock = new DbClock();
    clock.record({ sentAt: 0, answeredAt: 0, databaseMs: 10_000 });
    const tooOld = DB_CLOCK.maxErrorMs / DB_CLOCK.driftPerMs + 1;
    expect(clock.offsetMs(tooOld - 2)).to.equal(10_000);
    expect(clock.offsetMs(tooOld)).to.equal(undefined);
  });

  it(`keeps only the last ${DB_CLOCK.keep} probes`, () => {
    const clock = new DbClock();
    // The quickest probe first; once as many others have come after it, it is forgotten.
    clock.record({ sentAt: 0, answeredAt: 0, databaseMs: 1_000 });
    for (let i = 1; i < DB_CLOCK.keep; i += 1) clock.record({ sentAt: i, answeredAt: i + 1, databaseMs: 2_000 + i + 0.5 });
    expect(clock.offsetMs(DB_CLOCK.keep)).to.equal(1_000);
    clock.record({ sentAt: DB_CLOCK.keep, answeredAt: DB_CLOCK.keep + 1, databaseMs: 2_000 + DB_CLOCK.keep + 0.5 });
    expect(clock.offsetMs(DB_CLOCK.keep + 1)).to.equal(2_000);
  });
});
