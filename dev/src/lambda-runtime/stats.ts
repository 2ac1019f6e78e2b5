// What the local Lambda runtime counts and records, per function and in total.
import { LAMBDA_ERROR_TYPE_NAMES, type LambdaErrorType } from './errors.ts';

export const DELIVERY_OUTCOMES = ['success', 'error', 'timeout', 'crash'] as const;
export type DeliveryOutcome = (typeof DELIVERY_OUTCOMES)[number];

export const DROP_REASONS = ['random', 'eventAge', 'deleted'] as const;
/** random: dropRate; eventAge: older than maximumEventAgeSeconds; deleted: its function was unregistered. */
export type DropReason = (typeof DROP_REASONS)[number];

export interface DeliveryRecord {
  /** 1 for the first delivery, 2 and 3 for retries. */
  attempt: number;
  /** A second copy of the event (at-least-once delivery). */
  duplicate: boolean;
  startedAt: number;
  endedAt?: number;
  outcome?: DeliveryOutcome;
  errorType?: string;
  coldStart?: boolean;
  pid?: number;
}

/** One accepted Event invocation and everything that happened to it. */
export interface EventRecord {
  requestId: string;
  function: string;
  payloadBytes: number;
  acceptedAt: number;
  deliveries: DeliveryRecord[];
  dropped?: DropReason;
  droppedAt?: number;
}

export interface RuntimeStats {
  /** Event invokes answered 202. */
  accepted: number;
  /** RequestResponse invokes that ran the function. */
  syncInvocations: number;
  /** DryRun invokes answered 204. */
  dryRuns: number;
  /** Invoke calls answered 429 TooManyRequestsException (random or over a concurrency limit). */
  throttled: number;
  /** Invoke calls answered with an error, by error type (throttles included). */
  rejected: Partial<Record<LambdaErrorType, number>>;
  /** Async deliveries started: first attempts, retries and duplicates. */
  delivered: number;
  duplicates: number;
  retries: number;
  dropped: Record<DropReason, number>;
  /** Outcomes of every execution, sync and async. */
  succeeded: number;
  failed: number;
  timedOut: number;
  crashed: number;
  /** Executions running now. */
  running: number;
  /** Deliveries accepted and not started yet, including retries waiting for their delay. */
  queued: number;
  /** Of `queued`: retries waiting for their delay. */
  waitingForRetry: number;
  /** The most executions seen running at once. */
  maxConcurrent: number;
  /** Function processes alive now (idle or busy). */
  warmProcesses: number;
  coldStarts: number;
}

export type Counters = Omit<RuntimeStats, 'running' | 'queued' | 'waitingForRetry' | 'maxConcurrent' | 'warmProcesses' | 'coldStarts'>;

export function emptyCounters(): Counters {
  return {
    accepted: 0,
    syncInvocations: 0,
    dryRuns: 0,
    throttled: 0,
    rejected: {},
    delivered: 0,
    duplicates: 0,
    retries: 0,
    dropped: { random: 0, eventAge: 0, deleted: 0 },
    succeeded: 0,
    failed: 0,
    timedOut: 0,
    crashed: 0,
  };
}

export function countRejection(counters: Counters, type: LambdaErrorType): void {
  counters.rejected[type] = (counters.rejected[type] ?? 0) + 1;
  if (type === 'TooManyRequestsException') counters.throttled++;
}

export function countOutcome(counters: Counters, outcome: DeliveryOutcome): void {
  if (outcome === 'success') counters.succeeded++;
  else if (outcome === 'error') counters.failed++;
  else if (outcome === 'timeout') counters.timedOut++;
  else counters.crashed++;
}

/** Sums counters (for the runtime-wide view). */
export function addCounters(into: Counters, from: Counters): void {
  into.accepted += from.accepted;
  into.syncInvocations += from.syncInvocations;
  into.dryRuns += from.dryRuns;
  into.throttled += from.throttled;
  for (const type of LAMBDA_ERROR_TYPE_NAMES) {
    const count = from.rejected[type];
    if (count !== undefined) into.rejected[type] = (into.rejected[type] ?? 0) + count;
  }
  into.delivered += from.delivered;
  into.duplicates += from.duplicates;
  into.retries += from.retries;
  for (const reason of DROP_REASONS) into.dropped[reason] += from.dropped[reason];
  into.succeeded += from.succeeded;
  into.failed += from.failed;
  into.timedOut += from.timedOut;
  into.crashed += from.crashed;
}
