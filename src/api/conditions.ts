// Conditions in metav1.Condition form. lastTransitionTime changes only when the status flips, and
// observedGeneration is stamped here, in one place.
import type { Condition } from './types.ts';

export const ConditionType = {
  Ready: 'Ready',
  Active: 'Active',
  Degraded: 'Degraded',
  Suspended: 'Suspended',
  FunctionReady: 'FunctionReady',
} as const;
export type ConditionType = (typeof ConditionType)[keyof typeof ConditionType];

export const Reason = {
  // Ready
  Reconciled: 'Reconciled',
  InvalidSpec: 'InvalidSpec',
  QueueConflict: 'QueueConflict',
  FunctionNotAllowed: 'FunctionNotAllowed',
  QueueNotAllowed: 'QueueNotAllowed',
  SecretNotAllowed: 'SecretNotAllowed',
  DatabaseUnavailable: 'DatabaseUnavailable',
  ReconcileError: 'ReconcileError',
  SecretNotFound: 'SecretNotFound',
  SecretForbidden: 'SecretForbidden',
  SecretInvalid: 'SecretInvalid',
  DefaultDatabaseNotAllowed: 'DefaultDatabaseNotAllowed',
  NoDefaultDatabase: 'NoDefaultDatabase',
  FunctionNotFound: 'FunctionNotFound',
  AccessDenied: 'AccessDenied',
  InvokeRejected: 'InvokeRejected',
  Deleting: 'Deleting',
  // Active
  WorkInFlight: 'WorkInFlight',
  Idle: 'Idle',
  NotDispatching: 'NotDispatching',
  // Degraded
  AsExpected: 'AsExpected',
  InvokeErrors: 'InvokeErrors',
  Throttled: 'Throttled',
  InvocationsOrphaned: 'InvocationsOrphaned',
  FunctionTimeoutTooShort: 'FunctionTimeoutTooShort',
  InvocationsWasted: 'InvocationsWasted',
  FunctionNotReady: 'FunctionNotReady',
  // Suspended
  SuspendedBySpec: 'SuspendedBySpec',
  NotSuspended: 'NotSuspended',
  // FunctionReady (planner/function-readiness.ts)
  FunctionConfigured: 'FunctionConfigured',
  NotChecked: 'NotChecked',
  FunctionNotActive: 'FunctionNotActive',
  ReservedConcurrencyTooLow: 'ReservedConcurrencyTooLow',
  EventAgeTooShort: 'EventAgeTooShort',
  AsyncRetriesEnabled: 'AsyncRetriesEnabled',
  InvocationsNotStarting: 'InvocationsNotStarting',
  PermissionMissing: 'PermissionMissing',
  AsyncConfigNotSet: 'AsyncConfigNotSet',
} as const;
export type Reason = (typeof Reason)[keyof typeof Reason];

export interface ConditionInput {
  type: ConditionType;
  status: Condition['status'];
  reason: Reason;
  message: string;
}

/** Merges the desired conditions into the current ones. Pure: `now` is passed in. */
export function mergeConditions(
  current: readonly Condition[] | undefined,
  desired: readonly ConditionInput[],
  args: { now: Date; generation: number },
): Condition[] {
  const byType = new Map((current ?? []).map((c) => [c.type, c]));
  return desired.map((d) => {
    const previous = byType.get(d.type);
    const flipped = !previous || previous.status !== d.status;
    return {
      type: d.type,
      status: d.status,
      reason: d.reason,
      message: d.message.slice(0, 1024),
      lastTransitionTime: flipped ? isoSeconds(args.now) : previous.lastTransitionTime,
      observedGeneration: args.generation,
    };
  });
}

/** RFC 3339 to the second, as Kubernetes writes times. */
export function isoSeconds(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
