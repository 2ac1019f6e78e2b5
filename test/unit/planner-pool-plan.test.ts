import { expect } from 'chai';
import { liveRows } from './planner-rows.ts';
import type { LiveCounts } from '../../src/planner/dispatch.ts';
import {
  DEFAULT_PLAN_LIMITS,
  planPool,
  planPoolDispatch,
  planPoolSweep,
  type PoolPlanInput,
  type PoolPlanLimits,
} from '../../src/planner/pool-plan.ts';

const NOW = 5_000_000;
const START = 60_000;
const HB = 20_000;

const row = liveRows(NOW, NOW + 50_000, HB);

function poolInput(over: Partial<PoolPlanInput>): PoolPlanInput {
  return {
    now: NOW,
    mode: 'active',
    backlog: 0,
    invocations: [],
    maxConcurrency: 10,
    tasksPerInvocation: 1,
    startTimeoutMs: START,
    connectedForMs: Number.POSITIVE_INFINITY,
    ...over,
  };
}

const live = (counts: Partial<LiveCounts> = {}): LiveCounts => ({ created: 0, pending: 0, ready: 0, running: 0, ...counts });

interface PoolCase {
  name: string;
  input: Partial<PoolPlanInput>;
  expected: {
    dispatch: number;
    live: LiveCounts;
    orphanUnstarted?: number[];
    orphanSilent?: number[];
    terminate?: number[];
    reinvoke?: number[];
  };
}

