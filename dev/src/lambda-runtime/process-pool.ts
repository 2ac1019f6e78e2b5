// The execution environments of one function: real Node processes running function-host.ts, each running
// one invocation at a time. A free warm process is reused; otherwise a new one cold-starts. A process is
// killed (its whole process group, SIGKILL) at the invocation deadline, on an injected crash, and on stop.
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Logger } from '../../../src/ops/logger.ts';
import { type LambdaFunctionConfig, parseHandlerSpec } from './config.ts';
import type { AccountScope } from './function-name.ts';
import { type ErrorDetails, type HostMessage, type InvokeMessage, isHostMessage } from './host-protocol.ts';
import { lineSplitter, type LogLine } from './log-sink.ts';

export type ExecutionOutcome =
  | { kind: 'success'; payload: string }
  | { kind: 'error'; error: ErrorDetails }
  | { kind: 'timeout'; error: ErrorDetails }
  | { kind: 'crash'; error: ErrorDetails };

export interface ExecutionRequest {
  requestId: string;
  /** The event as JSON text. */
  payload: string;
  invokedFunctionArn: string;
  /** When set, the process is killed (SIGKILL) this long after the invocation starts. */
  crashAfterMs?: number;
}

export interface ExecutionResult {
  outcome: ExecutionOutcome;
  coldStart: boolean;
  pid: number | undefined;
}

export interface ProcessPoolOptions {
  /** The function's current config; read at every cold start and invocation. */
  config: () => LambdaFunctionConfig;
  scope: AccountScope;
  logger: Logger;
  onOutput: (line: LogLine) => void;
  /** How long a cold start may take to load the handler module. */
  initTimeoutMs?: number;
  /** How long an unused warm process is kept. */
  idleTimeoutMs?: number;
}

export const DEFAULT_INIT_TIMEOUT_MS = 30_000;
export const DEFAULT_IDLE_TIMEOUT_MS = 10 * 60_000;
/** How long stop() waits for a killed process to be reaped before giving up on it. */
const REAP_TIMEOUT_MS = 5_000;

const here = fileURLToPath(import.meta.url);
/** function-host.ts next to this file (function-host.js once compiled). */
const HOST_PATH = path.join(path.dirname(here), `function-host${path.extname(here)}`);

/**
 * tsx's loader, resolved from this package so that handlers anywhere on disk can be TypeScript.
 * (createRequire rather than import.meta.resolve: the latter is missing when a test runner compiles to CJS.)
 */
function tsxLoaderUrl(): string {
  return pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
}

/** Variables copied from the runtime's own environment; everything else a function needs is configured. */
const INHERITED_ENV = ['PATH', 'HOME', 'LANG', 'TMPDIR', 'USER'] as const;

function logStreamName(now: Date): string {
  const day = now.toISOString().slice(0, 10).replaceAll('-', '/');
  return `${day}/[$LATEST]${randomBytes(16).toString('hex')}`;
}

