import { expect } from 'chai';
import fc from 'fast-check';
import { LIVE_INVOCATION_STATES } from '../../src/api/types.ts';
import { backlogCountLimit, planDispatch, type LiveCounts } from '../../src/planner/dispatch.ts';
import { planPool, type PoolPlan, type PoolPlanInput } from '../../src/planner/pool-plan.ts';
import { planSweep, type LiveInvocationView, type PoolMode } from '../../src/planner/sweep.ts';

// A fixed seed makes every failure reproduce; change it (or drop it) locally to explore further.
const RUNS = { seed: 0x7a5c_9001, numRuns: 500 } as const;

const MODES: readonly PoolMode[] = ['active', 'suspended', 'deleting'];

const liveCountsArb: fc.Arbitrary<LiveCounts> = fc.record({
  created: fc.nat(8),
  pending: fc.nat(8),
  ready: fc.nat(8),
  running: fc.nat(8),
});

const dispatchInputArb = fc.record({
  backlog: fc.nat(100),
  live: liveCountsArb,
  maxConcurrency: fc.nat(16),
  tasksPerInvocation: fc.integer({ min: 1, max: 5 }),
});

/** A live row, with its times as offsets from `now` (filled in by poolArb). */
const rowArb = fc.record({
  id: fc.integer({ min: 1, max: 500 }),
  status: fc.constantFrom(...LIVE_INVOCATION_STATES),
  createdAgo: fc.nat(30_000),
  invokeAfterIn: fc.integer({ min: -10_000, max: 10_000 }),
  heartbeatAgo: fc.option(fc.nat(30_000), { nil: null }),
});

const poolArb: fc.Arbitrary<PoolPlanInput> = fc
  .record({
    now: fc.integer({ min: 1_000_000, max: 1_000_000_000 }),
    mode: fc.constantFrom(...MODES),
    backlog: fc.nat(60),
    rows: fc.uniqueArray(rowArb, { maxLength: 14, selector: (r) => r.id }),
    maxConcurrency: fc.nat(10),
    tasksPerInvocation: fc.integer({ min: 1, max: 4 }),
    startTimeoutMs: fc.integer({ min: 1, max: 20_000 }),
    heartbeatTimeoutMs: fc.integer({ min: 1, max: 20_000 }),
    connectedForMs: fc.oneof(fc.constant(Number.POSITIVE_INFINITY), fc.nat(30_000)),
  })
  .map(({ rows, heartbeatTimeoutMs, ...pool }) => ({
    ...pool,
    invocations: rows.map((r): LiveInvocationView => ({
      id: r.id,
      status: r.status,
      createdAt: pool.now - r.createdAgo,
      invokeAfter: pool.now + r.invokeAfterIn,
      // Only a started invocation sends heartbeats.
      heartbeatAt: (r.status === 'ready' || r.status === 'running') && r.heartbeatAgo !== null ? pool.now - r.heartbeatAgo : null,
      heartbeatTimeoutMs,
    })),
  }));

const activePoolArb = poolArb.map((p) => ({ ...p, mode: 'active' as const }));

/** An active pool holding more live invocations than maxConcurrency, all inside their deadlines. */
const scaledDownPoolArb: fc.Arbitrary<PoolPlanInput> = fc
  .record({
    now: fc.integer({ min: 1_000_000, max: 1_000_000_000 }),
    backlog: fc.nat(60),
    maxConcurrency: fc.nat(8),
    over: fc.integer({ min: 1, max: 6 }),
    tasksPerInvocation: fc.integer({ min: 1, max: 4 }),
    startTimeoutMs: fc.integer({ min: 1_000, max: 20_000 }),
    heartbeatTimeoutMs: fc.integer({ min: 1_000, max: 20_000 }),
  })
  .chain(({ over, heartbeatTimeoutMs, ...pool }) =>
    fc
      .uniqueArray(
        fc.record({
          id: fc.integer({ min: 1, max: 500 }),
          status: fc.constantFrom(...LIVE_INVOCATION_STATES),
          age: fc.nat(999),
          invokeAfterIn: fc.integer({ min: -10_000, max: 10_000 }),
        }),
        { minLength: pool.maxConcurrency + over, maxLength: pool.maxConcurrency + over, selector: (r) => r.id },
      )
      .map((rows) => ({
        ...pool,
        mode: 'active' as const,
        connectedForMs: Number.POSITIVE_INFINITY,
        invocations: rows.map((r) => ({
          id: r.id,
          status: r.status,
          createdAt: pool.now - r.age,
          invokeAfter: pool.now + r.invokeAfterIn,
          heartbeatAt: null,
          heartbeatTimeoutMs,
        })),
      })),
  );

