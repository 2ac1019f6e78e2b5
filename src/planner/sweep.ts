// Which invocations to invoke again, orphan or terminate. Pure: the caller passes the rows it read, `now`
// (the database clock) and how long the controller has been able to reach the database.
import type { LiveInvocationState } from '../api/types.ts';

export interface LiveInvocationView {
  id: number;
  status: LiveInvocationState;
  createdAt: number;
  invokeAfter: number;
  heartbeatAt: number | null;
  /** The heartbeat timeout the row was dispatched with: the one its worker fences itself by. */
  heartbeatTimeoutMs: number;
}

export type PoolMode = 'active' | 'suspended' | 'deleting';

export interface SweepInput {
  now: number;
  invocations: readonly LiveInvocationView[];
  startTimeoutMs: number;
  /**
   * How long the controller has reached the database without interruption (its own clock). A heartbeat
   * that could not have been written is not a lost heartbeat: a row is orphaned by heartbeat only after a
   * full heartbeat timeout of this.
   */
  connectedForMs: number;
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

/**
 * The moment a ready|running row is given up as silent: a heartbeat timeout after its last heartbeat (or
 * its creation if it sent none), and never before the controller has reached the database for a whole
 * heartbeat timeout, so that heartbeats that could not have been written are never held against a worker.
 */
function heartbeatDeadline(inv: LiveInvocationView, now: number, connectedForMs: number): number {
  const silentUntil = (inv.heartbeatAt ?? inv.createdAt) + inv.heartbeatTimeoutMs;
  const connectedUntil = now + Math.max(0, inv.heartbeatTimeoutMs - connectedForMs);
  return Math.max(silentUntil, connectedUntil);
}

export function planSweep(input: SweepInput): SweepDecision {
  const { now, startTimeoutMs, connectedForMs } = input;
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
      if (now >= heartbeatDeadline(inv, now, connectedForMs)) {
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
    else deadlines.push(heartbeatDeadline(inv, now, connectedForMs));
    if (inv.status !== 'created') continue;
    if (now >= inv.invokeAfter) reinvoke.push(inv.id);
    else deadlines.push(inv.invokeAfter);
  }

  const nextDeadline = deadlines.length > 0 ? Math.min(...deadlines) : undefined;
  return { orphanUnstarted, orphanSilent, terminate, reinvoke, remaining, nextDeadline };
}
