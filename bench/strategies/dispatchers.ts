// The dispatchers the strategy benchmark compares with the product's own ledger (bench code, not product
// code). Each one is a pure function of what it can see at one tick: how many invocations to start now.
//
//   naive          sees only the task table: one invocation per k created tasks, at most `cap` per tick;
//   approximate    sees in-flight work only through a lagging metric: it tops the in-flight count up to
//                  min(ceil(backlog / k), cap), as that metric reports it;
//   keda-accurate  KEDA ScaledJob's "accurate" scaling strategy (kedacore/keda,
//                  pkg/scaling/executor/scale_jobs.go and pkg/scaling/scaledjob/metrics.go), with its job
//                  counts taken from the same lagging metric.
//
// The backlog (created tasks) is exact for all three: the task table is theirs to read. Only what Lambda
// holds (invoked, not yet started) and what runs are seen through the metric.

export const BENCH_DISPATCHERS = ['naive', 'approximate', 'keda-accurate'] as const;
export type BenchDispatcher = (typeof BENCH_DISPATCHERS)[number];
export const DISPATCHERS = ['ledger', ...BENCH_DISPATCHERS] as const;
export type Dispatcher = (typeof DISPATCHERS)[number];

export function isBenchDispatcher(name: Dispatcher): name is BenchDispatcher {
  return BENCH_DISPATCHERS.some((d) => d === name);
}

/** In-flight invocations as some view reports them. */
export interface InFlight {
  /** Invoked and not started yet (still in Lambda's queue). */
  pending: number;
  /** Started and not finished. */
  running: number;
}

export interface TickInput {
  /** Created tasks of the queue, counted exactly. */
  backlog: number;
  /** In-flight invocations as the lagging metric reports them (naive ignores it). */
  seen: InFlight;
  /** The most invocations the dispatcher means to have at once (maxConcurrency, KEDA's maxReplicaCount). */
  cap: number;
  /** Tasks one invocation takes (KEDA's targetAverageValue per job). */
  tasksPerInvocation: number;
}

/** Invocations the backlog asks for, before anything is subtracted: ceil(backlog / k). */
function invocationsFor(input: TickInput): number {
  return Math.ceil(Math.max(0, input.backlog) / input.tasksPerInvocation);
}

/** naive: ceil(created / k), at most `cap` per tick; it never looks at what it already started. */
export function naiveDispatch(input: TickInput): number {
  return Math.min(invocationsFor(input), input.cap);
}

/** approximate: min(ceil(backlog / k), cap) minus the in-flight count the lagging metric reports. */
export function approximateDispatch(input: TickInput): number {
  const target = Math.min(invocationsFor(input), input.cap);
  return Math.max(0, target - (input.seen.pending + input.seen.running));
}

export interface KedaAccurateDecision {
  /** ceil(min(queueLength / targetAverageValue, maxReplicaCount)) (IsScaledJobActive). */
  maxScale: number;
  /** Jobs not finished: KEDA's runningJobCount counts pending jobs too (getRunningJobCount). */
  runningJobCount: number;
  /** Jobs without a pod running or completed (getPendingJobCount). */
  pendingJobCount: number;
  /** accurateScalingStrategy.GetEffectiveMaxScale, floored at 0 as RequestJobScale does. */
  effectiveMaxScale: number;
  /** Jobs created: min(scaleTo, effectiveMaxScale), where scaleTo is ceil(queueLength) (createJobs). */
  create: number;
}

/**
 * KEDA's accurate strategy, with minReplicaCount 0:
 *   if maxScale + running - pending > maxReplicaCount: effective = maxReplicaCount - running
 *   else:                                              effective = maxScale - pending
 * and no job at all while the scaler is inactive (queue length 0).
 */
export function kedaAccurateDecision(input: TickInput): KedaAccurateDecision {
  const queueLength = Math.max(0, input.backlog);
  const maxScale = Math.ceil(Math.min(queueLength / input.tasksPerInvocation, input.cap));
  const runningJobCount = input.seen.pending + input.seen.running;
  const pendingJobCount = input.seen.pending;
  const effective = maxScale + runningJobCount - pendingJobCount > input.cap ? input.cap - runningJobCount : maxScale - pendingJobCount;
  const effectiveMaxScale = Math.max(0, effective);
  const active = queueLength > 0;
  const scaleTo = Math.ceil(queueLength);
  const create = active && effectiveMaxScale > 0 ? Math.min(scaleTo, effectiveMaxScale) : 0;
  return { maxScale, runningJobCount, pendingJobCount, effectiveMaxScale, create };
}

export function kedaAccurateDispatch(input: TickInput): number {
  return kedaAccurateDecision(input).create;
}

export const DISPATCH: Record<BenchDispatcher, (input: TickInput) => number> = {
  naive: naiveDispatch,
  approximate: approximateDispatch,
  'keda-accurate': kedaAccurateDispatch,
};
