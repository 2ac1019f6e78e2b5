// Exponential backoff with jitter, shared by the worker (task retry delays, write retries) and the
// controller (invoke retries, reconcile errors, watch restarts), so that nothing retries in lockstep.
// Pure: the random source is injected.

export interface BackoffPolicy {
  /** The delay before the first retry. */
  initialMs: number;
  /** No delay grows past this. */
  maxMs: number;
}

/**
 * The delay before retry number `attempt` (1 for the first): min(max, initial * 2^(attempt-1)), then
 * "equal jitter": a uniform draw between half of it and all of it. Never negative, never above maxMs.
 */
export function backoffMs(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const n = Math.max(1, Math.floor(attempt));
  const ceiling = Math.max(0, Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(n - 1, 52)));
  const draw = Math.min(1, Math.max(0, random()));
  return Math.round(ceiling / 2 + (ceiling / 2) * draw);
}
