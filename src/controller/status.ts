// The pool's status, rebuilt from the world on every pass: counts from Postgres rows, conditions from
// those counts and the recent trouble recorded on the rows. Pure: the reconciler passes the facts in.
import { ConditionType, isoSeconds, mergeConditions, Reason, type ConditionInput } from '../api/conditions.ts';
import { plural } from '../ops/plural.ts';
import {
  INVOCATION_STATES,
  TASK_STATES,
  type InvocationState,
  type PoolSpec,
  type PoolStatus,
  type StateCounts,
  type TaskState,
} from '../api/types.ts';
import { ACCESS_DENIED_CODES, FUNCTION_MISSING_CODES } from '../lambda/errors.ts';
import type { WasteState } from '../planner/waste.ts';
import type { RecentTrouble } from '../store/invocation-store.ts';

export interface PoolFacts {
  now: Date;
  generation: number;
  spec: PoolSpec;
  database: string;
  invocations: StateCounts<InvocationState>;
  tasks: StateCounts<TaskState>;
  trouble: RecentTrouble;
  /** Whether the pool keeps wasting invocations, from this pass's plan. */
  waste?: WasteState;
  /** The window `trouble` covers. */
  troubleWindowSeconds: number;
  /** Set when this pass dispatched invocations. */
  dispatchedAt?: Date;
}

export function desiredConditions(facts: PoolFacts): ConditionInput[] {
  const { invocations: inv, tasks, trouble, spec } = facts;
  const rejection = trouble.rejection;
  let ready: ConditionInput;
  if (rejection) {
    const reason = FUNCTION_MISSING_CODES.has(rejection.code)
      ? Reason.FunctionNotFound
      : ACCESS_DENIED_CODES.has(rejection.code)
        ? Reason.AccessDenied
        : Reason.InvokeRejected;
    ready = {
      type: ConditionType.Ready,
      status: 'False',
      reason,
      message: `Lambda refused to invoke ${spec.function.name}: ${rejection.code}: ${rejection.message}`,
    };
  } else {
    ready = {
      type: ConditionType.Ready,
      status: 'True',
      reason: Reason.Reconciled,
      message: `serving queue ${spec.queue} from ${facts.database} with ${spec.function.name}`,
    };
  }

  const queued = inv.created + inv.pending;
  const inFlight = queued + inv.ready + inv.running;
  const active: ConditionInput =
    inFlight > 0 || tasks.created > 0
      ? {
          type: ConditionType.Active,
          status: 'True',
          reason: Reason.WorkInFlight,
          message: `${inv.running} running, ${inv.ready} starting, ${queued} queued; ${plural(tasks.created, 'task')} waiting, ${tasks.leased} leased`,
        }
      : { type: ConditionType.Active, status: 'False', reason: Reason.Idle, message: 'no tasks waiting and no invocation in flight' };

  let degraded: ConditionInput = {
    type: ConditionType.Degraded,
    status: 'False',
    reason: Reason.AsExpected,
    message: 'no recent invoke errors or orphans',
  };
  const waste = facts.waste;
  if (waste?.wasting) {
    const tooShort = waste.code === 'NoTimeToStart';
    degraded = {
      type: ConditionType.Degraded,
      status: 'True',
      reason: tooShort ? Reason.FunctionTimeoutTooShort : Reason.InvocationsWasted,
      message:
        `the last ${plural(waste.streak, 'invocation')} of ${spec.function.name} started no task (${waste.code ?? 'no code'}: ${waste.message ?? 'no message'}); ` +
        `dispatching paused until ${isoSeconds(new Date(waste.pausedUntil))}, then one invocation at a time until one starts a task`,
    };
  } else if (trouble.deferred) {
    const throttled = trouble.deferred.code === 'TooManyRequestsException';
    degraded = {
      type: ConditionType.Degraded,
      status: 'True',
      reason: throttled ? Reason.Throttled : Reason.InvokeErrors,
      message: `${plural(trouble.deferred.count, 'invocation waits', 'invocations wait')} to be invoked again after ${trouble.deferred.code}: ${trouble.deferred.message}`,
    };
  } else if (trouble.orphaned > 0) {
    degraded = {
      type: ConditionType.Degraded,
      status: 'True',
      reason: Reason.InvocationsOrphaned,
      message: `${plural(trouble.orphaned, 'invocation was', 'invocations were')} orphaned in the last ${plural(Math.round(facts.troubleWindowSeconds / 60), 'minute')} (they never started, or stopped heartbeating)`,
    };
  }

  const suspended = suspendedCondition(spec.suspend);

  return [ready, active, degraded, suspended];
}

function suspendedCondition(suspend: boolean): ConditionInput {
  return suspend
    ? {
        type: ConditionType.Suspended,
        status: 'True',
        reason: Reason.SuspendedBySpec,
        message: 'spec.suspend is true: nothing is dispatched',
      }
    : { type: ConditionType.Suspended, status: 'False', reason: Reason.NotSuspended, message: 'dispatching as the backlog needs' };
}

export function buildStatus(previous: PoolStatus, facts: PoolFacts): PoolStatus {
  return {
    observedGeneration: facts.generation,
    backlog: facts.tasks.created,
    invocations: facts.invocations,
    tasks: facts.tasks,
    ...(facts.dispatchedAt
      ? { lastDispatchTime: isoSeconds(facts.dispatchedAt) }
      : previous.lastDispatchTime
        ? { lastDispatchTime: previous.lastDispatchTime }
        : {}),
    conditions: mergeConditions(previous.conditions, desiredConditions(facts), { now: facts.now, generation: facts.generation }),
  };
}

/**
 * A pass that could not reach its world (bad spec, missing Secret, unreachable database, queue conflict):
 * Ready=False with the reason; counts stay as last seen. observedGeneration advances only for a spec
 * problem, which is the verdict on this generation.
 */
export function blockedStatus(
  previous: PoolStatus,
  args: { now: Date; generation: number; reason: Reason; message: string; specVerdict: boolean; suspend: boolean },
): PoolStatus {
  // Ready and Suspended are this pass's verdict; the other conditions stay exactly as the last full pass left them.
  const others = (previous.conditions ?? []).filter((c) => c.type !== ConditionType.Ready && c.type !== ConditionType.Suspended);
  const [ready, suspended] = mergeConditions(
    previous.conditions,
    [{ type: ConditionType.Ready, status: 'False', reason: args.reason, message: args.message }, suspendedCondition(args.suspend)],
    { now: args.now, generation: args.generation },
  );
  return {
    ...previous,
    ...(args.specVerdict ? { observedGeneration: args.generation } : {}),
    conditions: [...(ready ? [ready] : []), ...others, ...(suspended ? [suspended] : [])],
  };
}

/** Status equality for "patch only when something changed". */
export function sameStatus(a: PoolStatus, b: PoolStatus): boolean {
  return JSON.stringify(normalize(a)) === JSON.stringify(normalize(b));
}

function normalize(s: PoolStatus) {
  return {
    observedGeneration: s.observedGeneration,
    backlog: s.backlog,
    invocations: s.invocations && INVOCATION_STATES.map((k) => s.invocations?.[k]),
    tasks: s.tasks && TASK_STATES.map((k) => s.tasks?.[k]),
    lastDispatchTime: s.lastDispatchTime,
    conditions: [...(s.conditions ?? [])]
      .sort((x, y) => x.type.localeCompare(y.type))
      .map((c) => ({
        type: c.type,
        status: c.status,
        reason: c.reason,
        message: c.message,
        lastTransitionTime: c.lastTransitionTime,
        observedGeneration: c.observedGeneration,
      })),
  };
}
