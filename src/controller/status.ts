// The pool's status, rebuilt from the world on every pass: counts from Postgres rows, conditions from
// those counts and the recent trouble recorded on the rows. Pure: the reconciler passes the facts in.
import { ConditionType, isoSeconds, mergeConditions, Reason, type ConditionInput } from '../api/conditions.ts';
import { byCodeUnits } from '../ops/code-unit-order.ts';
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
import type { FunctionVerdict } from '../planner/function-readiness.ts';
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
  /** The function guard's verdict (FunctionReady). */
  function?: FunctionVerdict;
  /** Wasted invocations among the rows retention keeps. */
  wasted?: number;
  lastTaskError?: { taskId: number; attempts: number; message: string; time: Date };
  /** The decision this pass recorded, if it changed something. */
  decision?: { id: number; decidedAt: Date; reason: string; backlog: number; dispatched: number; orphaned: number; terminated: number };
}

/**
 * The rejection that still describes the pool: not one Lambda has accepted an invoke of the pool since. A
 * rejection of a function the spec no longer names still stands until then, as dispatch still waits on it
 * (and rows recorded for that function are invoked there again): Ready and the dispatch pause agree.
 */
export function standingRejection(trouble: RecentTrouble): RecentTrouble['rejection'] {
  const rejection = trouble.rejection;
  return rejection && !rejection.acceptedSince ? rejection : undefined;
}

export function desiredConditions(facts: PoolFacts): ConditionInput[] {
  const { invocations: inv, tasks, trouble, spec } = facts;
  const rejection = standingRejection(trouble);
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
      message: `Lambda refused to invoke ${rejection.function.name}: ${rejection.code}: ${rejection.message}`,
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
  const started = inv.ready + inv.running;
  const inFlight = queued + started;
  const waiting = `${plural(tasks.created, 'task')} waiting, ${tasks.leased} leased`;
  // Active says whether work is under way: not while dispatch is refused or suspended and nothing runs.
  const halted = ready.status === 'False' ? `see Ready (${ready.reason})` : spec.suspend ? 'the pool is suspended' : undefined;
  let active: ConditionInput;
  if (started > 0 || (inFlight > 0 && !halted)) {
    active = {
      type: ConditionType.Active,
      status: 'True',
      reason: Reason.WorkInFlight,
      message: `${inv.running} running, ${inv.ready} starting, ${queued} queued; ${waiting}`,
    };
  } else if (tasks.created > 0 && halted) {
    active = {
      type: ConditionType.Active,
      status: 'False',
      reason: Reason.NotDispatching,
      message: `${plural(tasks.created, 'task')} waiting, but nothing is dispatched: ${halted}`,
    };
  } else if (tasks.created > 0 || inFlight > 0) {
    active = {
      type: ConditionType.Active,
      status: 'True',
      reason: Reason.WorkInFlight,
      message: `${inv.running} running, ${inv.ready} starting, ${queued} queued; ${waiting}`,
    };
  } else {
    active = { type: ConditionType.Active, status: 'False', reason: Reason.Idle, message: 'no tasks waiting and no invocation in flight' };
  }

  let degraded: ConditionInput = {
    type: ConditionType.Degraded,
    status: 'False',
    reason: Reason.AsExpected,
    message: 'no recent invoke errors or orphans',
  };
  const waste = facts.waste;
  if (ready.status === 'False') {
    // A pool Lambda refuses to invoke is degraded for the same reason: the conditions never disagree.
    degraded = { type: ConditionType.Degraded, status: 'True', reason: ready.reason, message: ready.message };
  } else if (waste?.wasting) {
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
  } else if (facts.function?.status === 'False' && facts.function.blocking) {
    degraded = { type: ConditionType.Degraded, status: 'True', reason: Reason.FunctionNotReady, message: facts.function.message };
  }

  const suspended = suspendedCondition(spec.suspend);
  const fn: ConditionInput = facts.function
    ? {
        type: ConditionType.FunctionReady,
        status: facts.function.status,
        reason: facts.function.reason as Reason,
        message: facts.function.message,
      }
    : {
        type: ConditionType.FunctionReady,
        status: 'Unknown',
        reason: Reason.NotChecked,
        message: 'the function configuration was not read yet',
      };

  return [ready, active, degraded, suspended, fn];
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
    ...(facts.wasted !== undefined ? { wastedInvocations: facts.wasted } : {}),
    ...(facts.lastTaskError
      ? {
          lastTaskError: {
            taskId: facts.lastTaskError.taskId,
            attempts: facts.lastTaskError.attempts,
            message: facts.lastTaskError.message.slice(0, 1024),
            time: isoSeconds(facts.lastTaskError.time),
          },
        }
      : previous.lastTaskError
        ? { lastTaskError: previous.lastTaskError }
        : {}),
    ...(facts.decision
      ? {
          lastDecision: {
            time: isoSeconds(facts.decision.decidedAt),
            id: facts.decision.id,
            backlog: facts.decision.backlog,
            dispatched: facts.decision.dispatched,
            orphaned: facts.decision.orphaned,
            terminated: facts.decision.terminated,
            reason: facts.decision.reason.slice(0, 1024),
          },
        }
      : previous.lastDecision
        ? { lastDecision: previous.lastDecision }
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
  // Ready and Suspended are this pass's verdict; Active and Degraded follow from it (nothing is dispatched,
  // and the pool is degraded for the same reason); FunctionReady stays as the last full pass left it.
  const kept = (previous.conditions ?? []).filter((c) => c.type === ConditionType.FunctionReady);
  const waiting = previous.tasks?.created ?? 0;
  const running = (previous.invocations?.ready ?? 0) + (previous.invocations?.running ?? 0);
  const desired: ConditionInput[] = [
    { type: ConditionType.Ready, status: 'False', reason: args.reason, message: args.message },
    running > 0
      ? {
          type: ConditionType.Active,
          status: 'True',
          reason: Reason.WorkInFlight,
          message: `${plural(running, 'invocation')} still running (as last seen); nothing new is dispatched: see Ready (${args.reason})`,
        }
      : {
          type: ConditionType.Active,
          status: 'False',
          reason: Reason.NotDispatching,
          message: `${plural(waiting, 'task')} waiting (as last seen), but nothing is dispatched: see Ready (${args.reason})`,
        },
    { type: ConditionType.Degraded, status: 'True', reason: args.reason, message: args.message },
    suspendedCondition(args.suspend),
  ];
  const merged = mergeConditions(previous.conditions, desired, { now: args.now, generation: args.generation });
  return {
    ...previous,
    ...(args.specVerdict ? { observedGeneration: args.generation } : {}),
    conditions: [...merged, ...kept],
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
    wastedInvocations: s.wastedInvocations,
    lastTaskError: s.lastTaskError,
    lastDecision: s.lastDecision,
    conditions: [...(s.conditions ?? [])]
      .sort((x, y) => byCodeUnits(x.type, y.type))
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