/** The environment of a new execution environment: the Lambda variables plus the function's own. */
export function lambdaEnvironment(config: LambdaFunctionConfig, scope: AccountScope, now: Date): Record<string, string> {
  const spec = parseHandlerSpec(config.handler);
  const env: Record<string, string> = {};
  for (const key of INHERITED_ENV) {
    const value = process.env[key];
    if (value !== undefined) env[key] = value;
  }
  Object.assign(env, config.environment, {
    AWS_LAMBDA_FUNCTION_NAME: config.name,
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(config.memoryMb),
    AWS_REGION: scope.region,
    AWS_DEFAULT_REGION: scope.region,
    AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs24.x',
    AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${config.name}`,
    AWS_LAMBDA_LOG_STREAM_NAME: logStreamName(now),
    _HANDLER: `${path.basename(spec.modulePath, path.extname(spec.modulePath))}.${spec.exportName}`,
    LAMBDA_TASK_ROOT: path.dirname(spec.modulePath),
    TZ: ':UTC',
  });
  return env;
}

/** Kills a process and everything it started (it leads its own process group). */
function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // ESRCH: the group is already gone.
  }
}

interface Waiter {
  onMessage(message: HostMessage): void;
  onExit(code: number | null, signal: NodeJS.Signals | null): void;
}

class FunctionProcess {
  status: 'starting' | 'idle' | 'busy' | 'dead' = 'starting';
  /**
   * The invocation the process runs, or ran last: its output lines are that request's. It is kept after the
   * result, because output and result come on separate pipes and the last lines may be read after it.
   */
  requestId: string | undefined;
  waiter: Waiter | undefined;
  idleTimer: NodeJS.Timeout | undefined;
  readonly exited: Promise<void>;

  constructor(
    readonly child: ChildProcess,
    readonly generation: number,
  ) {
    this.exited = new Promise((resolve) => {
      child.once('exit', () => resolve());
      child.once('error', () => resolve());
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  kill(): void {
    killGroup(this.child.pid);
    this.child.kill('SIGKILL');
  }
}

function exitError(requestId: string, code: number | null, signal: NodeJS.Signals | null): ErrorDetails {
  const how = signal ? `signal: ${signal === 'SIGKILL' ? 'killed' : signal}` : `exit status ${code ?? 'unknown'}`;
  return { errorType: 'Runtime.ExitError', errorMessage: `RequestId: ${requestId} Error: Runtime exited with error: ${how}`, trace: [] };
}

export class ProcessPool {
  private readonly processes = new Set<FunctionProcess>();
  private idle: FunctionProcess[] = [];
  private generation = 0;
  private stopped = false;
  private coldStartCount = 0;

  constructor(private readonly options: ProcessPoolOptions) {}

  /** Processes alive now (starting, idle or busy). */
  get size(): number {
    return this.processes.size;
  }

  get idleCount(): number {
    return this.idle.length;
  }

  get coldStarts(): number {
    return this.coldStartCount;
  }

  pids(): number[] {
    return [...this.processes].flatMap((proc) => (proc.pid === undefined ? [] : [proc.pid]));
  }

  /** After a config change: idle processes go now, busy ones when they finish. */
  recycle(): void {
    this.generation++;
    for (const proc of this.idle) this.discard(proc);
    this.idle = [];
  }

  async run(request: ExecutionRequest): Promise<ExecutionResult> {
    if (this.stopped)
      return { outcome: { kind: 'crash', error: exitError(request.requestId, null, 'SIGKILL') }, coldStart: false, pid: undefined };
    let proc = this.takeIdle();
    let coldStart = false;
    if (proc === undefined) {
      coldStart = true;
      this.coldStartCount++;
      const started = await this.start();
      if ('error' in started) return { outcome: { kind: 'error', error: started.error }, coldStart, pid: started.pid };
      proc = started.proc;
    }
    const outcome = await this.execute(proc, request);
    return { outcome, coldStart, pid: proc.pid };
  }

  /** Kills every process and waits until each one is reaped. */
  async stop(): Promise<void> {
    this.stopped = true;
    const all = [...this.processes];
    for (const proc of all) this.discard(proc);
    this.idle = [];
    await Promise.all(
      all.map((proc) => Promise.race([proc.exited, new Promise<void>((resolve) => setTimeout(resolve, REAP_TIMEOUT_MS).unref())])),
    );
  }

  private takeIdle(): FunctionProcess | undefined {
    // Most recently used first, as Lambda tends to reuse the warmest environment.
    for (let proc = this.idle.pop(); proc !== undefined; proc = this.idle.pop()) {
      clearTimeout(proc.idleTimer);
      proc.idleTimer = undefined;
      if (proc.status === 'idle') return proc;
    }
    return undefined;
  }

  private release(proc: FunctionProcess): void {
    if (this.stopped || proc.status === 'dead' || proc.generation !== this.generation) {
      this.discard(proc);
      return;
    }
    proc.status = 'idle';
    proc.idleTimer = setTimeout(() => {
      this.idle = this.idle.filter((other) => other !== proc);
      this.discard(proc);
    }, this.options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS);
    proc.idleTimer.unref();
    this.idle.push(proc);
  }

  private discard(proc: FunctionProcess): void {
    clearTimeout(proc.idleTimer);
    proc.idleTimer = undefined;
    proc.status = 'dead';
    proc.kill();
  }

  private spawn(config: LambdaFunctionConfig): FunctionProcess {
    const spec = parseHandlerSpec(config.handler);
    const child = fork(HOST_PATH, [spec.modulePath, spec.exportName], {
      execArgv: ['--import', tsxLoaderUrl()],
      env: lambdaEnvironment(config, this.options.scope, new Date()),
      cwd: path.dirname(spec.modulePath),
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      // Its own process group, so that killing it also kills what it started (tsx's esbuild service).
      detached: true,
      serialization: 'json',
    });
    const proc = new FunctionProcess(child, this.generation);
    this.processes.add(proc);
    const pid = child.pid ?? -1;
    for (const stream of ['stdout', 'stderr'] as const) {
      const splitter = lineSplitter((line) => {
        const entry: LogLine = { at: Date.now(), function: config.name, stream, pid, line };
        if (proc.requestId !== undefined) entry.requestId = proc.requestId;
        this.options.onOutput(entry);
      });
      const source = child[stream];
      source?.on('data', (chunk: Buffer) => splitter.write(chunk));
      source?.on('end', () => splitter.flush());
    }
    child.on('message', (message: unknown) => {
      if (isHostMessage(message)) proc.waiter?.onMessage(message);
    });
    const onGone = (code: number | null, signal: NodeJS.Signals | null): void => {
      const wasDead = proc.status === 'dead';
      proc.status = 'dead';
      clearTimeout(proc.idleTimer);
      this.processes.delete(proc);
      this.idle = this.idle.filter((other) => other !== proc);
      killGroup(child.pid);
      if (!wasDead) this.options.logger.debug('function process exited', { function: config.name, pid, code, signal });
      proc.waiter?.onExit(code, signal);
    };
    child.once('exit', onGone);
    child.once('error', (error) => {
      this.options.logger.warn('function process failed', { function: config.name, pid, error: error.message });
      onGone(null, null);
    });
    return proc;
  }

  /** Cold start: spawn a process and wait until it has loaded the handler. */
  private start(): Promise<{ proc: FunctionProcess } | { error: ErrorDetails; pid: number | undefined }> {
    const config = this.options.config();
    const proc = this.spawn(config);
    const initTimeoutMs = this.options.initTimeoutMs ?? DEFAULT_INIT_TIMEOUT_MS;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        fail({ errorType: 'Runtime.InitTimeout', errorMessage: `Init phase did not finish within ${initTimeoutMs} ms`, trace: [] });
      }, initTimeoutMs);
      const fail = (error: ErrorDetails): void => {
        clearTimeout(timer);
        proc.waiter = undefined;
        this.discard(proc);
        resolve({ error, pid: proc.pid });
      };
      proc.waiter = {
        onMessage: (message) => {
          if (message.type === 'ready') {
            clearTimeout(timer);
            proc.waiter = undefined;
            if (proc.status === 'dead') {
              resolve({ error: { errorType: 'Runtime.ExitError', errorMessage: 'Runtime exited during init', trace: [] }, pid: proc.pid });
              return;
            }
            proc.status = 'busy';
            resolve({ proc });
          } else if (message.type === 'init-error') {
            fail({ errorType: message.errorType, errorMessage: message.errorMessage, trace: message.trace });
          }
        },
        onExit: (code, signal) => {
          const how = signal ? `signal: ${signal}` : `exit status ${code ?? 'unknown'}`;
          fail({ errorType: 'Runtime.ExitError', errorMessage: `Runtime exited during init: ${how}`, trace: [] });
        },
      };
    });
  }

  private execute(proc: FunctionProcess, request: ExecutionRequest): Promise<ExecutionOutcome> {
    const config = this.options.config();
    const timeoutMs = config.timeoutSeconds * 1000;
    const deadlineMs = Date.now() + timeoutMs;
    proc.status = 'busy';
    proc.requestId = request.requestId;
    return new Promise((resolve) => {
      let settled = false;
      const timers: NodeJS.Timeout[] = [];
      const finish = (outcome: ExecutionOutcome, keep: boolean): void => {
        if (settled) return;
        settled = true;
        for (const timer of timers) clearTimeout(timer);
        proc.waiter = undefined;
        if (keep) {
          this.release(proc);
          resolve(outcome);
          return;
        }
        // The slot is free only once the process is really gone.
        this.discard(proc);
        void proc.exited.then(() => resolve(outcome));
      };
      proc.waiter = {
        onMessage: (message) => {
          if (message.type === 'result' && message.requestId === request.requestId) {
            finish({ kind: 'success', payload: message.payload }, true);
          } else if (message.type === 'error' && message.requestId === request.requestId) {
            const error = { errorType: message.errorType, errorMessage: message.errorMessage, trace: message.trace };
            // An uncaught error takes the whole runtime down; do not hand that process out again.
            finish({ kind: 'error', error }, !message.errorType.startsWith('Runtime.'));
          }
        },
        onExit: (code, signal) => finish({ kind: 'crash', error: exitError(request.requestId, code, signal) }, false),
      };
      timers.push(
        setTimeout(() => {
          const seconds = (timeoutMs / 1000).toFixed(2);
          const error = {
            errorType: 'Sandbox.Timedout',
            errorMessage: `RequestId: ${request.requestId} Error: Task timed out after ${seconds} seconds`,
            trace: [],
          };
          finish({ kind: 'timeout', error }, false);
        }, timeoutMs),
      );
      if (request.crashAfterMs !== undefined) {
        timers.push(
          setTimeout(() => finish({ kind: 'crash', error: exitError(request.requestId, null, 'SIGKILL') }, false), request.crashAfterMs),
        );
      }
      const message: InvokeMessage = {
        type: 'invoke',
        requestId: request.requestId,
        payload: request.payload,
        deadlineMs,
        invokedFunctionArn: request.invokedFunctionArn,
      };
      proc.child.send(message, (error) => {
        if (error) finish({ kind: 'crash', error: exitError(request.requestId, null, null) }, false);
      });
    });
  }
}
