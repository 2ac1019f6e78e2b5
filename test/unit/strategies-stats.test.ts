import { expect } from 'chai';
import type { JournalLine } from '../../bench/strategies/journal.ts';
import { profilesTable, replaceTable, runsTable, TABLE_END, TABLE_START } from '../../bench/strategies/report.ts';
import { deliveries, overlapSeries, peakOverlap, percentile, runFigures } from '../../bench/strategies/stats.ts';
import { perfectScore, simulatePerfect } from '../../bench/strategies/perfect.ts';
import { burstPlan, idealMakespan, PROFILES, type Profile } from '../../bench/strategies/workload.ts';

/** A delivery of `invocation` in process `pid` from `start` to `end`, running the given tasks one after another (1 s each). */
function delivery(args: {
  invocation: number;
  pid: number;
  start: number;
  end: number;
  outcome?: string;
  tasks?: number[];
}): JournalLine[] {
  const tasks = args.tasks ?? [];
  const lines: JournalLine[] = [{ kind: 'delivery', phase: 'start', invocation: args.invocation, at: args.start, pid: args.pid }];
  tasks.forEach((task, i) => {
    const at = args.start + 100 + i * 1_000;
    lines.push({ kind: 'task', phase: 'start', task, invocation: args.invocation, at, pid: args.pid });
    lines.push({ kind: 'task', phase: 'end', task, invocation: args.invocation, at: at + 1_000, pid: args.pid });
  });
  lines.push({
    kind: 'delivery',
    phase: 'end',
    invocation: args.invocation,
    at: args.end,
    pid: args.pid,
    outcome: args.outcome ?? 'succeeded',
    leased: tasks.length,
    started: tasks.length,
  });
  return lines;
}

describe('strategy benchmark: figures from the journal', () => {
  it('pairs each delivery start with its end by process and invocation', () => {
    const lines = [
      ...delivery({ invocation: 1, pid: 10, start: 0, end: 5_000, tasks: [1] }),
      ...delivery({ invocation: 1, pid: 11, start: 300, end: 350, outcome: 'skipped' }),
    ];
    const found = deliveries(lines);
    expect(found.map((d) => [d.invocation, d.start, d.end, d.claimed])).to.deep.equal([
      [1, 0, 5_000, true],
      [1, 300, 350, false],
    ]);
  });

  it('counts the most spans open at once, a span ending as another starts not overlapping it', () => {
    expect(
      peakOverlap([
        { start: 0, end: 10 },
        { start: 5, end: 15 },
        { start: 10, end: 20 },
        { start: 12, end: 13 },
      ]),
    ).to.equal(3);
    expect(peakOverlap([])).to.equal(0);
  });

  it('keeps a brief peak between two samples in the series', () => {
    const spans = [
      { start: 0, end: 3_000 },
      { start: 1_200, end: 1_300 },
    ];
    expect(overlapSeries(spans, { from: 0, to: 3_000, stepMs: 1_000 })).to.deep.equal([
      [0, 1],
      [1, 2],
      [2, 1],
    ]);
  });

  it('takes nearest-rank percentiles', () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(values, 50)).to.equal(50);
    expect(percentile(values, 99)).to.equal(99);
    expect(percentile([4], 99)).to.equal(4);
    expect(Number.isNaN(percentile([], 50))).to.equal(true);
  });

  describe('runFigures', () => {
    // Invocation 1 runs tasks 1-3 and is delivered twice (the copy while invocation 3 runs too); invocation 2 leases nothing; invocation 3 runs
    // task 4 and overlaps invocation 1; invocation 4 was invoked and never ran.
    const lines = [
      ...delivery({ invocation: 1, pid: 10, start: 1_000, end: 4_500, tasks: [1, 2, 3] }),
      ...delivery({ invocation: 1, pid: 11, start: 2_200, end: 2_250, outcome: 'skipped' }),
      ...delivery({ invocation: 2, pid: 12, start: 5_000, end: 5_050 }),
      ...delivery({ invocation: 3, pid: 13, start: 2_000, end: 3_500, tasks: [4] }),
    ];
    const tasks = [1, 2, 3, 4].map((id) => ({ id, createdAt: 0 }));
    // The rows: each invoked some time before its delivery; invocation 4 waits in Lambda's queue the whole run.
    const invocationSpans = [
      { start: 0, end: 4_500 },
      { start: 4_000, end: 5_050 },
      { start: 500, end: 3_500 },
      { start: 100, end: 6_000 },
    ];
    const figures = runFigures({ lines, tasks, invocations: 4, invocationSpans, cap: 10, idealSeconds: 4 });

    it('counts as wasted every invocation that started no task, the never-run one included', () => {
      expect(figures.wasted).to.equal(2);
      expect(figures.invocationsPerTask).to.equal(1);
    });

    it("counts invocations in flight from their rows, those still in Lambda's queue included", () => {
      expect(figures.peakInFlight).to.equal(3);
    });

    it('counts running invocations from claimed deliveries, and duplicates apart', () => {
      expect(figures.peakLive).to.equal(2);
      expect(figures.peakDeliveries).to.equal(3);
      expect(figures.duplicateDeliveries).to.equal(1);
      expect(figures.deliveries).to.equal(4);
    });

    it('measures the makespan from the first task created to the last task ended, against the ideal', () => {
      // Task 3 of invocation 1 ends at 1000 + 100 + 2000 + 1000.
      expect(figures.makespanSeconds).to.equal(4.1);
      expect(figures.makespanVsIdeal).to.be.closeTo(4.1 / 4, 1e-9);
    });

    it('measures each task wait from its creation to its first start', () => {
      // Starts at 1.1, 2.1, 3.1 (invocation 1) and 2.1 (invocation 3).
      expect(figures.waitP50Seconds).to.equal(2.1);
      expect(figures.waitP99Seconds).to.equal(3.1);
      expect(figures.tasksDone).to.equal(4);
      expect(figures.tasksRunTwice).to.equal(0);
    });
  });
});

