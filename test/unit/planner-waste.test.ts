import { expect } from 'chai';
import { wasteState, type FinishedOutcome, type WastePolicy } from '../../src/planner/waste.ts';

const NOW = 9_000_000;
const POLICY: WastePolicy = { threshold: 3, initialBackoffMs: 10_000, maxBackoffMs: 80_000 };

/** Outcomes newest first: a number is tasks started, finished `i` seconds before now. */
function outcomes(...started: number[]): FinishedOutcome[] {
  return started.map((n, i) => ({
    finishedAt: NOW - i * 1_000,
    tasksStarted: n,
    code: n === 0 ? 'NoTimeToStart' : null,
    message: n === 0 ? 'no time' : null,
  }));
}

interface WasteCase {
  name: string;
  outcomes: FinishedOutcome[];
  expected: { wasting: false } | { wasting: true; streak: number; backoffMs: number; pausedUntil: number };
}

describe('wasteState', () => {
  const cases: WasteCase[] = [
    { name: 'is not wasting with no finished invocation', outcomes: [], expected: { wasting: false } },
    { name: 'is not wasting while every recent invocation started a task', outcomes: outcomes(3, 1, 2), expected: { wasting: false } },
    { name: 'is not wasting below the threshold', outcomes: outcomes(0, 0, 3, 0, 0), expected: { wasting: false } },
    {
      name: 'pauses for the initial backoff, from the newest waste, once the threshold is reached',
      outcomes: outcomes(0, 0, 0, 2),
      expected: { wasting: true, streak: 3, backoffMs: 10_000, pausedUntil: NOW + 10_000 },
    },
    {
      name: 'doubles the pause with every further waste in a row',
      outcomes: outcomes(0, 0, 0, 0, 0),
      expected: { wasting: true, streak: 5, backoffMs: 40_000, pausedUntil: NOW + 40_000 },
    },
    {
      name: 'never pauses longer than the maximum',
      outcomes: outcomes(...Array.from({ length: 20 }, () => 0)),
      expected: { wasting: true, streak: 20, backoffMs: 80_000, pausedUntil: NOW + 80_000 },
    },
    {
      name: 'stops wasting as soon as the newest invocation started a task',
      outcomes: outcomes(1, 0, 0, 0, 0, 0),
      expected: { wasting: false },
    },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const state = wasteState(c.outcomes, POLICY);
      expect(
        state.wasting ? { wasting: true, streak: state.streak, backoffMs: state.backoffMs, pausedUntil: state.pausedUntil } : state,
      ).to.deep.equal(c.expected);
    });
  }

  it("says why, with the newest wasted invocation's code and message", () => {
    const state = wasteState(outcomes(0, 0, 0), POLICY);
    expect(state).to.include({ wasting: true, code: 'NoTimeToStart', message: 'no time' });
  });
});
