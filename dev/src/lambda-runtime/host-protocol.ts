// Messages between the runtime and a function host process (over the Node IPC channel), with type guards
// for both ends: neither side trusts what arrives on the channel.

export interface InvokeMessage {
  type: 'invoke';
  requestId: string;
  /** The event, as the JSON text the caller sent. */
  payload: string;
  /** Epoch milliseconds at which the runtime kills the process. */
  deadlineMs: number;
  invokedFunctionArn: string;
}

export interface ErrorDetails {
  errorType: string;
  errorMessage: string;
  trace: string[];
}

export type HostMessage =
  | { type: 'ready' }
  | ({ type: 'init-error' } & ErrorDetails)
  | { type: 'result'; requestId: string; payload: string }
  | ({ type: 'error'; requestId: string } & ErrorDetails);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}

function hasErrorDetails(value: Record<string, unknown>): boolean {
  return typeof value.errorType === 'string' && typeof value.errorMessage === 'string' && isStringArray(value.trace);
}

export function isInvokeMessage(value: unknown): value is InvokeMessage {
  return (
    isRecord(value) &&
    value.type === 'invoke' &&
    typeof value.requestId === 'string' &&
    typeof value.payload === 'string' &&
    typeof value.deadlineMs === 'number' &&
    typeof value.invokedFunctionArn === 'string'
  );
}

export function isHostMessage(value: unknown): value is HostMessage {
  if (!isRecord(value)) return false;
  switch (value.type) {
    case 'ready':
      return true;
    case 'init-error':
      return hasErrorDetails(value);
    case 'result':
      return typeof value.requestId === 'string' && typeof value.payload === 'string';
    case 'error':
      return typeof value.requestId === 'string' && hasErrorDetails(value);
    default:
      return false;
  }
}

/** Error details of anything a handler throws or rejects with, in the shape the Node.js runtime reports. */
export function describeThrown(thrown: unknown): ErrorDetails {
  if (thrown instanceof Error) {
    const trace = (thrown.stack ?? `${thrown.name}: ${thrown.message}`).split('\n');
    return { errorType: thrown.name || 'Error', errorMessage: thrown.message, trace };
  }
  if (typeof thrown === 'string') return { errorType: 'string', errorMessage: thrown, trace: [] };
  let text: string;
  try {
    text = JSON.stringify(thrown) ?? String(thrown);
  } catch {
    text = String(thrown);
  }
  return { errorType: typeof thrown, errorMessage: text, trace: [] };
}