describe('planPool', () => {
  describe('dispatch', () => {
    const cases: PoolCase[] = [
      {
        name: 'dispatches for the whole backlog of an empty active pool',
        input: { backlog: 4 },
        expected: { dispatch: 4, live: live() },
      },
      {
        name: 'counts only the invocations that survive the sweep',
        input: {
          backlog: 10,
          maxConcurrency: 4,
          invocations: [row(1, 'running', { heartbeatAt: NOW - HB }), row(2, 'created', { createdAt: NOW - START }), row(3, 'running')],
        },
        expected: { dispatch: 3, live: live({ running: 1 }), orphanSilent: [1], orphanUnstarted: [2] },
      },
      {
        name: 'replaces the supply of an orphaned queued invocation',
        input: {
          backlog: 2,
          invocations: [row(1, 'pending', { createdAt: NOW - START }), row(2, 'pending')],
        },
        expected: { dispatch: 1, live: live({ pending: 1 }), orphanUnstarted: [1] },
      },
      {
        name: 'dispatches nothing while the surviving queued supply covers the backlog',
        input: { backlog: 6, tasksPerInvocation: 3, invocations: [row(1, 'created'), row(2, 'ready')] },
        expected: { dispatch: 0, live: live({ created: 1, ready: 1 }) },
      },
      {
        name: 'invokes a stranded created invocation again instead of dispatching a new one',
        input: { backlog: 1, invocations: [row(1, 'created', { invokeAfter: NOW - 1 })] },
        expected: { dispatch: 0, live: live({ created: 1 }), reinvoke: [1] },
      },
      {
        name: 'dispatches nothing to a pool that stays over maxConcurrency after the scale-down',
        input: {
          backlog: 50,
          maxConcurrency: 2,
          invocations: [row(1, 'running'), row(2, 'running'), row(3, 'ready'), row(4, 'created')],
        },
        expected: { dispatch: 0, live: live({ running: 2, ready: 1 }), terminate: [4] },
      },
      {
        name: 'dispatches nothing to a pool the scale-down brings down to maxConcurrency',
        input: {
          backlog: 50,
          maxConcurrency: 2,
          invocations: [row(1, 'running'), row(2, 'created'), row(3, 'created'), row(4, 'pending')],
        },
        expected: { dispatch: 0, live: live({ running: 1, created: 1 }), terminate: [3, 4] },
      },
      {
        name: 'dispatches nothing when suspended, whatever the backlog',
        input: { mode: 'suspended', backlog: 50, invocations: [row(1, 'created'), row(2, 'running')] },
        expected: { dispatch: 0, live: live({ running: 1 }), terminate: [1] },
      },
      {
        name: 'dispatches nothing when deleting, whatever the backlog',
        input: { mode: 'deleting', backlog: 50, invocations: [row(1, 'created'), row(2, 'running')] },
        expected: { dispatch: 0, live: live(), terminate: [1, 2] },
      },
    ];

    for (const { name, input, expected } of cases) {
      it(name, () => {
        const plan = planPool(poolInput(input));
        expect({
          dispatch: plan.dispatch,
          live: plan.live,
          orphanUnstarted: [...plan.orphanUnstarted].sort(),
          orphanSilent: [...plan.orphanSilent].sort(),
          terminate: [...plan.terminate].sort(),
          reinvoke: [...plan.reinvoke].sort(),
        }).to.deep.equal({ orphanUnstarted: [], orphanSilent: [], terminate: [], reinvoke: [], ...expected });
        expect(plan.arithmetic.dispatch).to.equal(plan.dispatch);
      });
    }

    it('reports the arithmetic of the surviving invocations', () => {
      const plan = planPool(
        poolInput({
          backlog: 10,
          maxConcurrency: 6,
          tasksPerInvocation: 2,
          invocations: [row(1, 'created'), row(2, 'pending'), row(3, 'running'), row(4, 'ready', { heartbeatAt: NOW - HB })],
        }),
      );
      expect(plan.arithmetic).to.deep.equal({ dispatch: 3, queued: 2, supply: 4, want: 3, headroom: 3 });
    });
  });

  describe('requeueAfterMs', () => {
    const cases: { name: string; input: Partial<PoolPlanInput>; limits?: PoolPlanLimits; expected: number }[] = [
      {
        name: 'looks again after resyncMs when no invocation has a deadline',
        input: { backlog: 0 },
        expected: DEFAULT_PLAN_LIMITS.resyncMs,
      },
      {
        name: 'looks again at the next deadline when it comes before resyncMs',
        input: { invocations: [row(1, 'running', { heartbeatAt: NOW - HB + 7_000 })] },
        expected: 7_000,
      },
      {
        name: 'looks again at a future invokeAfter',
        input: { invocations: [row(1, 'created', { invokeAfter: NOW + 1_500 })] },
        expected: 1_500,
      },
      {
        name: 'looks again no later than resyncMs when the next deadline is further away',
        input: { invocations: [row(1, 'pending', { createdAt: NOW })] },
        limits: { resyncMs: 10_000, minRequeueMs: 200 },
        expected: 10_000,
      },
      {
        name: 'looks again no sooner than minRequeueMs when a deadline is imminent',
        input: { invocations: [row(1, 'running', { heartbeatAt: NOW - HB + 1 })] },
        expected: DEFAULT_PLAN_LIMITS.minRequeueMs,
      },
      {
        name: 'honours custom limits',
        input: { invocations: [row(1, 'running', { heartbeatAt: NOW - HB + 400 })] },
        limits: { resyncMs: 5_000, minRequeueMs: 1_000 },
        expected: 1_000,
      },
      {
        name: 'ignores the deadlines of invocations the sweep ends',
        input: {
          maxConcurrency: 1,
          invocations: [row(1, 'running', { heartbeatAt: NOW - HB + 9_000 }), row(2, 'created', { createdAt: NOW - START + 3_000 })],
        },
        expected: 9_000,
      },
      {
        name: 'looks again after resyncMs once a deleted pool has terminated everything',
        input: { mode: 'deleting', invocations: [row(1, 'running', { heartbeatAt: NOW - HB + 1 })] },
        expected: DEFAULT_PLAN_LIMITS.resyncMs,
      },
    ];

    for (const { name, input, limits, expected } of cases) {
      it(name, () => {
        expect(planPool(poolInput(input), limits).requeueAfterMs).to.equal(expected);
      });
    }
  });
});

