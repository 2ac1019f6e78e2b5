// Why a pass did what it did, in one sentence a user can read in `kubectl describe` or the trace.
// Pure: from the plan, the pass's counts and the pool's settings.
import type { PoolPlan } from './pool-plan.ts';
import { plural } from '../ops/plural.ts';

export interface PassFacts {
  plan: PoolPlan;
  backlog: number;
  /** The backlog count stopped at its limit: there may be more. */
  backlogCapped: boolean;
  maxConcurrency: number;
  tasksPerInvocation: number;
  startTimeoutSeconds: number;
  heartbeatTimeoutSeconds: number;
  /** Rows the sweep really ended (the database may have refused some the plan named). */
  orphanedUnstarted: number;
  orphanedSilent: number;
  terminated: number;
  mode: 'active' | 'suspended' | 'deleting';
  releasedTasks: number;
  failedTasks: number;
}

const LIMITS: Record<NonNullable<PoolPlan['limitedBy']>, string> = {
  suspended: 'the pool is suspended',
  deleting: 'the pool is being deleted',
  rejection: 'Lambda refused the last invoke (see the Ready condition); dispatching waits',
  conflict: 'the pool may not serve its queue (see the Ready condition)',
  wastePause: 'recent invocations started no task (waste backoff); dispatching is paused',
  wasteProbe: 'recent invocations started no task (waste backoff); one invocation at a time until one starts a task',
};

export function explainPass(f: PassFacts): string {
  const a = f.plan.arithmetic;
  const parts: string[] = [];
  const live = f.plan.live;
  if (f.orphanedUnstarted > 0) parts.push(`orphaned ${f.orphanedUnstarted} that did not start within ${f.startTimeoutSeconds}s`);
  if (f.orphanedSilent > 0) parts.push(`orphaned ${f.orphanedSilent} with no heartbeat for ${f.heartbeatTimeoutSeconds}s`);
  if (f.terminated > 0) {
    const why =
      f.mode === 'deleting' ? 'the pool is being deleted' : f.mode === 'suspended' ? 'the pool is suspended' : 'maxConcurrency was lowered';
    parts.push(`terminated ${plural(f.terminated, 'queued invocation')} (${why})`);
  }
  if (f.releasedTasks + f.failedTasks > 0) {
    parts.push(
      `gave back ${plural(f.releasedTasks, 'task')} their ended invocations held` +
        (f.failedTasks > 0 ? ` (${f.failedTasks} out of attempts, failed)` : ''),
    );
  }
  if (f.plan.reinvoke.length > 0) parts.push(`invoked ${plural(f.plan.reinvoke.length, 'recorded invocation')} again`);

  const backlog = `${f.backlogCapped ? 'at least ' : ''}${plural(f.backlog, 'task')}`;
  const k = f.tasksPerInvocation;
  const covered = a.supply > 0 ? `; ${plural(a.queued + live.ready, 'invocation')} queued or starting will take ${a.supply}` : '';
  const need = `backlog of ${backlog}${covered}; ${a.want} more wanted at ${plural(k, 'task')} each`;
  const room = `${Math.max(0, a.headroom)} of maxConcurrency ${f.maxConcurrency} free (${live.running} running, ${live.ready} starting, ${a.queued} queued)`;
  if (f.plan.limitedBy) {
    parts.push(`dispatched ${a.dispatch}: ${LIMITS[f.plan.limitedBy]}; ${need}`);
  } else if (a.dispatch > 0) {
    const capped = a.dispatch < a.want ? ' (capped by maxConcurrency)' : '';
    parts.push(`dispatched ${a.dispatch}${capped}: ${need}; ${room}`);
  } else if (a.want > 0) {
    parts.push(`dispatched 0: ${need}, but ${room}`);
  }
  return parts.join('; ') || 'nothing to do';
}
