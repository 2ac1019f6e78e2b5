// The engine of the local Lambda runtime: registered functions, the Invoke operation's checks, the async
// event queues and their scheduler, execution slots (reserved and runtime-wide concurrency), and the record
// of every event. HTTP lives in server.ts; decisions live in delivery-policy.ts; processes in process-pool.ts.
import { existsSync } from 'node:fs';
import type { Logger } from '../../../src/ops/logger.ts';
import { AsyncQueue, type PendingDelivery } from './async-queue.ts';
import {
  type FunctionRegistration,
  type LambdaFunctionConfig,
  LambdaConfigError,
  parseHandlerSpec,
  resolveFunctionConfig,
} from './config.ts';
import {
  decideAfterFailure,
  decideThrottle,
  DUPLICATE_CRASH_SLOT,
  eventExpiresAt,
  planEvent,
  THROTTLE_RETRY_AFTER_SECONDS,
} from './delivery-policy.ts';
import { LambdaApiError, throttled } from './errors.ts';
import { type AccountScope, functionArn, type FunctionTarget } from './function-name.ts';
import type { ErrorDetails } from './host-protocol.ts';
import { LogBuffer, type LogLine } from './log-sink.ts';
import { type ExecutionOutcome, type ExecutionResult, ProcessPool } from './process-pool.ts';
import { randomFor, type Random } from './random.ts';
import {
  addCounters,
  type Counters,
  countOutcome,
  countRejection,
  type DeliveryOutcome,
  type DeliveryRecord,
  type DropReason,
  emptyCounters,
  type EventRecord,
  type RuntimeStats,
} from './stats.ts';

/** Errors that mean the function's handler could not be loaded at all. */
const HANDLER_LOAD_ERRORS = new Set(['Runtime.ImportModuleError', 'Runtime.HandlerNotFound', 'Runtime.UserCodeSyntaxError']);

export const INVOCATION_TYPES = ['RequestResponse', 'Event', 'DryRun'] as const;
export type InvocationType = (typeof INVOCATION_TYPES)[number];

/** Payload limits of the Invoke operation. */
export const MAX_SYNC_PAYLOAD_BYTES = 6 * 1024 * 1024;
export const MAX_ASYNC_PAYLOAD_BYTES = 1024 * 1024;
/** The most lines of output kept per function. */
export const LOG_LINES_KEPT = 500;
/** The most event records kept per function (the oldest go first). */
export const EVENT_RECORDS_KEPT = 50_000;
/** Default runtime-wide limit of concurrent executions (the account's unreserved concurrency). */
export const DEFAULT_CONCURRENCY_LIMIT = 10;

export interface InvokeRequest {
  /** The raw FunctionName path parameter and Qualifier query parameter. */
  functionName: string;
  qualifier: string | undefined;
  /** The X-Amz-Invocation-Type header; undefined means RequestResponse. */
  invocationType: string | undefined;
  logType: string | undefined;
  /** The request body (possibly cut short when it was too large) and its real size. */
  body: Buffer;
  bodyBytes: number;
  requestId: string;
}

export type InvokeResult =
  | { kind: 'accepted'; requestId: string }
  | { kind: 'dryRun'; requestId: string }
  | { kind: 'completed'; requestId: string; payload: string; functionError?: 'Unhandled'; logResult?: string };

export interface EngineOptions {
  scope: AccountScope;
  seed: number;
  logger: Logger;
  concurrencyLimit: number;
}

interface EventPayload {
  payload: string;
  invokedFunctionArn: string;
  crashAfterMs: Array<number | undefined>;
  /** Deliveries of this event queued or running; the payload is let go at zero. */
  outstanding: number;
}

interface FunctionEntry {
  config: LambdaFunctionConfig;
  readonly random: Random;
  readonly queue: AsyncQueue;
  readonly pool: ProcessPool;
  readonly logs: LogBuffer;
  readonly counters: Counters;
  readonly events: Map<string, EventRecord>;
  readonly payloads: Map<string, EventPayload>;
  running: number;
  maxConcurrent: number;
  removed: boolean;
  timer: NodeJS.Timeout | undefined;
  timerAt: number | undefined;
}

interface IdleWaiter {
  resolve(): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout | undefined;
}

function outcomeName(outcome: ExecutionOutcome): DeliveryOutcome {
  return outcome.kind;
}

