// One pass's decision for one pool, in two steps around the sweep's writes:
//   planPoolSweep: what to orphan, terminate and invoke again;
//   planPoolDispatch: how many to dispatch, counting as ended only the rows the database really ended.
// A worker may claim a row between the read and the orphaning UPDATE; that row stays live, and counting
// it as gone would break maxConcurrency. The reconciler gathers the inputs and carries the plan out.
import { emptyLiveCounts, planDispatch, type DispatchDecision, type LiveCounts } from './dispatch.ts';
import { planSweep, type LiveInvocationView, type PoolMode, type SweepDecision } from './sweep.ts';
import { DEFAULT_WASTE_POLICY, wasteState, type FinishedOutcome, type WastePolicy, type WasteState } from './waste.ts';

export interface PoolPlanInput {
  now: number;
  mode: PoolMode;
  /** Due created tasks, counted no further than backlogCountLimit(). */
  backlog: number;
  invocations: readonly LiveInvocationView[];
  maxConcurrency: number;
  tasksPerInvocation: number;
  startTimeoutMs: number;
  /** See SweepInput.connectedForMs. */
  connectedForMs: number;
  /** Nothing is dispatched or invoked again before this (a permanent Invoke rejection, a queue conflict). */
  blockedUntil?: number;
  blockedBy?: 'rejection' | 'conflict';
  /** The pool's latest invocations a worker finished, newest first (for the waste backoff). */
  recentOutcomes?: readonly FinishedOutcome[];
  /** When the next delayed task of the queue becomes due, if one is waiting. */
  nextDueAt?: number;
}

export interface PoolPlanLimits {
  /** Look again at least this often, even when nothing is due. */
  resyncMs: number;
  /** Never look again sooner than this. */
  minRequeueMs: number;
  waste?: WastePolicy;
}

/** Why fewer invocations were dispatched than the arithmetic allowed. */
export type DispatchLimit = 'suspended' | 'deleting' | 'rejection' | 'conflict' | 'wastePause' | 'wasteProbe';

export interface PoolPlan {
  orphanUnstarted: number[];
  orphanSilent: number[];
  terminate: number[];
  reinvoke: number[];
  dispatch: number;
  arithmetic: DispatchDecision;
  limitedBy?: DispatchLimit;
  waste: WasteState;
  /** Live invocations by state once the sweep is done, before the dispatch. */
  live: LiveCounts;
  requeueAfterMs: number;
}

export const DEFAULT_PLAN_LIMITS: PoolPlanLimits = { resyncMs: 30_000, minRequeueMs: 200 };

function isBlocked(input: PoolPlanInput): boolean {
  return input.blockedUntil !== undefined && input.now < input.blockedUntil;
}

/** Step 1: the sweep. While dispatch is blocked, nothing is invoked again either. */
export function planPoolSweep(input: PoolPlanInput): SweepDecision {
  const sweep = planSweep(input);
  return isBlocked(input) ? { ...sweep, reinvoke: [] } : sweep;
}

/**
 * Step 2: the dispatch, once the sweep's UPDATEs have run. `ended` holds the ids the database really
 * ended; every other row read at the start of the pass is still live, whatever the sweep meant to do.
 */
export function planPoolDispatch(
  input: PoolPlanInput,
  sweep: SweepDecision,
  ended: ReadonlySet<number>,
  limits: PoolPlanLimits = DEFAULT_PLAN_LIMITS,
): PoolPlan {
  const live: LiveCounts = emptyLiveCounts();
  for (const inv of input.invocations) if (!ended.has(inv.id)) live[inv.status] += 1;
  const arithmetic = planDispatch({
    backlog: input.backlog,
    live,
    maxConcurrency: input.maxConcurrency,
    tasksPerInvocation: input.tasksPerInvocation,
  });
  const waste = wasteState(input.recentOutcomes ?? [], limits.waste ?? DEFAULT_WASTE_POLICY);
  const liveTotal = live.created + live.pending + live.ready + live.running;

  let dispatch = arithmetic.dispatch;
  let limitedBy: DispatchLimit | undefined;
  const deadlines: number[] = [];
  if (sweep.nextDeadline !== undefined) deadlines.push(sweep.nextDeadline);
  if (input.mode !== 'active') {
    dispatch = 0;
    limitedBy = input.mode;
  } else if (isBlocked(input) && input.blockedUntil !== undefined) {
    dispatch = 0;
    limitedBy = input.blockedBy ?? 'rejection';
    deadlines.push(input.blockedUntil);
  } else if (waste.wasting && input.now < waste.pausedUntil) {
    dispatch = 0;
    limitedBy = 'wastePause';
    deadlines.push(waste.pausedUntil);
  } else if (waste.wasting) {
    // One probe at a time: a new one only once the previous has finished.
    const probe = liveTotal === 0 ? Math.min(1, dispatch) : 0;
    if (probe < dispatch) limitedBy = 'wasteProbe';
    dispatch = probe;
  }
  if (input.mode === 'active' && input.nextDueAt !== undefined) deadlines.push(input.nextDueAt);

  const untilDeadline = deadlines.length === 0 ? limits.resyncMs : Math.min(...deadlines) - input.now;
  const requeueAfterMs = Math.max(limits.minRequeueMs, Math.min(limits.resyncMs, untilDeadline));
  return {
    orphanUnstarted: sweep.orphanUnstarted,
    orphanSilent: sweep.orphanSilent,
    terminate: sweep.terminate,
    reinvoke: sweep.reinvoke,
    dispatch,
    arithmetic: { ...arithmetic, dispatch },
    ...(limitedBy ? { limitedBy } : {}),
    waste,
    live,
    requeueAfterMs,
  };
}

/** Both steps, as if the database ended every row the sweep meant to end (the common case). */
export function planPool(input: PoolPlanInput, limits: PoolPlanLimits = DEFAULT_PLAN_LIMITS): PoolPlan {
  const sweep = planPoolSweep(input);
  const ended = new Set([...sweep.orphanUnstarted, ...sweep.orphanSilent, ...sweep.terminate]);
  return planPoolDispatch(input, sweep, ended, limits);
}
