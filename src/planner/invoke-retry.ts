// When a row whose Invoke was throttled or failed transiently is invoked again. Pure: the random
// source is injected. Each row backs off by its own count of attempts, with jitter, so that many rows
// and many pools never retry in lockstep.
import type { InvokeFailure } from '../lambda/errors.ts';
import { backoffMs, type BackoffPolicy } from '@lambda-task-pool/worker/protocol';

export const THROTTLE_BACKOFF: BackoffPolicy = { initialMs: 1_000, maxMs: 60_000 };
export const TRANSIENT_BACKOFF: BackoffPolicy = { initialMs: 2_000, maxMs: 60_000 };

/**
 * `attempts`: Invoke calls already made for the row, this one included. A throttle that names its own
 * wait (retryAfterSeconds) is honoured, plus up to half of it again as jitter; otherwise the delay
 * doubles with each attempt, from 1 s for a throttle and 2 s for a transient error, up to a minute.
 */
export function invokeRetryDelayMs(failure: InvokeFailure, attempts: number, random: () => number = Math.random): number {
  if (failure.kind === 'rejected') return 0;
  if (failure.kind === 'throttled' && failure.retryAfterMs !== undefined) {
    return Math.round(failure.retryAfterMs * (1 + Math.min(1, Math.max(0, random())) / 2));
  }
  return backoffMs(attempts, failure.kind === 'throttled' ? THROTTLE_BACKOFF : TRANSIENT_BACKOFF, random);
}
