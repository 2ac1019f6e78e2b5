// The dispatch arithmetic of docs/architecture.md §5. Pure: no I/O, no clock.
import type { LiveInvocationState } from '../api/types.ts';

export type LiveCounts = Record<LiveInvocationState, number>;

export interface DispatchInput {
  /** Created tasks of the queue, counted no further than backlogCountLimit(). */
  backlog: number;
  live: LiveCounts;
  maxConcurrency: number;
  tasksPerInvocation: number;
}

export interface DispatchDecision {
  /** Invocations to start now. */
  dispatch: number;
  /** Invoked (or about to be) but not yet started: created + pending. */
  queued: number;
  /** Tasks that queued and ready invocations will lease. */
  supply: number;
  /** Invocations the uncovered backlog needs, before the concurrency cap. */
  want: number;
  /** Room left under maxConcurrency. */
  headroom: number;
}

export function planDispatch(input: DispatchInput): DispatchDecision {
  const { live, maxConcurrency, tasksPerInvocation } = input;
  const queued = live.created + live.pending;
  const supply = (queued + live.ready) * tasksPerInvocation;
  const want = Math.ceil(Math.max(0, input.backlog - supply) / tasksPerInvocation);
  const headroom = maxConcurrency - (queued + live.ready + live.running);
  const dispatch = Math.max(0, Math.min(want, headroom));
  return { dispatch, queued, supply, want, headroom };
}

/**
 * The planner never needs more of the backlog than this: with this many created tasks the capped
 * `want` already reaches any possible headroom, so counting further changes no decision.
 */
export function backlogCountLimit(spec: { maxConcurrency: number; tasksPerInvocation: number }): number {
  return spec.maxConcurrency * spec.tasksPerInvocation;
}

export function emptyLiveCounts(): LiveCounts {
  return { created: 0, pending: 0, ready: 0, running: 0 };
}