const total = (c: LiveCounts): number => c.created + c.pending + c.ready + c.running;

/** What the reconciler does with a plan, in the database: end rows, invoke, insert the new ones. */
function apply(input: PoolPlanInput, plan: PoolPlan, graceMs: number): PoolPlanInput {
  const ended = new Set([...plan.orphanUnstarted, ...plan.orphanSilent, ...plan.terminate]);
  const reinvoked = new Set(plan.reinvoke);
  const kept = input.invocations
    .filter((i) => !ended.has(i.id))
    .map((i) => (reinvoked.has(i.id) ? { ...i, invokeAfter: input.now + graceMs } : i));
  const firstId = Math.max(0, ...input.invocations.map((i) => i.id)) + 1;
  const inserted = Array.from({ length: plan.dispatch }, (_, k): LiveInvocationView => ({
    id: firstId + k,
    status: 'created',
    createdAt: input.now,
    invokeAfter: input.now + graceMs,
    heartbeatAt: null,
    heartbeatTimeoutMs: 5_000,
  }));
  return { ...input, invocations: [...kept, ...inserted] };
}

describe('planner properties', () => {
  describe('concurrency', () => {
    it('keeps live-after-sweep + dispatch within maxConcurrency for a pool that was within it', () => {
      fc.assert(
        fc.property(poolArb, (input) => {
          fc.pre(input.invocations.length <= input.maxConcurrency);
          const plan = planPool(input);
          expect(total(plan.live) + plan.dispatch).to.be.at.most(input.maxConcurrency);
        }),
        RUNS,
      );
    });

    it('dispatches nothing to a scaled-down pool still at or over maxConcurrency after the sweep', () => {
      fc.assert(
        fc.property(poolArb, (input) => {
          const plan = planPool(input);
          if (total(plan.live) >= input.maxConcurrency) expect(plan.dispatch).to.equal(0);
          // A dispatch, when there is one, fits under maxConcurrency.
          if (plan.dispatch > 0) expect(total(plan.live) + plan.dispatch).to.be.at.most(input.maxConcurrency);
        }),
        RUNS,
      );
    });

    it('dispatches nothing when live > maxConcurrency and nothing was orphaned', () => {
      fc.assert(
        fc.property(scaledDownPoolArb, (input) => {
          const plan = planPool(input);
          expect(plan.orphanUnstarted.length + plan.orphanSilent.length).to.equal(0);
          expect(plan.dispatch).to.equal(0);
          expect(total(plan.live)).to.be.at.least(input.maxConcurrency);
        }),
        RUNS,
      );
    });

    it('leaves a pool over maxConcurrency after the scale-down only with started invocations', () => {
      fc.assert(
        fc.property(activePoolArb, (input) => {
          const { live } = planPool(input);
          if (total(live) > input.maxConcurrency) expect(live.created + live.pending).to.equal(0);
        }),
        RUNS,
      );
    });
  });

  describe('dispatch arithmetic', () => {
    it('dispatches nothing while the supply already covers the backlog', () => {
      fc.assert(
        fc.property(dispatchInputArb, (input) => {
          const { created, pending, ready } = input.live;
          fc.pre((created + pending + ready) * input.tasksPerInvocation >= input.backlog);
          expect(planDispatch(input).dispatch).to.equal(0);
        }),
        RUNS,
      );
      fc.assert(
        fc.property(poolArb, (input) => {
          const plan = planPool(input);
          const { created, pending, ready } = plan.live;
          if ((created + pending + ready) * input.tasksPerInvocation >= input.backlog) expect(plan.dispatch).to.equal(0);
        }),
        RUNS,
      );
    });

    it('never dispatches an invocation beyond what the backlog needs', () => {
      const overProvisions = (live: LiveCounts, dispatch: number, tpi: number, backlog: number): boolean =>
        dispatch > 0 && (live.created + live.pending + live.ready + dispatch - 1) * tpi >= backlog;
      fc.assert(
        fc.property(dispatchInputArb, (input) => {
          const { dispatch } = planDispatch(input);
          expect(overProvisions(input.live, dispatch, input.tasksPerInvocation, input.backlog)).to.equal(false);
        }),
        RUNS,
      );
      fc.assert(
        fc.property(poolArb, (input) => {
          const plan = planPool(input);
          expect(overProvisions(plan.live, plan.dispatch, input.tasksPerInvocation, input.backlog)).to.equal(false);
        }),
        RUNS,
      );
    });

    it('dispatches min(want, headroom) exactly: enough for the backlog unless the pool is full', () => {
      fc.assert(
        fc.property(dispatchInputArb, (input) => {
          const { dispatch } = planDispatch(input);
          const { created, pending, ready, running } = input.live;
          const supplied = (created + pending + ready + dispatch) * input.tasksPerInvocation >= input.backlog;
          const full = created + pending + ready + running + dispatch >= input.maxConcurrency;
          expect(supplied || full).to.equal(true);
        }),
        RUNS,
      );
    });

    it('gives the same dispatch for a backlog capped at backlogCountLimit', () => {
      fc.assert(
        fc.property(dispatchInputArb, fc.nat(1_000_000), (input, hugeBacklog) => {
          const backlog = input.backlog + hugeBacklog;
          const limit = backlogCountLimit(input);
          expect(planDispatch({ ...input, backlog: Math.min(backlog, limit) }).dispatch).to.equal(
            planDispatch({ ...input, backlog }).dispatch,
          );
        }),
        RUNS,
      );
    });
  });

  describe('idempotence and purity', () => {
    it('plans nothing new when run again at the same moment after its plan was carried out (as after a crash)', () => {
      fc.assert(
        fc.property(poolArb, fc.integer({ min: 1, max: 60_000 }), (input, graceMs) => {
          const first = planPool(input);
          const second = planPool(apply(input, first, graceMs));
          expect(second.dispatch).to.equal(0);
          expect(second.orphanUnstarted).to.deep.equal([]);
          expect(second.orphanSilent).to.deep.equal([]);
          expect(second.terminate).to.deep.equal([]);
          expect(second.reinvoke).to.deep.equal([]);
          expect(total(second.live)).to.equal(total(first.live) + first.dispatch);
        }),
        RUNS,
      );
    });

    it('returns deep-equal plans for the same input and leaves the input untouched', () => {
      fc.assert(
        fc.property(poolArb, (input) => {
          const before = structuredClone(input);
          const a = planPool(input);
          const b = planPool(input);
          expect(a).to.deep.equal(b);
          expect(input).to.deep.equal(before);
        }),
        RUNS,
      );
    });

    it('always asks to look again within [minRequeueMs, resyncMs]', () => {
      const limits = { resyncMs: 30_000, minRequeueMs: 200 };
      fc.assert(
        fc.property(poolArb, (input) => {
          const { requeueAfterMs } = planPool(input, limits);
          expect(requeueAfterMs).to.be.within(limits.minRequeueMs, limits.resyncMs);
        }),
        RUNS,
      );
    });
  });

  describe('sweep', () => {
    it('puts every live invocation in exactly one of orphanUnstarted, orphanSilent, terminate and remaining', () => {
      fc.assert(
        fc.property(poolArb, (input) => {
          const sweep = planSweep(input);
          const placed = [...sweep.orphanUnstarted, ...sweep.orphanSilent, ...sweep.terminate, ...sweep.remaining.map((i) => i.id)].sort(
            (a, b) => a - b,
          );
          expect(placed).to.deep.equal(input.invocations.map((i) => i.id).sort((a, b) => a - b));
        }),
        RUNS,
      );
    });

    it('reinvokes only remaining created invocations whose invokeAfter has come', () => {
      fc.assert(
        fc.property(poolArb, (input) => {
          const sweep = planSweep(input);
          const remaining = new Map(sweep.remaining.map((i) => [i.id, i]));
          for (const id of sweep.reinvoke) {
            const inv = remaining.get(id);
            expect(inv?.status, `reinvoked ${id}`).to.equal('created');
            expect(inv?.invokeAfter).to.be.at.most(input.now);
          }
          const due = sweep.remaining.filter((i) => i.status === 'created' && i.invokeAfter <= input.now);
          expect(new Set(sweep.reinvoke)).to.deep.equal(new Set(due.map((i) => i.id)));
        }),
        RUNS,
      );
    });

    it('names as next deadline the earliest future deadline of a remaining invocation', () => {
      fc.assert(
        fc.property(poolArb, (input) => {
          const sweep = planSweep(input);
          const deadlines = sweep.remaining.flatMap((i) => {
            const started = i.status === 'ready' || i.status === 'running';
            const silentUntil = (i.heartbeatAt ?? i.createdAt) + i.heartbeatTimeoutMs;
            const connectedUntil = input.now + Math.max(0, i.heartbeatTimeoutMs - input.connectedForMs);
            const own = started ? Math.max(silentUntil, connectedUntil) : i.createdAt + input.startTimeoutMs;
            return i.status === 'created' && i.invokeAfter > input.now ? [own, i.invokeAfter] : [own];
          });
          expect(sweep.nextDeadline).to.equal(deadlines.length > 0 ? Math.min(...deadlines) : undefined);
          if (sweep.nextDeadline !== undefined) expect(sweep.nextDeadline).to.be.above(input.now);
        }),
        RUNS,
      );
    });
  });
});
