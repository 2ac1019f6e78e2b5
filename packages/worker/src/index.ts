// The worker SDK: wrap a plain task handler in a Lambda handler that follows the invocation protocol.
export { taskWorker } from './task-worker.ts';
export { closeWorkerConnections, WorkerConfigError, type DatabaseUrlSource } from './database.ts';
export { parseWorkerEvent, workerEventPayload, WorkerEventError, type WorkerEvent } from './event.ts';
export { jsonLogger, type LogFields, type WorkerLogger } from './logger.ts';
export { backoffMs, type BackoffPolicy } from './backoff.ts';
export type { Task, TaskContext, TaskWorkerOptions, TaskWorkerHandler, WorkerSummary, WorkerOutcome, LambdaContextLike } from './types.ts';
