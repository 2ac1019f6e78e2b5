// What a worker function's `process(task, ctx)` sees.
import type { Context } from 'aws-lambda';
import type { DatabaseUrlSource } from './database.ts';
import type { WorkerLogger } from './logger.ts';

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
  /**
   * Aborted when the invocation must stop: the controller ended it, the function's time is about to run
   * out (stopBeforeTimeoutMs), or the heartbeat could not be renewed for close to the heartbeat timeout
   * (the lease may pass to another invocation). Stop promptly: a task is never run by two invocations at
   * once only as long as its handler stops when this aborts.
   */
  signal: AbortSignal;
  /** Milliseconds left before the Lambda function's timeout (Infinity outside Lambda). */
  remainingTimeMs(): number;
  /** Lines carry the invocation, the queue and the task. */
  logger: WorkerLogger;
}

/** The Lambda context (aws-lambda's Context); the worker reads awsRequestId, invokedFunctionArn and getRemainingTimeInMillis. */
export type LambdaContextLike = Partial<Context>;

export interface TaskWorkerOptions<P = unknown, R = unknown> {
  process(task: Task<P>, ctx: TaskContext): Promise<R> | R;
  /**
   * The Postgres URL, or a function that returns it (read from AWS Secrets Manager, or with an RDS IAM
   * token as its password): it is asked again for every new connection. Defaults to DATABASE_URL.
   */
  databaseUrl?: DatabaseUrlSource;
  /** A task is started only while at least this much time remains; the rest are released. Default 60 000. */
  minTimeToStartTaskMs?: number;
  /**
   * Heartbeat period; default a quarter of the pool's heartbeat timeout. Cut, with one warning, to a third of
   * the time to the fence (the timeout less the fence margin), so a healthy worker never fences itself.
   */
  heartbeatIntervalMs?: number;
  /** ctx.signal aborts when this little of the function's time is left. Default 3 000, or half of minTimeToStartTaskMs if less. */
  stopBeforeTimeoutMs?: number;
  /**
   * Any logger with info(message, fields), warn and error (console, Powertools Logger, winston; pino, which
   * takes the fields first, through the two-line adapter in the README); default JSON lines on stdout.
   */
  logger?: WorkerLogger;
}

/**
 * succeeded: the invocation ended normally; skipped: a duplicate or late delivery that touched nothing;
 * stopped: the controller ended it first; failed: it could start no task (see reason) or the worker
 * failed; fenced: it lost touch with the database and stopped without writing, its lease may pass on.
 */
export type WorkerOutcome = 'succeeded' | 'skipped' | 'stopped' | 'failed' | 'fenced';

export interface WorkerSummary {
  invocationId: number;
  outcome: WorkerOutcome;
  /** Why a delivery was skipped (the state its invocation was already in), or the code it ended with. */
  reason?: string;
  leased: number;
  /** Tasks whose handler started. */
  started: number;
  done: number;
  failed: number;
  retried: number;
  released: number;
}

export type TaskWorkerHandler = (event: unknown, context?: LambdaContextLike) => Promise<WorkerSummary>;