describe('strategy benchmark: workload', () => {
  const profile: Profile = PROFILES[0] ?? expect.fail('no profile');

  it('computes the ideal N/(c·k)·(k·d + delay) from the mean task time and start delay', () => {
    // 300 / 30 rounds of (3 × 1 s + 3 s).
    expect(idealMakespan(profile)).to.deep.equal({ seconds: 60, taskSeconds: 1, delaySeconds: 3 });
    const long = PROFILES[1] ?? expect.fail('no second profile');
    expect(idealMakespan(long).seconds).to.equal(185);
  });

  it('plans the same bursts for the same seed, with every task in range', () => {
    const plan = burstPlan(profile, 5);
    expect(burstPlan(profile, 5)).to.deep.equal(plan);
    expect(plan.flatMap((b) => b.taskMs)).to.have.length(profile.tasks);
    expect(plan.map((b) => b.atMs)).to.deep.equal([0, 5_000, 10_000, 15_000, 20_000, 25_000]);
    expect(plan.flatMap((b) => b.taskMs).every((ms) => ms >= 500 && ms <= 1_500)).to.equal(true);
  });

  it('brings tasks faster than the cap can serve them, so the ideal holds for a bursty workload', () => {
    for (const p of PROFILES) {
      const arrivalPerSecond = p.burstSize / (p.burstEveryMs / 1000);
      const servicePerSecond = p.tasks / idealMakespan(p).seconds;
      expect(arrivalPerSecond, p.id).to.be.greaterThan(servicePerSecond);
    }
  });
});

describe('strategy benchmark: the table', () => {
  it('puts one row per profile and dispatcher, in profile order', () => {
    const profile = PROFILES[0] ?? expect.fail('no profile');
    const figures = runFigures({
      lines: [],
      tasks: [{ id: 1, createdAt: 0 }],
      invocations: 1,
      invocationSpans: [],
      cap: 10,
      idealSeconds: 60,
    });
    const run = { profile: profile.id, figures, timeline: [], crossCheck: {} as never, load: { before: [], after: [] } };
    const table = runsTable({
      profiles: [{ ...profile, ideal: idealMakespan(profile), perfect: { runs: 1, mean: 1, p50: 1, p90: 1 } }],
      runs: [
        { ...run, dispatcher: 'naive', figures: { ...figures, makespanSeconds: 90, makespanVsIdeal: 1.5, wasted: 7 } },
        { ...run, dispatcher: 'ledger', figures: { ...figures, makespanSeconds: 63, makespanVsIdeal: 1.05, wasted: 0 } },
      ],
    }).split('\n');
    expect(table).to.have.length(4);
    expect(table[2]).to.match(/^\| start delay 1–5 s \| `naive` \| 1 \| 7 \| 1\.00 \| 0 \/ 0 \(10\) \| 90\.0 \(60\.0\) \| \+50% \|/);
    expect(table[3]).to.contain('`ledger`').and.to.contain('| +5% |');
  });

  it('describes each profile with its ideal and the perfect dispatcher beside it', () => {
    const profile = PROFILES[1] ?? expect.fail('no profile');
    const table = profilesTable([{ ...profile, ideal: idealMakespan(profile), perfect: { runs: 1, mean: 1.08, p50: 1.07, p90: 1.15 } }]);
    expect(table.split('\n')[2]).to.equal(
      '| start delay 1–30 s | 300 | 50 every 15 s | 1–30 (mean 15.5) | 0.5–1.5 (mean 1.0) | 185.0 | +8%, +15% |',
    );
  });

  it('replaces only what lies between the markers, and refuses a document without them', () => {
    const doc = `intro\n${TABLE_START}\nold\n${TABLE_END}\noutro\n`;
    expect(replaceTable(doc, 'new')).to.equal(`intro\n${TABLE_START}\nnew\n${TABLE_END}\noutro\n`);
    expect(() => replaceTable('no markers', 'new')).to.throw(/no <!-- strategies-table:start -->/);
  });
});

describe('strategy benchmark: the perfect dispatcher', () => {
  const base: Profile = PROFILES[0] ?? expect.fail('no profile');

  it('meets the ideal exactly when every delay and every task takes its mean and all tasks come at once', () => {
    const even: Profile = { ...base, burstEveryMs: 0, startDelayMs: { min: 3_000, max: 3_000 }, taskMs: { min: 1_000, max: 1_000 } };
    expect(simulatePerfect(even, 1)).to.equal(idealMakespan(even).seconds * 1000);
  });

  it('overshoots the ideal a little with random delays and task times: the tail of the last invocations', () => {
    for (const profile of PROFILES) {
      const score = perfectScore(profile, 100);
      expect(score.mean, profile.id).to.be.greaterThan(1).and.lessThan(1.15);
      expect(score.p90, profile.id).to.be.at.least(score.p50);
      expect(perfectScore(profile, 100)).to.deep.equal(score);
    }
  });
});
