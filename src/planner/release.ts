// What becomes of the tasks still leased by invocations that have ended. Pure: the caller passes the
// rows, `now` (the database clock) and a random source for the retry jitter.
import type { InvocationState } from '../api/types.ts';
import { backoffMs } from '@lambda-task-pool/worker/protocol';

export interface StrandedLease {
  id: number;
  invocationId: number;
  /** Handler starts so far, this lease's included. */
  attempts: number;
  /** The task's own limit, or null for the pool's. */
  maxAttempts: number | null;
  /** Whether a handler started on the task under this lease. */
  started: boolean;
  invocation: {
    status: InvocationState;
    /** Whether the invocation ever started (claimed by a worker). */
    everStarted: boolean;
    finishedAt: number | null;
    heartbeatTimeoutMs: number;
    maxTaskAttempts: number;
    retryInitialDelayMs: number;
    retryMaxDelayMs: number;
  };
}

export interface ReleaseDecision<T extends StrandedLease> {
  /** Back to created, due after `delayMs` (0 for a task whose handler never started). */
  toCreated: Array<T & { delayMs: number }>;
  /** Attempts used up. */
  toFailed: T[];
  /** Not yet: their worker may still be finishing (see below); `nextAt` says when to look again. */
  held: T[];
  nextAt?: number;
}

/**
 * A worker stops when it learns, at its next heartbeat, that its invocation was terminated (the pool was
 * deleted, say). Until then it may still be running a task, so the tasks of a terminated invocation that
 * had started are given back only a heartbeat timeout after it ended; by then its worker has stopped, or
 * fenced itself. An orphaned invocation's worker has already fenced itself (that is what orphaned by
 * heartbeat means), and one that succeeded or failed has finished: their tasks go back at once.
 */
export function releaseAt(lease: StrandedLease): number {
  const inv = lease.invocation;
  if (inv.status === 'terminated' && inv.everStarted && inv.finishedAt !== null) return inv.finishedAt + inv.heartbeatTimeoutMs;
  return Number.NEGATIVE_INFINITY;
}

/**
 * A task whose handler started under the ended lease used an attempt: it fails once its attempts are
 * used up, and otherwise becomes due again after the pool's retry delay. One whose handler never
 * started goes back at once and costs nothing.
 */
export function planRelease<T extends StrandedLease>(
  leases: readonly T[],
  args: { now: number; random?: () => number },
): ReleaseDecision<T> {
  const decision: ReleaseDecision<T> = { toCreated: [], toFailed: [], held: [] };
  const later: number[] = [];
  for (const lease of leases) {
    const at = releaseAt(lease);
    if (args.now < at) {
      decision.held.push(lease);
      later.push(at);
      continue;
    }
    if (!lease.started) {
      decision.toCreated.push({ ...lease, delayMs: 0 });
      continue;
    }
    const limit = lease.maxAttempts ?? lease.invocation.maxTaskAttempts;
    if (lease.attempts >= limit) {
      decision.toFailed.push(lease);
      continue;
    }
    const policy = { initialMs: lease.invocation.retryInitialDelayMs, maxMs: lease.invocation.retryMaxDelayMs };
    decision.toCreated.push({ ...lease, delayMs: backoffMs(lease.attempts, policy, args.random) });
  }
  if (later.length > 0) decision.nextAt = Math.min(...later);
  return decision;
}
