import { expect } from 'chai';
import {
  backlogCountLimit,
  emptyLiveCounts,
  planDispatch,
  type DispatchDecision,
  type DispatchInput,
  type LiveCounts,
} from '../../src/planner/dispatch.ts';

function live(counts: Partial<LiveCounts> = {}): LiveCounts {
  return { ...emptyLiveCounts(), ...counts };
}

interface DispatchCase {
  name: string;
  input: DispatchInput;
  expected: DispatchDecision;
}

describe('planDispatch', () => {
  const cases: DispatchCase[] = [
    {
      name: 'dispatches nothing when the backlog is empty',
      input: { backlog: 0, live: live(), maxConcurrency: 10, tasksPerInvocation: 1 },
      expected: { dispatch: 0, queued: 0, supply: 0, want: 0, headroom: 10 },
    },
    {
      name: 'dispatches one invocation per task when tasksPerInvocation is 1',
      input: { backlog: 9, live: live(), maxConcurrency: 10, tasksPerInvocation: 1 },
      expected: { dispatch: 9, queued: 0, supply: 0, want: 9, headroom: 10 },
    },
    {
      name: 'dispatches one invocation per three tasks when tasksPerInvocation is 3',
      input: { backlog: 9, live: live(), maxConcurrency: 10, tasksPerInvocation: 3 },
      expected: { dispatch: 3, queued: 0, supply: 0, want: 3, headroom: 10 },
    },
    {
      name: 'rounds a partial batch of tasks up to a whole invocation',
      input: { backlog: 7, live: live(), maxConcurrency: 10, tasksPerInvocation: 3 },
      expected: { dispatch: 3, queued: 0, supply: 0, want: 3, headroom: 10 },
    },
    {
      name: 'dispatches nothing while the queued supply covers the backlog',
      input: { backlog: 3, live: live({ created: 2, pending: 1 }), maxConcurrency: 10, tasksPerInvocation: 1 },
      expected: { dispatch: 0, queued: 3, supply: 3, want: 0, headroom: 7 },
    },
    {
      name: 'dispatches nothing while queued and ready supply exactly fill the backlog',
      input: { backlog: 9, live: live({ pending: 1, ready: 2 }), maxConcurrency: 10, tasksPerInvocation: 3 },
      expected: { dispatch: 0, queued: 1, supply: 9, want: 0, headroom: 7 },
    },
    {
      name: 'dispatches nothing while the supply exceeds the backlog',
      input: { backlog: 2, live: live({ created: 4 }), maxConcurrency: 10, tasksPerInvocation: 2 },
      expected: { dispatch: 0, queued: 4, supply: 8, want: 0, headroom: 6 },
    },
    {
      name: 'counts ready invocations as supply',
      input: { backlog: 5, live: live({ ready: 2 }), maxConcurrency: 10, tasksPerInvocation: 2 },
      expected: { dispatch: 1, queued: 0, supply: 4, want: 1, headroom: 8 },
    },
    {
      name: 'covers only the part of the backlog the supply leaves, rounded up',
      input: { backlog: 10, live: live({ created: 1, pending: 1 }), maxConcurrency: 10, tasksPerInvocation: 3 },
      expected: { dispatch: 2, queued: 2, supply: 6, want: 2, headroom: 8 },
    },
    {
      name: 'does not count running invocations as supply, since they already leased their tasks',
      input: { backlog: 3, live: live({ running: 3 }), maxConcurrency: 10, tasksPerInvocation: 1 },
      expected: { dispatch: 3, queued: 0, supply: 0, want: 3, headroom: 7 },
    },
    {
      name: 'stops at the headroom under maxConcurrency',
      input: { backlog: 100, live: live(), maxConcurrency: 5, tasksPerInvocation: 1 },
      expected: { dispatch: 5, queued: 0, supply: 0, want: 100, headroom: 5 },
    },
    {
      name: 'lets running invocations eat the headroom',
      input: { backlog: 10, live: live({ running: 4 }), maxConcurrency: 5, tasksPerInvocation: 1 },
      expected: { dispatch: 1, queued: 0, supply: 0, want: 10, headroom: 1 },
    },
    {
      name: 'counts every live state against the headroom',
      input: {
        backlog: 40,
        live: live({ created: 1, pending: 2, ready: 3, running: 4 }),
        maxConcurrency: 12,
        tasksPerInvocation: 2,
      },
      expected: { dispatch: 2, queued: 3, supply: 12, want: 14, headroom: 2 },
    },
    {
      name: 'dispatches nothing when running invocations fill the pool',
      input: { backlog: 10, live: live({ running: 5 }), maxConcurrency: 5, tasksPerInvocation: 1 },
      expected: { dispatch: 0, queued: 0, supply: 0, want: 10, headroom: 0 },
    },
    {
      name: 'dispatches nothing to an over-full pool whose live count exceeds maxConcurrency',
      input: { backlog: 50, live: live({ created: 2, running: 6 }), maxConcurrency: 5, tasksPerInvocation: 1 },
      expected: { dispatch: 0, queued: 2, supply: 2, want: 48, headroom: -3 },
    },
    {
      name: 'dispatches nothing when maxConcurrency is zero',
      input: { backlog: 50, live: live(), maxConcurrency: 0, tasksPerInvocation: 1 },
      expected: { dispatch: 0, queued: 0, supply: 0, want: 50, headroom: 0 },
    },
  ];

  for (const { name, input, expected } of cases) {
    it(name, () => {
      expect(planDispatch(input)).to.deep.equal(expected);
    });
  }
});

describe('backlogCountLimit', () => {
  const cases = [
    { name: 'needs one task per slot when tasksPerInvocation is 1', spec: { maxConcurrency: 10, tasksPerInvocation: 1 }, expected: 10 },
    { name: 'needs a full batch per slot when tasksPerInvocation is 3', spec: { maxConcurrency: 4, tasksPerInvocation: 3 }, expected: 12 },
    { name: 'needs no backlog at all when maxConcurrency is zero', spec: { maxConcurrency: 0, tasksPerInvocation: 5 }, expected: 0 },
  ];
  for (const { name, spec, expected } of cases) {
    it(name, () => {
      expect(backlogCountLimit(spec)).to.equal(expected);
    });
  }

  it('never changes the dispatch decision when the backlog is capped at the limit', () => {
    let checked = 0;
    const mismatches: string[] = [];
    for (let maxConcurrency = 0; maxConcurrency <= 6; maxConcurrency++) {
      for (let tasksPerInvocation = 1; tasksPerInvocation <= 4; tasksPerInvocation++) {
        const limit = backlogCountLimit({ maxConcurrency, tasksPerInvocation });
        for (let n = 0; n < 3 ** 4; n++) {
          const counts = live({
            created: n % 3,
            pending: Math.floor(n / 3) % 3,
            ready: Math.floor(n / 9) % 3,
            running: Math.floor(n / 27) % 3,
          });
          for (let backlog = 0; backlog <= limit + 3 * tasksPerInvocation + 1; backlog++) {
            const spec = { live: counts, maxConcurrency, tasksPerInvocation };
            const full = planDispatch({ ...spec, backlog });
            const capped = planDispatch({ ...spec, backlog: Math.min(backlog, limit) });
            if (capped.dispatch !== full.dispatch) mismatches.push(JSON.stringify({ ...spec, backlog }));
            checked++;
          }
        }
      }
    }
    expect(mismatches).to.deep.equal([]);
    expect(checked).to.be.greaterThan(10_000);
  });
});