function errorBody(error: ErrorDetails): string {
  const body: { errorType: string; errorMessage: string; trace?: string[] } = {
    errorType: error.errorType,
    errorMessage: error.errorMessage,
  };
  if (error.trace.length > 0) body.trace = error.trace;
  return JSON.stringify(body);
}

function isInvocationType(value: string): value is InvocationType {
  return INVOCATION_TYPES.some((type) => type === value);
}

export class LambdaEngine {
  private readonly functions = new Map<string, FunctionEntry>();
  /** Rejections that name no registered function (unknown function, malformed name). */
  private readonly unattributed = emptyCounters();
  private readonly retiring = new Set<Promise<void>>();
  private idleWaiters: IdleWaiter[] = [];
  private running = 0;
  private maxConcurrent = 0;
  private rotation = 0;
  private stopped = false;

  constructor(private readonly options: EngineOptions) {}

  get scope(): AccountScope {
    return this.options.scope;
  }

  // ---- registry -------------------------------------------------------------------------------

  register(registration: FunctionRegistration): LambdaFunctionConfig {
    if (this.stopped) throw new Error('the Lambda runtime is stopped');
    const prefix = typeof registration.name === 'string' ? registration.name : '';
    const config = resolveFunctionConfig(registration, { keyPrefix: prefix });
    return this.registerConfig(config);
  }

  /** Registers an already complete config (from loadLambdaConfig), validating it again all the same. */
  registerConfig(input: LambdaFunctionConfig): LambdaFunctionConfig {
    if (this.stopped) throw new Error('the Lambda runtime is stopped');
    const config = resolveFunctionConfig(input, { keyPrefix: input.name });
    const { modulePath } = parseHandlerSpec(config.handler);
    if (!existsSync(modulePath)) throw new LambdaConfigError(`${config.name}.handler`, `module not found: ${modulePath}`);
    const existing = this.functions.get(config.name);
    if (existing) {
      existing.config = config;
      existing.pool.recycle();
      this.options.logger.info('lambda function updated', { function: config.name, handler: config.handler });
      this.pump();
      return config;
    }
    const logs = new LogBuffer(LOG_LINES_KEPT);
    const entry: FunctionEntry = {
      config,
      random: randomFor(this.options.seed, config.name),
      queue: new AsyncQueue(),
      logs,
      counters: emptyCounters(),
      events: new Map(),
      payloads: new Map(),
      running: 0,
      maxConcurrent: 0,
      removed: false,
      timer: undefined,
      timerAt: undefined,
      pool: new ProcessPool({
        config: () => entry.config,
        scope: this.options.scope,
        logger: this.options.logger,
        onOutput: (line) => this.onOutput(logs, line),
      }),
    };
    this.functions.set(config.name, entry);
    this.options.logger.info('lambda function registered', { function: config.name, handler: config.handler });
    return config;
  }

  /** Changes settings that need no new process (reserved concurrency, async settings): applied from the next scheduling decision. */
  updateSettings(input: LambdaFunctionConfig): LambdaFunctionConfig {
    const entry = this.entry(input.name);
    entry.config = resolveFunctionConfig(input, { keyPrefix: input.name });
    this.pump();
    return entry.config;
  }

  /** Removes a function: its queued events are dropped (reason `deleted`) and its processes killed. */
  unregister(name: string): void {
    const entry = this.entry(name);
    this.functions.delete(name);
    entry.removed = true;
    clearTimeout(entry.timer);
    const now = Date.now();
    for (const delivery of entry.queue.drain()) {
      if (!delivery.duplicate) this.drop(entry, delivery.requestId, 'deleted', now);
    }
    const retiring = entry.pool.stop();
    this.retiring.add(retiring);
    void retiring.finally(() => this.retiring.delete(retiring));
    this.options.logger.info('lambda function unregistered', { function: name });
    this.checkIdle();
  }

  has(name: string): boolean {
    return this.functions.has(name);
  }

  config(name: string): LambdaFunctionConfig | undefined {
    return this.functions.get(name)?.config;
  }

  names(): string[] {
    return [...this.functions.keys()];
  }

  // ---- the Invoke operation ---------------------------------------------------------------------

  async invoke(request: InvokeRequest, resolveTarget: () => FunctionTarget): Promise<InvokeResult> {
    let entry: FunctionEntry | undefined;
    try {
      const target = resolveTarget();
      entry = this.functions.get(target.name);
      if (!entry) {
        throw new LambdaApiError(
          'ResourceNotFoundException',
          `Function not found: ${functionArn(this.scope, target.name, target.qualifier)}`,
        );
      }
      return await this.invokeFunction(entry, target, request);
    } catch (error) {
      if (error instanceof LambdaApiError) countRejection(entry?.counters ?? this.unattributed, error.type);
      throw error;
    }
  }

