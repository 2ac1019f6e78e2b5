// Which invocations to invoke again, orphan or terminate, and what becomes of the tasks they held.
// Pure: the caller passes the rows it read and `now` (the database clock).
import type { LiveInvocationState } from '../api/types.ts';

export interface LiveInvocationView {
  id: number;
  status: LiveInvocationState;
  createdAt: number;
  invokeAfter: number;
  heartbeatAt: number | null;
}

export type PoolMode = 'active' | 'suspended' | 'deleting';

export interface SweepInput {
  now: number;
  invocations: readonly LiveInvocationView[];
  startTimeoutMs: number;
  heartbeatTimeoutMs: number;
  maxConcurrency: number;
  mode: PoolMode;
}

export interface SweepDecision {
  /** created|pending rows past their start deadline. */
  orphanUnstarted: number[];
  /** ready|running rows whose heartbeat is older than the heartbeat timeout. */
  orphanSilent: number[];
  /** Rows to end as terminated: queued ones when suspended or over maxConcurrency, every live one when deleting. */
  terminate: number[];
  /** created rows whose invoke never happened or should be tried again now. */
  reinvoke: number[];
  /** Rows still live after the sweep. */
  remaining: LiveInvocationView[];
  /** The next moment a row reaches a deadline, if any. */
  nextDeadline?: number;
}

const QUEUED: readonly LiveInvocationState[] = ['created', 'pending'];

/** The moment a created|pending row is given up as never started. */
function startDeadline(inv: LiveInvocationView, startTimeoutMs: number): number {
  return inv.createdAt + startTimeoutMs;
}

/** The moment a ready|running row is given up as silent: its last heartbeat, or its creation if it sent none. */
function heartbeatDeadline(inv: LiveInvocationView, heartbeatTimeoutMs: number): number {
  return (inv.heartbeatAt ?? inv.createdAt) + heartbeatTimeoutMs;
}

export function planSweep(input: SweepInput): SweepDecision {
  const { now, startTimeoutMs, heartbeatTimeoutMs } = input;
  const orphanUnstarted: number[] = [];
  const orphanSilent: number[] = [];
  const terminate: number[] = [];
  let remaining: LiveInvocationView[] = [];
  const deadlines: number[] = [];

  for (const inv of input.invocations) {
    if (input.mode === 'deleting') {
      terminate.push(inv.id);
      continue;
    }
    if (QUEUED.includes(inv.status)) {
      if (now >= startDeadline(inv, startTimeoutMs)) {
        orphanUnstarted.push(inv.id);
        continue;
      }
      if (input.mode === 'suspended') {
        terminate.push(inv.id);
        continue;
      }
    } else {
      if (now >= heartbeatDeadline(inv, heartbeatTimeoutMs)) {
        orphanSilent.push(inv.id);
        continue;
      }
    }
    remaining.push(inv);
  }

  // Scaled down: end the newest queued invocations beyond maxConcurrency. Started ones finish their work.
  const excess = remaining.length - input.maxConcurrency;
  if (input.mode === 'active' && excess > 0) {
    const queuedNewestFirst = remaining.filter((i) => QUEUED.includes(i.status)).sort((a, b) => b.id - a.id);
    const cut = new Set(queuedNewestFirst.slice(0, excess).map((i) => i.id));
    terminate.push(...cut);
    remaining = remaining.filter((i) => !cut.has(i.id));
  }

  // Deadlines come only from rows that survive the sweep: a row terminated by the scale-down has none left.
  const reinvoke: number[] = [];
  for (const inv of remaining) {
    if (QUEUED.includes(inv.status)) deadlines.push(startDeadline(inv, startTimeoutMs));
    else deadlines.push(heartbeatDeadline(inv, heartbeatTimeoutMs));
    if (inv.status !== 'created') continue;
    if (now >= inv.invokeAfter) reinvoke.push(inv.id);
    else deadlines.push(inv.invokeAfter);
  }

  const nextDeadline = deadlines.length > 0 ? Math.min(...deadlines) : undefined;
  return { orphanUnstarted, orphanSilent, terminate, reinvoke, remaining, nextDeadline };
}

export interface LeaseView {
  id: number;
  invocationId: number;
  attempts: number;
  maxAttempts: number | null;
}

export interface ReleaseDecision<T extends LeaseView> {
  toCreated: T[];
  toFailed: T[];
}

/** Tasks of an ended invocation go back to created, or to failed once their attempts are used up. */
export function planRelease<T extends LeaseView>(tasks: readonly T[], defaultMaxAttempts: number): ReleaseDecision<T> {
  const toCreated: T[] = [];
  const toFailed: T[] = [];
  for (const task of tasks) {
    if (task.attempts >= (task.maxAttempts ?? defaultMaxAttempts)) toFailed.push(task);
    else toCreated.push(task);
  }
  return { toCreated, toFailed };
}
