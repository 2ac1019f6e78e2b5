// The dispatch pass against workers racing it, in every order fast-check's scheduler can find. A model
// of the pool's rows stands in for the database; each statement of the pass and each worker's claim is
// one scheduled step, so any claim may land between the pass's read and its orphaning UPDATE. The
// pass's decisions are the real planner's (planPoolSweep, then planPoolDispatch).
import { expect } from 'chai';
import fc from 'fast-check';
import type { InvocationState, LiveInvocationState } from '../../src/api/types.ts';
import { planPoolDispatch, planPoolSweep, type PoolPlanInput } from '../../src/planner/pool-plan.ts';
import type { LiveInvocationView } from '../../src/planner/sweep.ts';

const NOW = 10_000_000;
const START = 10_000;
const HB = 5_000;
const LIVE: readonly InvocationState[] = ['created', 'pending', 'ready', 'running'];

interface ModelRow {
  id: number;
  status: InvocationState;
  createdAt: number;
  heartbeatAt: number | null;
}

const rowArb = fc.record({
  status: fc.constantFrom<LiveInvocationState>('created', 'pending', 'ready', 'running'),
  /** Past its deadline (start or heartbeat): the sweep means to end it. */
  expired: fc.boolean(),
  /** A worker claims it (queued rows) or finishes it (started rows) while the pass runs. */
  workerActs: fc.boolean(),
});

const scenarioArb = fc.record({
  rows: fc.array(rowArb, { maxLength: 8 }),
  maxConcurrency: fc.integer({ min: 1, max: 8 }),
  backlog: fc.nat(30),
  tasksPerInvocation: fc.integer({ min: 1, max: 3 }),
  /** A pool being scaled down: the sweep also means to terminate queued rows over the cap. */
  scaleDown: fc.boolean(),
});

type Scenario = typeof scenarioArb extends fc.Arbitrary<infer T> ? T : never;

function modelRows(s: Scenario): ModelRow[] {
  return s.rows.map((r, i) => {
    const queued = r.status === 'created' || r.status === 'pending';
    return {
      id: i + 1,
      status: r.status,
      createdAt: queued && r.expired ? NOW - START : NOW - 1_000,
      heartbeatAt: queued ? null : r.expired ? NOW - HB : NOW,
    };
  });
}

const liveCount = (rows: readonly ModelRow[]) => rows.filter((r) => LIVE.includes(r.status)).length;

/**
 * One pass and its racing workers. `countEnded`: what the pass counts as gone when it decides the dispatch
 * (the real rows it ended, or every row it meant to end). Returns the most rows ever live at once.
 */
async function race(s: Scenario, scheduler: fc.Scheduler, countEnded: 'really' | 'meant'): Promise<{ peak: number; cap: number }> {
  const rows = modelRows(s);
  const cap = s.scaleDown ? Math.max(0, liveCount(rows) - 1) : s.maxConcurrency;
  let peak = liveCount(rows);
  const step = <T>(label: string, fn: () => T): Promise<T> => scheduler.schedule(Promise.resolve(label)).then(fn);

  const workers = s.rows.flatMap((r, i) => {
    const row = rows[i];
    if (!r.workerActs || !row) return [];
    // The worker's compare-and-set claim (created|pending -> ready), or its finish (running -> succeeded).
    return [
      step(`worker ${row.id}`, () => {
        if (row.status === 'created' || row.status === 'pending') row.status = 'ready';
        else if (row.status === 'running') row.status = 'succeeded';
      }),
    ];
  });

  const pass = (async () => {
    const snapshot = await step('read live rows', () => rows.filter((r) => LIVE.includes(r.status)).map((r) => ({ ...r })));
    const input: PoolPlanInput = {
      now: NOW,
      mode: 'active',
      backlog: s.backlog,
      invocations: snapshot.map((r): LiveInvocationView => ({
        id: r.id,
        status: r.status as LiveInvocationState,
        createdAt: r.createdAt,
        invokeAfter: NOW + 60_000,
        heartbeatAt: r.heartbeatAt,
        heartbeatTimeoutMs: HB,
      })),
      maxConcurrency: cap,
      tasksPerInvocation: s.tasksPerInvocation,
      startTimeoutMs: START,
      connectedForMs: Number.POSITIVE_INFINITY,
    };
    const sweep = planPoolSweep(input);
    // Each UPDATE changes a row only from the states it names, as endInvocations does.
    const endFrom = async (ids: number[], from: InvocationState[], to: InvocationState): Promise<number[]> =>
      step(`end ${ids.join(',')} as ${to}`, () =>
        rows
          .filter((r) => ids.includes(r.id) && from.includes(r.status))
          .map((r) => {
            r.status = to;
            return r.id;
          }),
      );
    const ended = [
      ...(await endFrom(sweep.orphanUnstarted, ['created', 'pending'], 'orphaned')),
      ...(await endFrom(sweep.orphanSilent, ['ready', 'running'], 'orphaned')),
      ...(await endFrom(sweep.terminate, ['created', 'pending'], 'terminated')),
    ];
    const meant = [...sweep.orphanUnstarted, ...sweep.orphanSilent, ...sweep.terminate];
    const plan = planPoolDispatch(input, sweep, new Set(countEnded === 'really' ? ended : meant));
    await step(`insert ${plan.dispatch}`, () => {
      for (let k = 0; k < plan.dispatch; k += 1) rows.push({ id: 100 + k, status: 'created', createdAt: NOW, heartbeatAt: null });
      peak = Math.max(peak, liveCount(rows));
    });
  })();

  await scheduler.waitFor(Promise.all([pass, ...workers]));
  return { peak, cap };
}

describe('the dispatch pass under racing workers (fast-check scheduler)', () => {
  it('never has more live invocations than maxConcurrency, in any order of claims, finishes and sweep UPDATEs', async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb, fc.scheduler(), async (s, scheduler) => {
        fc.pre(s.scaleDown || modelRows(s).length <= s.maxConcurrency);
        const before = liveCount(modelRows(s));
        const { peak, cap } = await race(s, scheduler, 'really');
        // Only the pass adds rows, and it adds none beyond the cap; rows already over it (a scale-down) may stay.
        expect(peak).to.be.at.most(Math.max(cap, before));
        if (before <= cap) expect(peak).to.be.at.most(cap);
      }),
      { seed: 0x1a7e_c0de, numRuns: 400 },
    );
  });

  it('finds an order that overruns maxConcurrency when the pass counts the rows it meant to end (the old rule)', async () => {
    let overran = false;
    await fc.assert(
      fc.asyncProperty(scenarioArb, fc.scheduler(), async (s, scheduler) => {
        fc.pre(!s.scaleDown && modelRows(s).length <= s.maxConcurrency);
        const { peak, cap } = await race(s, scheduler, 'meant');
        if (peak > cap) overran = true;
      }),
      { seed: 0x1a7e_c0de, numRuns: 400 },
    );
    expect(overran, 'the model should expose the race the issue describes').to.equal(true);
  });
});