  private async invokeFunction(entry: FunctionEntry, target: FunctionTarget, request: InvokeRequest): Promise<InvokeResult> {
    const type = request.invocationType ?? 'RequestResponse';
    if (!isInvocationType(type)) {
      throw new LambdaApiError(
        'InvalidParameterValueException',
        `1 validation error detected: Value '${type}' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]`,
      );
    }
    if (entry.config.state !== 'Active') {
      throw new LambdaApiError(
        'ResourceConflictException',
        `The operation cannot be performed at this time. The function is currently in the following state: ${entry.config.state}`,
      );
    }
    const limit = type === 'Event' ? MAX_ASYNC_PAYLOAD_BYTES : MAX_SYNC_PAYLOAD_BYTES;
    if (request.bodyBytes > limit) {
      const operation = type === 'Event' ? 'InvokeAsync' : 'Invoke';
      throw new LambdaApiError('RequestTooLargeException', `Request must be smaller than ${limit} bytes for the ${operation} operation`);
    }
    const text = request.bodyBytes === 0 ? '{}' : request.body.toString('utf8');
    try {
      JSON.parse(text);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new LambdaApiError(
        'InvalidRequestContentException',
        `Could not parse request body into json: Could not parse payload into json: ${reason}`,
      );
    }
    if (type === 'DryRun') {
      entry.counters.dryRuns++;
      return { kind: 'dryRun', requestId: request.requestId };
    }
    const throttle = decideThrottle(entry.random, entry.config.async.throttleRate);
    if (throttle) throw throttled(throttle);
    const invokedFunctionArn = functionArn(this.scope, entry.config.name, target.qualifier);
    if (type === 'Event') {
      this.accept(entry, { requestId: request.requestId, payload: text, payloadBytes: request.bodyBytes, invokedFunctionArn });
      return { kind: 'accepted', requestId: request.requestId };
    }
    return this.invokeSync(entry, { requestId: request.requestId, payload: text, invokedFunctionArn, tail: request.logType === 'Tail' });
  }

  private async invokeSync(
    entry: FunctionEntry,
    input: { requestId: string; payload: string; invokedFunctionArn: string; tail: boolean },
  ): Promise<InvokeResult> {
    const reserved = entry.config.reservedConcurrency;
    if (reserved !== undefined && entry.running >= reserved) {
      throw throttled({ reason: 'ReservedFunctionConcurrentInvocationLimitExceeded', retryAfterSeconds: THROTTLE_RETRY_AFTER_SECONDS });
    }
    if (this.running >= this.options.concurrencyLimit) {
      throw throttled({ reason: 'ConcurrentInvocationLimitExceeded', retryAfterSeconds: THROTTLE_RETRY_AFTER_SECONDS });
    }
    entry.counters.syncInvocations++;
    const startedAt = Date.now();
    const result = await this.execute(entry, {
      requestId: input.requestId,
      payload: input.payload,
      invokedFunctionArn: input.invokedFunctionArn,
    });
    let outcome = result.outcome;
    if (outcome.kind === 'success' && Buffer.byteLength(outcome.payload) > MAX_SYNC_PAYLOAD_BYTES) {
      const errorMessage = `Response payload size exceeded maximum allowed payload size (${MAX_SYNC_PAYLOAD_BYTES} bytes).`;
      outcome = { kind: 'error', error: { errorType: 'Function.ResponseSizeTooLarge', errorMessage, trace: [] } };
    }
    const completed: InvokeResult = {
      kind: 'completed',
      requestId: input.requestId,
      payload: outcome.kind === 'success' ? outcome.payload : errorBody(outcome.error),
    };
    if (outcome.kind !== 'success') completed.functionError = 'Unhandled';
    this.warnIfHandlerBroken(entry, outcome);
    if (input.tail) completed.logResult = await this.logTail(entry, input.requestId, startedAt);
    this.options.logger.debug('lambda invocation finished', {
      function: entry.config.name,
      requestId: input.requestId,
      outcome: outcome.kind,
      durationMs: Date.now() - startedAt,
    });
    return completed;
  }

