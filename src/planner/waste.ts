// Waste: an invocation that a worker finished without starting a single task (it leased nothing, or had
// no time to start what it leased). Every one is billed. A pool that keeps wasting never loops: after
// `threshold` wasted invocations in a row it stops dispatching, and then sends one probe invocation at a
// time, each after a doubling pause, until one starts a task. Pure.

export interface FinishedOutcome {
  finishedAt: number;
  tasksStarted: number;
  code: string | null;
  message: string | null;
}

/**
 * Whether a finished invocation was wasted: a worker ran it (it started) and finished it, succeeded or failed,
 * having started no task. The rule of ltp.pool_totals.wasted (the status's WASTED count), which the
 * ltp_invocations_wasted_total metric counts too: a NoTimeToStart invocation (failed, nothing leased) is waste.
 */
export function isWasted(row: { status: string; readyAt: Date | null; tasksStarted: number }): boolean {
  return (row.status === 'succeeded' || row.status === 'failed') && row.readyAt !== null && row.tasksStarted === 0;
}

export interface WastePolicy {
  /** Wasted invocations in a row that start the backoff. */
  threshold: number;
  /** The pause after the threshold is reached; it doubles with every further waste. */
  initialBackoffMs: number;
  maxBackoffMs: number;
}

export const DEFAULT_WASTE_POLICY: WastePolicy = { threshold: 3, initialBackoffMs: 15_000, maxBackoffMs: 600_000 };

export type WasteState =
  | { wasting: false }
  | {
      wasting: true;
      /** Wasted invocations in a row, newest first. */
      streak: number;
      /** The newest wasted invocation's code and message: why it started nothing. */
      code: string | null;
      message: string | null;
      /** Nothing is dispatched before this; after it, one probe at a time. */
      pausedUntil: number;
      backoffMs: number;
    };

/** `outcomes`: the pool's latest invocations that a worker finished, newest first. */
export function wasteState(outcomes: readonly FinishedOutcome[], policy: WastePolicy = DEFAULT_WASTE_POLICY): WasteState {
  let streak = 0;
  for (const o of outcomes) {
    if (o.tasksStarted > 0) break;
    streak += 1;
  }
  const latest = outcomes[0];
  if (streak < policy.threshold || !latest) return { wasting: false };
  const backoffMs = Math.min(policy.maxBackoffMs, policy.initialBackoffMs * 2 ** Math.min(streak - policy.threshold, 30));
  return { wasting: true, streak, code: latest.code, message: latest.message, pausedUntil: latest.finishedAt + backoffMs, backoffMs };
}
