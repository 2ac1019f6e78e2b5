// lambda-task-pool/worker: wrap a plain task handler in a Lambda handler that follows the invocation protocol.
export { taskWorker, closeWorkerConnections } from './task-worker.ts';
export { parseWorkerEvent, WorkerEventError, type WorkerEvent } from './event.ts';
export type { Task, TaskContext, TaskWorkerOptions, TaskWorkerHandler, WorkerSummary, WorkerOutcome, LambdaContextLike } from './types.ts';