  /**
   * A handler that cannot be loaded (a module that does not import, an export that is missing) fails every
   * invocation the same way: say so where a developer looks, not only at debug level.
   */
  private warnIfHandlerBroken(entry: FunctionEntry, outcome: ExecutionResult['outcome']): void {
    if (outcome.kind === 'success' || !HANDLER_LOAD_ERRORS.has(outcome.error.errorType)) return;
    this.options.logger.warn('lambda function could not run its handler', {
      function: entry.config.name,
      handler: entry.config.handler,
      errorType: outcome.error.errorType,
      error: outcome.error.errorMessage.slice(0, 2000),
    });
  }

  /** The last 4 KB of an invocation's log, base64, as X-Amz-Log-Result carries it. */
  private async logTail(entry: FunctionEntry, requestId: string, startedAt: number): Promise<string> {
    // Output written just before the result may still be in the pipe: give it a turn of the event loop.
    await new Promise<void>((resolve) => setTimeout(resolve, 5));
    const lines = entry.logs.forRequest(requestId).map((line) => line.line);
    const duration = (Date.now() - startedAt).toFixed(2);
    const text = [
      `START RequestId: ${requestId} Version: $LATEST`,
      ...lines,
      `END RequestId: ${requestId}`,
      `REPORT RequestId: ${requestId}\tDuration: ${duration} ms\tMemory Size: ${entry.config.memoryMb} MB`,
      '',
    ].join('\n');
    const bytes = Buffer.from(text, 'utf8');
    return bytes.subarray(Math.max(0, bytes.length - 4096)).toString('base64');
  }

  // ---- async events -----------------------------------------------------------------------------

  private accept(
    entry: FunctionEntry,
    input: { requestId: string; payload: string; payloadBytes: number; invokedFunctionArn: string },
  ): void {
    const now = Date.now();
    const settings = entry.config.async;
    const plan = planEvent(entry.random, settings);
    const record: EventRecord = {
      requestId: input.requestId,
      function: entry.config.name,
      payloadBytes: input.payloadBytes,
      acceptedAt: now,
      deliveries: [],
    };
    entry.events.set(input.requestId, record);
    if (entry.events.size > EVENT_RECORDS_KEPT) {
      const oldest = entry.events.keys().next();
      if (!oldest.done) entry.events.delete(oldest.value);
    }
    entry.counters.accepted++;
    this.options.logger.debug('lambda event accepted', {
      function: entry.config.name,
      requestId: input.requestId,
      bytes: input.payloadBytes,
    });
    if (plan.dropped) {
      this.drop(entry, input.requestId, 'random', now);
      return;
    }
    const expiresAt = eventExpiresAt(now, settings.maximumEventAgeSeconds);
    const firstDueAt = now + plan.startDelayMs;
    const payload: EventPayload = {
      payload: input.payload,
      invokedFunctionArn: input.invokedFunctionArn,
      crashAfterMs: plan.crashAfterMs,
      outstanding: 0,
    };
    entry.payloads.set(input.requestId, payload);
    this.enqueue(entry, { requestId: input.requestId, attempt: 1, duplicate: false, dueAt: firstDueAt, expiresAt });
    if (plan.duplicateDelayMs !== undefined) {
      this.enqueue(entry, {
        requestId: input.requestId,
        attempt: 1,
        duplicate: true,
        dueAt: firstDueAt + plan.duplicateDelayMs,
        expiresAt,
      });
    }
    this.pump();
  }

  private enqueue(entry: FunctionEntry, delivery: PendingDelivery): void {
    const payload = entry.payloads.get(delivery.requestId);
    if (payload) payload.outstanding++;
    entry.queue.push(delivery);
  }

  private settle(entry: FunctionEntry, requestId: string): void {
    const payload = entry.payloads.get(requestId);
    if (!payload) return;
    payload.outstanding--;
    if (payload.outstanding <= 0) entry.payloads.delete(requestId);
  }

  private drop(entry: FunctionEntry, requestId: string, reason: DropReason, now: number): void {
    const record = entry.events.get(requestId);
    if (record && record.dropped === undefined) {
      record.dropped = reason;
      record.droppedAt = now;
    }
    entry.counters.dropped[reason]++;
    this.options.logger.debug('lambda event dropped', { function: entry.config.name, requestId, reason });
  }

