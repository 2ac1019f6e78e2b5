// The parts of the worker protocol the controller shares, with no I/O and no dependency: the event the
// controller sends (its invocation id) and the backoff both sides use. `@lambda-task-pool/worker/protocol`.
export { backoffMs, type BackoffPolicy } from './backoff.ts';
export { parseWorkerEvent, workerEventPayload, WorkerEventError, type WorkerEvent } from './event.ts';
