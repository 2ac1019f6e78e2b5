// What a worker function's `process(task, ctx)` sees.
import type { Logger } from '../ops/logger.ts';

export interface Task<P = unknown> {
  id: number;
  queue: string;
  payload: P;
  /** This attempt's number, starting at 1. */
  attempt: number;
  createdAt: Date;
}

export interface TaskContext {
  invocationId: number;
  /** Aborted when the controller terminates the invocation or its time is running out. */
  signal: AbortSignal;
  /** Milliseconds left before the Lambda function's timeout (Infinity outside Lambda). */
  remainingTimeMs(): number;
  logger: Logger;
}

/** The subset of the Lambda context the worker reads. */
export interface LambdaContextLike {
  awsRequestId?: string;
  getRemainingTimeInMillis?: () => number;
}

export interface TaskWorkerOptions<P = unknown, R = unknown> {
  process(task: Task<P>, ctx: TaskContext): Promise<R> | R;
  /** Postgres URL; defaults to the DATABASE_URL environment variable. */
  databaseUrl?: string;
  /** A task is started only while at least this much time remains; the rest are released. Default 60 000. */
  minTimeToStartTaskMs?: number;
  /** Heartbeat period; default a quarter of the pool's heartbeat timeout. */
  heartbeatIntervalMs?: number;
  logger?: Logger;
}

export type WorkerOutcome = 'succeeded' | 'skipped' | 'stopped';

export interface WorkerSummary {
  invocationId: number;
  outcome: WorkerOutcome;
  /** Why a delivery was skipped: the state its invocation was already in. */
  reason?: string;
  leased: number;
  done: number;
  failed: number;
  retried: number;
  released: number;
}

export type TaskWorkerHandler = (event: unknown, context?: LambdaContextLike) => Promise<WorkerSummary>;
