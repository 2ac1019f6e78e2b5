// One pass's decision for one pool: what to sweep, how many to dispatch, when to look again.
// The reconciler gathers the inputs, calls planPool, and carries the plan out.
import { emptyLiveCounts, planDispatch, type DispatchDecision, type LiveCounts } from './dispatch.ts';
import { planSweep, type LiveInvocationView, type PoolMode } from './sweep.ts';

export interface PoolPlanInput {
  now: number;
  mode: PoolMode;
  backlog: number;
  invocations: readonly LiveInvocationView[];
  maxConcurrency: number;
  tasksPerInvocation: number;
  startTimeoutMs: number;
  heartbeatTimeoutMs: number;
  /** After a permanent Invoke rejection: until then nothing is dispatched or invoked again. */
  blockedUntil?: number;
}

export interface PoolPlanLimits {
  /** Look again at least this often, even when nothing is due. */
  resyncMs: number;
  /** Never look again sooner than this. */
  minRequeueMs: number;
}

export interface PoolPlan {
  orphanUnstarted: number[];
  orphanSilent: number[];
  terminate: number[];
  reinvoke: number[];
  dispatch: number;
  arithmetic: DispatchDecision;
  /** Live invocations by state once the sweep is done, before the dispatch. */
  live: LiveCounts;
  requeueAfterMs: number;
}

export const DEFAULT_PLAN_LIMITS: PoolPlanLimits = { resyncMs: 30_000, minRequeueMs: 200 };

export function planPool(input: PoolPlanInput, limits: PoolPlanLimits = DEFAULT_PLAN_LIMITS): PoolPlan {
  const sweep = planSweep(input);
  const live: LiveCounts = emptyLiveCounts();
  for (const inv of sweep.remaining) live[inv.status] += 1;
  const arithmetic = planDispatch({
    backlog: input.backlog,
    live,
    maxConcurrency: input.maxConcurrency,
    tasksPerInvocation: input.tasksPerInvocation,
  });
  const blocked = input.blockedUntil !== undefined && input.now < input.blockedUntil;
  const dispatch = input.mode === 'active' && !blocked ? arithmetic.dispatch : 0;
  const deadlines = [sweep.nextDeadline, blocked ? input.blockedUntil : undefined].filter((d): d is number => d !== undefined);
  const untilDeadline = deadlines.length === 0 ? limits.resyncMs : Math.min(...deadlines) - input.now;
  const requeueAfterMs = Math.max(limits.minRequeueMs, Math.min(limits.resyncMs, untilDeadline));
  return {
    orphanUnstarted: sweep.orphanUnstarted,
    orphanSilent: sweep.orphanSilent,
    terminate: sweep.terminate,
    reinvoke: blocked ? [] : sweep.reinvoke,
    dispatch,
    arithmetic: { ...arithmetic, dispatch },
    live,
    requeueAfterMs,
  };
}
