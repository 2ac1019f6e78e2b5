// The entry point of a function process: loads one handler module, then runs invocations one at a time as
// the runtime sends them over IPC, like a Lambda execution environment running the Node.js runtime.
// Started by process-pool.ts as: node --import tsx function-host.ts MODULE_PATH EXPORT_NAME
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describeThrown, type HostMessage, type InvokeMessage, isInvokeMessage } from './host-protocol.ts';

/** The context object a handler receives, with the fields the Node.js runtime provides. */
export interface LambdaContext {
  awsRequestId: string;
  functionName: string;
  functionVersion: string;
  invokedFunctionArn: string;
  memoryLimitInMB: string;
  logGroupName: string;
  logStreamName: string;
  callbackWaitsForEmptyEventLoop: boolean;
  getRemainingTimeInMillis(): number;
}

type Callback = (error?: unknown, result?: unknown) => void;
type Handler = (event: unknown, context: LambdaContext, callback: Callback) => unknown;

function isHandler(value: unknown): value is Handler {
  return typeof value === 'function';
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && 'then' in value && typeof value.then === 'function';
}

function send(message: HostMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send || !process.connected) {
      resolve();
      return;
    }
    process.send(message, undefined, {}, () => resolve());
  });
}

function exportOf(module: unknown, name: string): unknown {
  if (typeof module !== 'object' || module === null) return undefined;
  const direct: unknown = Reflect.get(module, name);
  if (direct !== undefined) return direct;
  const fallback: unknown = Reflect.get(module, 'default');
  if (typeof fallback === 'object' && fallback !== null) return Reflect.get(fallback, name);
  return undefined;
}

async function loadHandler(modulePath: string, exportName: string): Promise<Handler | undefined> {
  let module: unknown;
  try {
    module = await import(pathToFileURL(modulePath).href);
  } catch (error) {
    const details = describeThrown(error);
    await send({
      type: 'init-error',
      ...details,
      errorType: 'Runtime.ImportModuleError',
      errorMessage: `${details.errorType}: ${details.errorMessage}`,
    });
    return undefined;
  }
  const handler = exportOf(module, exportName);
  if (!isHandler(handler)) {
    const base = path.basename(modulePath, path.extname(modulePath));
    await send({
      type: 'init-error',
      errorType: 'Runtime.HandlerNotFound',
      errorMessage: `${base}.${exportName} is undefined or not exported`,
      trace: [],
    });
    return undefined;
  }
  return handler;
}

function contextFor(message: InvokeMessage): LambdaContext {
  const env = process.env;
  return {
    awsRequestId: message.requestId,
    functionName: env.AWS_LAMBDA_FUNCTION_NAME ?? '',
    functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION ?? '$LATEST',
    invokedFunctionArn: message.invokedFunctionArn,
    memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE ?? '128',
    logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME ?? '',
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME ?? '',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, message.deadlineMs - Date.now()),
  };
}

/** Runs the handler: a returned promise or value, or (for three-argument handlers) the callback. */
function callHandler(handler: Handler, event: unknown, context: LambdaContext): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const callback: Callback = (error, result) => (error === undefined || error === null ? resolve(result) : reject(error));
    const returned = handler(event, context, callback);
    if (isThenable(returned)) returned.then(resolve, reject);
    else if (handler.length < 3) resolve(returned);
  });
}

let current: string | undefined;

async function runInvocation(handler: Handler, message: InvokeMessage): Promise<void> {
  current = message.requestId;
  try {
    const event: unknown = JSON.parse(message.payload);
    const result = await callHandler(handler, event, contextFor(message));
    const payload = result === undefined ? 'null' : JSON.stringify(result);
    await send({ type: 'result', requestId: message.requestId, payload });
  } catch (error) {
    await send({ type: 'error', requestId: message.requestId, ...describeThrown(error) });
  } finally {
    current = undefined;
  }
}

async function reportFatal(error: unknown, errorType: string): Promise<void> {
  process.stderr.write(`${String(error instanceof Error ? error.stack : error)}\n`);
  if (current !== undefined) {
    const details = describeThrown(error);
    await send({ type: 'error', requestId: current, ...details, errorType });
  }
  process.exit(129);
}

async function main(): Promise<void> {
  const [modulePath, exportName] = process.argv.slice(2);
  if (!process.send || modulePath === undefined || exportName === undefined) {
    process.stderr.write('function-host: start me with fork(), a module path and an export name\n');
    process.exit(2);
  }
  // The runtime owns this process: when it goes away, so do we.
  process.on('disconnect', () => process.exit(0));
  process.on('uncaughtException', (error) => void reportFatal(error, 'Runtime.UncaughtException'));
  process.on('unhandledRejection', (reason) => void reportFatal(reason, 'Runtime.UnhandledPromiseRejection'));

  const handler = await loadHandler(modulePath, exportName);
  if (handler === undefined) return;
  let busy = false;
  process.on('message', (message: unknown) => {
    if (!isInvokeMessage(message) || busy) return;
    busy = true;
    void runInvocation(handler, message).finally(() => {
      busy = false;
    });
  });
  await send({ type: 'ready' });
}

void main();
