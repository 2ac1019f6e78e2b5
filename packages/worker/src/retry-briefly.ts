// The reads and writes before the claim: no lease is held yet, so there is no fence to retry up to. One
// stale pooled connection (the server closed it while the Lambda environment was frozen) must not fail the
// delivery: the row would wait for its start timeout. So they are retried like the other writes, on the
// same errors and with the same backoff, but only for a few seconds.
import { backoffMs, type BackoffPolicy } from './backoff.ts';
import { isRetryableWriteError } from './write-errors.ts';

export interface RetryBrieflyOptions {
  policy: BackoffPolicy;
  /** Give up once the next attempt would start later than this after the first. */
  budgetMs: number;
  onRetry(attempt: number, waitMs: number, error: unknown): void;
  /** A monotonic clock in ms, and a sleep: injected so that a test can fix time. */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** Runs `call` until it succeeds, retrying errors isRetryableWriteError accepts within the budget; then throws the last. */
export async function retryBriefly<T>(call: () => Promise<T>, options: RetryBrieflyOptions): Promise<T> {
  const now = options.now ?? (() => performance.now());
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const started = now();
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await call();
    } catch (error) {
      const waitMs = backoffMs(attempt, options.policy);
      if (!isRetryableWriteError(error) || now() + waitMs - started > options.budgetMs) throw error;
      options.onRetry(attempt, waitMs, error);
      await sleep(waitMs);
    }
  }
}
