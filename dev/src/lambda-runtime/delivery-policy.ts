// Pure decisions of the async event queue: throttle an API call or not, what happens to an accepted event
// (dropped, delayed, duplicated, crashed), and what follows a failed delivery (retry, give up, age out).
// No I/O and no clock: the caller passes `now` and a seeded Random, so every decision can be replayed.
import type { AsyncSettings, DelaySpec } from './config.ts';
import type { ThrottleDetails, ThrottleReason } from './errors.ts';
import { type Random, uniformInt } from './random.ts';

/** The two reasons a random throttle picks between. */
const RANDOM_THROTTLE_REASONS: readonly ThrottleReason[] = ['ReservedFunctionConcurrentInvocationLimitExceeded', 'CallerRateLimitExceeded'];

/** What a throttled call is told to wait; kept short because the SDK's default retry honours it. */
export const THROTTLE_RETRY_AFTER_SECONDS = 1;

/** How long after the original delivery's due time a duplicate copy is due. */
export const DUPLICATE_DELAY_MS = { min: 10, max: 500 } as const;

/** Deliveries per event that can be crashed: attempts 1..3, then the duplicate copy. */
export const CRASH_SLOTS = 4;
export const DUPLICATE_CRASH_SLOT = 3;

export function sampleDelay(u: number, spec: DelaySpec): number {
  return typeof spec === 'number' ? spec : uniformInt(u, spec);
}

/** Decides whether one Invoke call is throttled. Always draws two numbers, so streams stay aligned. */
export function decideThrottle(random: Random, throttleRate: number): ThrottleDetails | undefined {
  const hit = random.next() < throttleRate;
  const which = random.next();
  if (!hit) return undefined;
  const reason = RANDOM_THROTTLE_REASONS[Math.floor(which * RANDOM_THROTTLE_REASONS.length)] ?? 'CallerRateLimitExceeded';
  return { reason, retryAfterSeconds: THROTTLE_RETRY_AFTER_SECONDS };
}

/** The fate of one accepted event, decided once at acceptance. */
export interface EventPlan {
  /** The event is accepted (202) and then never delivered. */
  dropped: boolean;
  /** Delay between acceptance and the first delivery. */
  startDelayMs: number;
  /** When set, a second copy is delivered this long after the first delivery's due time. */
  duplicateDelayMs: number | undefined;
  /** Per crash slot (attempts 1..3, then the duplicate): when the delivery's process is killed, if at all. */
  crashAfterMs: Array<number | undefined>;
}

/** Plans an accepted event. Always draws the same count of numbers whatever the settings. */
export function planEvent(random: Random, settings: AsyncSettings): EventPlan {
  const dropped = random.next() < settings.dropRate;
  const startDelayMs = sampleDelay(random.next(), settings.startDelayMs);
  const duplicate = random.next() < settings.duplicateRate;
  const duplicateDelay = uniformInt(random.next(), DUPLICATE_DELAY_MS);
  const crashAfterMs: Array<number | undefined> = [];
  for (let slot = 0; slot < CRASH_SLOTS; slot++) {
    const crash = random.next() < settings.crashRate;
    const after = sampleDelay(random.next(), settings.crashAfterMs);
    crashAfterMs.push(crash ? after : undefined);
  }
  return { dropped, startDelayMs, duplicateDelayMs: duplicate ? duplicateDelay : undefined, crashAfterMs };
}

/** The moment after which an event accepted at `acceptedAt` is too old to deliver. */
export function eventExpiresAt(acceptedAt: number, maximumEventAgeSeconds: number): number {
  return acceptedAt + maximumEventAgeSeconds * 1000;
}

export function isExpired(expiresAt: number, now: number): boolean {
  return now > expiresAt;
}

export type AfterFailure = { kind: 'retry'; attempt: number; dueAt: number } | { kind: 'exhausted' } | { kind: 'expired' };

/**
 * What follows a failed (error, timeout or crash) delivery of attempt `attempt` (1-based):
 * a retry after retryDelaysMs[attempt-1], or nothing when the retries are used up, or an age-out drop
 * when the retry would not be due before the event expires.
 */
export function decideAfterFailure(input: {
  attempt: number;
  settings: Pick<AsyncSettings, 'maximumRetryAttempts' | 'retryDelaysMs'>;
  expiresAt: number;
  now: number;
}): AfterFailure {
  const { attempt, settings, expiresAt, now } = input;
  if (attempt > settings.maximumRetryAttempts) return { kind: 'exhausted' };
  const delay = settings.retryDelaysMs[attempt - 1] ?? settings.retryDelaysMs[1];
  const dueAt = now + delay;
  if (isExpired(expiresAt, dueAt)) return { kind: 'expired' };
  return { kind: 'retry', attempt: attempt + 1, dueAt };
}
