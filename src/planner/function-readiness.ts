// The FunctionReady verdict: is the function configured so that the count can stay exact, and does the
// ledger show it running? Pure: the guard passes in what Lambda said and what the rows show.
//
// Lambda keeps its own queue of accepted async events. The count stays exact only if every invocation
// the controller starts can run at once (reserved concurrency >= maxConcurrency), lives long enough in
// that queue to start (maximum event age >= startTimeoutSeconds), is not delivered again by Lambda after a
// failure (async retries 0: the controller retries tasks itself), and has the time to run its tasks.
import type { PoolSpec } from '../api/types.ts';
import type { FunctionSettings } from '../lambda/function-settings.ts';

export type FunctionReadyReason =
  | 'FunctionConfigured'
  | 'NotChecked'
  | 'FunctionNotFound'
  | 'FunctionNotActive'
  | 'ReservedConcurrencyTooLow'
  | 'FunctionTimeoutTooShort'
  | 'EventAgeTooShort'
  | 'AsyncRetriesEnabled'
  | 'InvocationsNotStarting'
  | 'PermissionMissing'
  | 'AsyncConfigNotSet';

export interface FunctionVerdict {
  status: 'True' | 'False' | 'Unknown';
  reason: FunctionReadyReason;
  message: string;
  /** The function cannot run the pool's work at all now (missing, not Active, never starting, reserved 0): the pool is Degraded too. */
  blocking?: boolean;
}

const BLOCKING: ReadonlySet<FunctionReadyReason> = new Set(['FunctionNotFound', 'FunctionNotActive', 'InvocationsNotStarting']);

/** What the ledger shows about the pool's recent invocations. */
export interface StartSignals {
  /** Invocations Lambda accepted that have not started, and how long the oldest has waited. */
  waiting: number;
  oldestWaitMs: number;
  /** The median delay from invoke to start of recently started invocations; undefined with no history. */
  usualStartDelayMs?: number;
  /** Whether any invocation started after the oldest waiting one was invoked. */
  startedSince: boolean;
  /** The median run time of recently finished tasks (started to finished). */
  taskDurationMs?: number;
}

/**
 * Accepted invocations waiting this many times their usual start delay, and at least the floor, with none
 * starting: the floor is a minute, or a quarter of the start timeout when that is shorter.
 */
const STALL_FACTOR = 5;
const STALL_FLOOR_MS = 60_000;
/** How long the oldest accepted invocation may wait with none starting before the ledger is asked in detail. */
export function stallFloorMs(spec: Pick<PoolSpec, 'startTimeoutSeconds'>): number {
  return Math.min(STALL_FLOOR_MS, (spec.startTimeoutSeconds * 1000) / 4);
}

/** Time the worker keeps for itself around the tasks: start, claim, the final writes. */
const WORKER_OVERHEAD_SECONDS = 5;

const ACCESS_CODES = new Set(['AccessDeniedException', 'AccessDenied', 'UnrecognizedClientException', 'ExpiredTokenException']);

/** How long an invocation needs to run tasksPerInvocation tasks of the recent median duration. */
export function neededTimeoutSeconds(spec: Pick<PoolSpec, 'tasksPerInvocation'>, taskDurationMs: number): number {
  return Math.ceil((spec.tasksPerInvocation * taskDurationMs) / 1000) + WORKER_OVERHEAD_SECONDS;
}