  /**
   * Starts every delivery that is due and has a free slot, drops expired ones, and sets each function's
   * timer for the next moment something falls due. Functions take turns for the runtime-wide slots.
   */
  private pump(): void {
    if (this.stopped) return;
    const now = Date.now();
    const entries = [...this.functions.values()];
    if (entries.length > 0) {
      const start = this.rotation++ % entries.length;
      entries.push(...entries.splice(0, start));
    }
    for (const entry of entries) {
      for (const expired of entry.queue.takeExpired(now)) {
        this.settle(entry, expired.requestId);
        if (!expired.duplicate) this.drop(entry, expired.requestId, 'eventAge', now);
      }
    }
    let started = true;
    while (started && this.running < this.options.concurrencyLimit) {
      started = false;
      for (const entry of entries) {
        if (this.running >= this.options.concurrencyLimit) break;
        const reserved = entry.config.reservedConcurrency;
        if (reserved !== undefined && entry.running >= reserved) continue;
        const delivery = entry.queue.takeDue(now);
        if (delivery === undefined) continue;
        this.startDelivery(entry, delivery, now);
        started = true;
      }
    }
    for (const entry of entries) this.scheduleWake(entry, now);
    this.checkIdle();
  }

  private scheduleWake(entry: FunctionEntry, now: number): void {
    const wake = entry.queue.nextWakeAt(now);
    if (wake === entry.timerAt) return;
    clearTimeout(entry.timer);
    entry.timer = undefined;
    entry.timerAt = wake;
    if (wake === undefined) return;
    entry.timer = setTimeout(
      () => {
        entry.timer = undefined;
        entry.timerAt = undefined;
        this.pump();
      },
      Math.max(0, wake - now),
    );
  }

  private startDelivery(entry: FunctionEntry, delivery: PendingDelivery, now: number): void {
    const payload = entry.payloads.get(delivery.requestId);
    const record = entry.events.get(delivery.requestId);
    if (!payload) return;
    const deliveryRecord: DeliveryRecord = { attempt: delivery.attempt, duplicate: delivery.duplicate, startedAt: now };
    record?.deliveries.push(deliveryRecord);
    entry.counters.delivered++;
    if (delivery.duplicate) entry.counters.duplicates++;
    if (delivery.attempt > 1) entry.counters.retries++;
    const crashAfterMs = payload.crashAfterMs[delivery.duplicate ? DUPLICATE_CRASH_SLOT : delivery.attempt - 1];
    const request = { requestId: delivery.requestId, payload: payload.payload, invokedFunctionArn: payload.invokedFunctionArn };
    void this.execute(entry, crashAfterMs === undefined ? request : { ...request, crashAfterMs })
      .then((result) => this.finishDelivery(entry, delivery, deliveryRecord, result))
      .catch((error: unknown) => {
        const message = error instanceof Error ? error.message : String(error);
        this.options.logger.error('lambda delivery bookkeeping failed', {
          function: entry.config.name,
          requestId: delivery.requestId,
          error: message,
        });
      });
  }

  private finishDelivery(entry: FunctionEntry, delivery: PendingDelivery, record: DeliveryRecord, result: ExecutionResult): void {
    const now = Date.now();
    const outcome = outcomeName(result.outcome);
    record.endedAt = now;
    record.outcome = outcome;
    record.coldStart = result.coldStart;
    if (result.pid !== undefined) record.pid = result.pid;
    if (result.outcome.kind !== 'success') record.errorType = result.outcome.error.errorType;
    this.warnIfHandlerBroken(entry, result.outcome);
    this.options.logger.debug('lambda delivery finished', {
      function: entry.config.name,
      requestId: delivery.requestId,
      attempt: delivery.attempt,
      duplicate: delivery.duplicate,
      outcome,
      durationMs: now - record.startedAt,
    });
    if (outcome !== 'success' && !delivery.duplicate && !entry.removed && !this.stopped) {
      const next = decideAfterFailure({ attempt: delivery.attempt, settings: entry.config.async, expiresAt: delivery.expiresAt, now });
      if (next.kind === 'retry') {
        this.enqueue(entry, { ...delivery, attempt: next.attempt, dueAt: next.dueAt });
      } else if (next.kind === 'expired') {
        this.drop(entry, delivery.requestId, 'eventAge', now);
      }
    }
    this.settle(entry, delivery.requestId);
    this.pump();
  }