describe('planPool after a permanent Invoke rejection', () => {
  const base = {
    now: 1_000_000,
    mode: 'active' as const,
    backlog: 30,
    invocations: [
      { id: 1, status: 'created' as const, createdAt: 990_000, invokeAfter: 995_000, heartbeatAt: null, heartbeatTimeoutMs: 120_000 },
    ],
    maxConcurrency: 10,
    tasksPerInvocation: 3,
    startTimeoutMs: 900_000,
    connectedForMs: Number.POSITIVE_INFINITY,
  };
  it('dispatches and re-invokes nothing until the backoff ends, and looks again when it does', () => {
    const plan = planPool({ ...base, blockedUntil: base.now + 4_000 });
    expect(plan.dispatch).to.equal(0);
    expect(plan.reinvoke).to.deep.equal([]);
    expect(plan.requeueAfterMs).to.equal(4_000);
  });
  it('dispatches as usual once the backoff has passed', () => {
    const plan = planPool({ ...base, blockedUntil: base.now - 1 });
    expect(plan.dispatch).to.equal(9);
    expect(plan.reinvoke).to.deep.equal([1]);
  });
});

describe('planPoolDispatch counts only what the database really ended', () => {
  const input = poolInput({
    backlog: 10,
    maxConcurrency: 2,
    invocations: [row(1, 'pending', { createdAt: NOW - START }), row(2, 'running')],
  });
  it('dispatches into the room an orphaned row left', () => {
    const sweep = planPoolSweep(input);
    expect(sweep.orphanUnstarted).to.deep.equal([1]);
    expect(planPoolDispatch(input, sweep, new Set([1])).dispatch).to.equal(1);
  });
  it('dispatches nothing when a worker claimed the row before the orphaning UPDATE reached it', () => {
    const sweep = planPoolSweep(input);
    const plan = planPoolDispatch(input, sweep, new Set());
    expect(plan.dispatch).to.equal(0);
    expect(plan.live).to.deep.equal(live({ pending: 1, running: 1 }));
  });
});

describe('planPool for a pool that keeps wasting invocations', () => {
  const wasted = (ago: number) => ({ finishedAt: NOW - ago, tasksStarted: 0, code: 'NoTimeToStart', message: 'no time' });
  const limits: PoolPlanLimits = { ...DEFAULT_PLAN_LIMITS, waste: { threshold: 3, initialBackoffMs: 10_000, maxBackoffMs: 60_000 } };
  it('dispatches nothing during the pause, says why, and looks again when it ends', () => {
    const plan = planPool(poolInput({ backlog: 9, recentOutcomes: [wasted(1_000), wasted(2_000), wasted(3_000)] }), limits);
    expect(plan).to.include({ dispatch: 0, limitedBy: 'wastePause', requeueAfterMs: 9_000 });
    expect(plan.waste).to.include({ wasting: true, streak: 3, code: 'NoTimeToStart' });
  });
  it('sends one probe after the pause, however large the backlog', () => {
    const plan = planPool(poolInput({ backlog: 9, recentOutcomes: [wasted(11_000), wasted(12_000), wasted(13_000)] }), limits);
    expect(plan).to.include({ dispatch: 1, limitedBy: 'wasteProbe' });
  });
  it('sends no second probe while the first is still live', () => {
    const plan = planPool(
      poolInput({ backlog: 9, invocations: [row(1, 'pending')], recentOutcomes: [wasted(11_000), wasted(12_000), wasted(13_000)] }),
      limits,
    );
    expect(plan).to.include({ dispatch: 0, limitedBy: 'wasteProbe' });
  });
  it('dispatches as usual again once an invocation starts a task', () => {
    const plan = planPool(
      poolInput({ backlog: 9, recentOutcomes: [{ ...wasted(500), tasksStarted: 1 }, wasted(1_000), wasted(2_000), wasted(3_000)] }),
      limits,
    );
    expect(plan.dispatch).to.equal(9);
    expect(plan.waste.wasting).to.equal(false);
  });
});

describe('planPool with delayed tasks', () => {
  it('looks again when the next delayed task becomes due', () => {
    expect(planPool(poolInput({ nextDueAt: NOW + 7_000 })).requeueAfterMs).to.equal(7_000);
  });
  it('does not wake a suspended pool for a delayed task', () => {
    expect(planPool(poolInput({ mode: 'suspended', nextDueAt: NOW + 7_000 })).requeueAfterMs).to.equal(DEFAULT_PLAN_LIMITS.resyncMs);
  });
});