export function functionVerdict(args: {
  spec: Pick<PoolSpec, 'maxConcurrency' | 'tasksPerInvocation' | 'startTimeoutSeconds' | 'function'>;
  settings: FunctionSettings | undefined;
  signals: StartSignals | undefined;
}): FunctionVerdict {
  const { spec, settings, signals } = args;
  const fn = spec.function.name;
  const problems: Array<{ reason: FunctionReadyReason; message: string; blocking?: boolean }> = [];

  const stalled =
    signals !== undefined &&
    signals.waiting > 0 &&
    !signals.startedSince &&
    signals.oldestWaitMs >
      Math.max(Math.min(STALL_FLOOR_MS, (spec.startTimeoutSeconds * 1000) / 4), STALL_FACTOR * (signals.usualStartDelayMs ?? 0));
  if (stalled) {
    const usual = signals.usualStartDelayMs !== undefined ? ` (they usually start within ${seconds(signals.usualStartDelayMs)})` : '';
    problems.push({
      reason: 'InvocationsNotStarting',
      message:
        `${signals.waiting} invocations Lambda accepted have waited up to ${seconds(signals.oldestWaitMs)} to start${usual} and none has started since: ` +
        `${fn} may be failing before it runs (an init error, throttling, reserved concurrency 0); see its logs and metrics in CloudWatch`,
    });
  }

  const missing = settings?.problems.find((p) => p.code === 'ResourceNotFoundException' && p.action === 'lambda:GetFunctionConfiguration');
  if (missing) problems.push({ reason: 'FunctionNotFound', message: `function ${fn} was not found: ${missing.message}` });

  const c = settings?.configuration;
  if (c && (c.state !== 'Active' || c.lastUpdateStatus === 'Failed')) {
    const why = c.stateReason ? `: ${c.stateReason}` : '';
    const state = c.state !== 'Active' ? `state is ${c.state}` : `last update failed`;
    problems.push({ reason: 'FunctionNotActive', message: `${fn} cannot run: its ${state}${why}` });
  }
  const reserved = settings?.reservedConcurrency;
  if (typeof reserved === 'number' && reserved < spec.maxConcurrency) {
    problems.push({
      reason: 'ReservedConcurrencyTooLow',
      blocking: reserved === 0,
      message:
        reserved === 0
          ? `${fn} has reserved concurrency 0: Lambda throttles every invocation. Set it to at least maxConcurrency (${spec.maxConcurrency})`
          : `${fn} has reserved concurrency ${reserved}, below maxConcurrency ${spec.maxConcurrency}: invocations beyond ${reserved} wait in Lambda's hidden queue. ` +
            `Set reserved concurrency to at least ${spec.maxConcurrency}, or lower maxConcurrency`,
    });
  }
  if (c && signals?.taskDurationMs !== undefined) {
    const needed = neededTimeoutSeconds(spec, signals.taskDurationMs);
    if (c.timeoutSeconds < needed) {
      problems.push({
        reason: 'FunctionTimeoutTooShort',
        message:
          `${fn} times out after ${c.timeoutSeconds}s, but ${spec.tasksPerInvocation} tasks of about ${seconds(signals.taskDurationMs)} need about ${needed}s: ` +
          `raise its timeout to at least ${needed}s or lower tasksPerInvocation`,
      });
    }
  }
  const age = settings?.asyncConfig;
  if (age && age.maximumEventAgeSeconds < spec.startTimeoutSeconds) {
    problems.push({
      reason: 'EventAgeTooShort',
      message:
        `${fn} drops events older than ${age.maximumEventAgeSeconds}s, but the pool waits ${spec.startTimeoutSeconds}s (startTimeoutSeconds) for an invocation to start: ` +
        `set MaximumEventAgeInSeconds to at least ${spec.startTimeoutSeconds}, lower startTimeoutSeconds, or set spec.function.asyncConfig: Managed`,
    });
  }
  if (age && age.maximumRetryAttempts > 0) {
    const where = age.configured ? 'its event invoke config' : "AWS's default (no event invoke config)";
    problems.push({
      reason: 'AsyncRetriesEnabled',
      message:
        `Lambda retries failed events of ${fn} ${age.maximumRetryAttempts} times (${where}): a retried event starts an invocation the ledger did not ask for. ` +
        `The controller retries tasks itself; set MaximumRetryAttempts to 0, or set spec.function.asyncConfig: Managed`,
    });
  }

  const denied = (settings?.problems ?? []).filter((p) => ACCESS_CODES.has(p.code));
  const deniedNote = denied.length > 0 ? ` (not checked, permission missing: ${denied.map((p) => p.action).join(', ')})` : '';
  const first = problems[0];
  if (first) {
    const rest = problems.slice(1).map((p) => p.message);
    const blocking = problems.some((p) => p.blocking || BLOCKING.has(p.reason));
    return {
      status: 'False',
      reason: first.reason,
      message: [first.message, ...rest].join('; ') + deniedNote,
      ...(blocking ? { blocking } : {}),
    };
  }
  if (denied.length > 0) {
    return {
      status: 'Unknown',
      reason: 'PermissionMissing',
      message: `could not check ${fn}: the controller may not call ${denied.map((p) => p.action).join(', ')} (${denied[0]?.code}); grant them as docs/deploy.md lists`,
    };
  }
  if (!settings || !c) {
    const why = settings?.problems[0] ? `: ${settings.problems[0].code}: ${settings.problems[0].message}` : ' yet';
    return { status: 'Unknown', reason: 'NotChecked', message: `the configuration of ${fn} was not read${why}` };
  }
  return {
    status: 'True',
    reason: 'FunctionConfigured',
    message:
      `${fn} is Active; timeout ${c.timeoutSeconds}s, memory ${c.memoryMb} MB, ` +
      `reserved concurrency ${reserved === null ? 'none (unreserved pool)' : reserved === undefined ? 'unknown' : reserved}` +
      (age ? `, async retries ${age.maximumRetryAttempts}, maximum event age ${age.maximumEventAgeSeconds}s` : ''),
  };
}

function seconds(ms: number): string {
  return ms >= 10_000 ? `${Math.round(ms / 1000)}s` : `${(ms / 1000).toFixed(1)}s`;
}