  /** Runs one execution in a slot; every execution, sync or async, passes here. */
  private async execute(
    entry: FunctionEntry,
    request: { requestId: string; payload: string; invokedFunctionArn: string; crashAfterMs?: number },
  ): Promise<ExecutionResult> {
    entry.running++;
    this.running++;
    entry.maxConcurrent = Math.max(entry.maxConcurrent, entry.running);
    this.maxConcurrent = Math.max(this.maxConcurrent, this.running);
    let result: ExecutionResult;
    try {
      result = await entry.pool.run(request);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.options.logger.error('lambda execution failed to run', {
        function: entry.config.name,
        requestId: request.requestId,
        error: message,
      });
      result = {
        outcome: { kind: 'error', error: { errorType: 'Runtime.Unknown', errorMessage: message, trace: [] } },
        coldStart: false,
        pid: undefined,
      };
    } finally {
      entry.running--;
      this.running--;
    }
    countOutcome(entry.counters, outcomeName(result.outcome));
    return result;
  }

  // ---- output, stats, idle, stop ------------------------------------------------------------------

  private onOutput(logs: LogBuffer, line: LogLine): void {
    logs.push(line);
    this.options.logger.debug('lambda function output', {
      function: line.function,
      stream: line.stream,
      pid: line.pid,
      requestId: line.requestId,
      line: line.line,
    });
  }

  private entry(name: string): FunctionEntry {
    const entry = this.functions.get(name);
    if (!entry) throw new Error(`no function named ${JSON.stringify(name)} is registered`);
    return entry;
  }

  acceptedCount(name: string): number {
    return this.entry(name).counters.accepted;
  }

  stats(name?: string): RuntimeStats {
    const now = Date.now();
    const entries = name === undefined ? [...this.functions.values()] : [this.entry(name)];
    const counters = emptyCounters();
    if (name === undefined) addCounters(counters, this.unattributed);
    let queued = 0;
    let waitingForRetry = 0;
    let warmProcesses = 0;
    let coldStarts = 0;
    for (const entry of entries) {
      addCounters(counters, entry.counters);
      queued += entry.queue.size;
      waitingForRetry += entry.queue.countRetriesWaiting(now);
      warmProcesses += entry.pool.size;
      coldStarts += entry.pool.coldStarts;
    }
    const one = name === undefined ? undefined : entries[0];
    return {
      ...counters,
      running: one ? one.running : this.running,
      queued,
      waitingForRetry,
      maxConcurrent: one ? one.maxConcurrent : this.maxConcurrent,
      warmProcesses,
      coldStarts,
    };
  }

  events(name?: string): EventRecord[] {
    const entries = name === undefined ? [...this.functions.values()] : [this.entry(name)];
    const records = entries.flatMap((entry) => [...entry.events.values()]);
    records.sort((a, b) => a.acceptedAt - b.acceptedAt);
    return structuredClone(records);
  }

  logs(name: string): LogLine[] {
    return this.entry(name).logs.all();
  }

  pids(name?: string): number[] {
    const entries = name === undefined ? [...this.functions.values()] : [this.entry(name)];
    return entries.flatMap((entry) => entry.pool.pids());
  }

  private busy(): boolean {
    if (this.running > 0) return true;
    for (const entry of this.functions.values()) if (entry.queue.size > 0) return true;
    return false;
  }

  private describeBusy(): string {
    const stats = this.stats();
    return `${stats.running} running, ${stats.queued} queued (${stats.waitingForRetry} waiting for a retry)`;
  }

  idle(timeoutMs?: number): Promise<void> {
    if (this.stopped || !this.busy()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter: IdleWaiter = { resolve, reject, timer: undefined };
      if (timeoutMs !== undefined) {
        waiter.timer = setTimeout(() => {
          this.idleWaiters = this.idleWaiters.filter((other) => other !== waiter);
          reject(new Error(`the Lambda runtime was not idle after ${timeoutMs} ms: ${this.describeBusy()}`));
        }, timeoutMs);
      }
      this.idleWaiters.push(waiter);
    });
  }

  private checkIdle(): void {
    if (this.idleWaiters.length === 0 || (!this.stopped && this.busy())) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const waiter of waiters) {
      clearTimeout(waiter.timer);
      waiter.resolve();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const entries = [...this.functions.values()];
    for (const entry of entries) {
      clearTimeout(entry.timer);
      entry.timer = undefined;
      entry.queue.drain();
    }
    await Promise.all([...entries.map((entry) => entry.pool.stop()), ...this.retiring]);
    this.checkIdle();
  }
}
