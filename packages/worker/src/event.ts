// The event a worker receives carries one thing: the id of its invocation row. The queue, the batch
// size and the attempts all come from that row, so a forged event cannot redirect work (docs/architecture.md §9).

export class WorkerEventError extends Error {
  override name = 'WorkerEventError';
}

export interface WorkerEvent {
  invocationId: number;
}

export function parseWorkerEvent(event: unknown): WorkerEvent {
  if (typeof event !== 'object' || event === null || Array.isArray(event)) {
    throw new WorkerEventError('malformed worker event: expected an object like {"invocationId": "42"}');
  }
  const raw: unknown = (event as Record<string, unknown>).invocationId;
  const text = typeof raw === 'number' ? String(raw) : raw;
  if (typeof text !== 'string' || !/^[1-9][0-9]{0,15}$/.test(text)) {
    throw new WorkerEventError('malformed worker event: invocationId must be a positive integer id (a string of digits)');
  }
  const id = Number(text);
  if (!Number.isSafeInteger(id)) throw new WorkerEventError('malformed worker event: invocationId is out of range');
  return { invocationId: id };
}

/** The payload the controller sends. */
export function workerEventPayload(invocationId: number): string {
  // The same text as JSON.stringify({ invocationId: String(invocationId) }): a number's digits need no escaping.
  return `{"invocationId":"${invocationId}"}`;
}
