// The worker side of the invocation protocol (docs/architecture.md §4 and §6):
//   claim (created|pending -> ready) -> lease due tasks and move to running -> for each task: record its
//   start, run the handler, record the outcome -> give back what was not started -> succeeded.
// A delivery whose claim changes no row is a duplicate, a retry or a late arrival: it touches no task.
// A worker that cannot renew its heartbeat fences itself (lease-keeper.ts): it stops, and writes nothing.
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { backoffMs, type BackoffPolicy } from './backoff.ts';
import { WorkerConfigError, withinTime, workerPool } from './database.ts';
import { mismatch, rowFunction, runningFunction } from './function-identity.ts';
import { jsonLogger, withFields, type WorkerLogger } from './logger.ts';
import { parseWorkerEvent } from './event.ts';
import { LeaseKeeper, type StopReason } from './lease-keeper.ts';
import { retryBriefly } from './retry-briefly.ts';
import type { LambdaContextLike, TaskContext, TaskWorkerHandler, TaskWorkerOptions, WorkerSummary } from './types.ts';
import {
  claimInvocation,
  completeTask,
  dispatchedFunction,
  failTask,
  finishInvocation,
  heartbeat,
  leaseTasks,
  releaseUnstarted,
  startTask,
  type ClaimedInvocation,
  type LeasedTask,
  type Queryable,
} from './worker-store.ts';
import { storableJson } from './storable.ts';
import { errorCode, isRefusedValueError, isRetryableWriteError } from './write-errors.ts';

const DEFAULT_MIN_TIME_TO_START_TASK_MS = 60_000;
const DEFAULT_STOP_BEFORE_TIMEOUT_MS = 3_000;
/** Retries of a write that failed (the database is unreachable, or no connection was free). */
const WRITE_RETRY: BackoffPolicy = { initialMs: 100, maxMs: 2_000 };
/** How long the function check and the claim are retried; without a lease there is no fence to bound them. */
const PRE_CLAIM_RETRY_BUDGET_MS = 5_000;
/**
 * How long one attempt of the function check or the claim may wait for its answer: a pooled connection the
 * network dropped without a word (a failover, a NAT's idle timeout while the function was frozen) would
 * otherwise hold it for the pool's 35 s, past the budget, and the delivery would be lost. The retry goes out
 * on a fresh connection; a claim that did commit is answered again (its claim token).
 */
const PRE_CLAIM_ATTEMPT_MS = 2_500;
/** What to do when the database cannot take a claim token, by the SQLSTATE it answered (worker-store.ts). */
const CLAIM_TOKEN_FIX: Record<string, string> = {
  '42883': 'migrate the database (lambda-task-pool migrate, or upgrade the controller)',
  '42501': 'grant EXECUTE on ltp.worker_claim(bigint, text, uuid) to the worker role (lambda-task-pool migrate --role-prefix PREFIX)',
};

function errorText(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

const STOP_CODES: Record<StopReason, string> = { ended: 'StoppedByController', timeout: 'OutOfTime', fenced: 'Fenced' };
const RELEASE_REASONS: Record<string, string> = {
  none: 'released unstarted',
  NoTimeToStart: 'released unstarted: the function had too little time left to start it',
  OutOfTime: 'released unstarted: the function was about to time out',
  StoppedByController: 'released unstarted: the controller ended the invocation',
};

/**
 * Refuses timing options that are not numbers of milliseconds: `Number(process.env.X)` of an unset variable
 * is NaN, and a NaN stop margin aborted every invocation at once (OutOfTime) while a NaN heartbeat interval
 * renewed every millisecond.
 */
function checkTimings(options: TaskWorkerOptions<unknown, unknown>): void {
  const limits: Array<[name: keyof TaskWorkerOptions<unknown, unknown>, least: number]> = [
    ['minTimeToStartTaskMs', 0],
    ['stopBeforeTimeoutMs', 0],
    ['heartbeatIntervalMs', 1],
  ];
  for (const [name, least] of limits) {
    const value = options[name];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < least) {
      throw new WorkerConfigError(
        `taskWorker: ${name} must be a number of milliseconds${least > 0 ? ' above 0' : ', 0 or more'} (got ${typeof value === 'number' ? String(value) : typeof value})`,
      );
    }
  }
}

export function taskWorker<P = unknown, R = unknown>(options: TaskWorkerOptions<P, R>): TaskWorkerHandler {
  checkTimings(options as TaskWorkerOptions<unknown, unknown>);
  const base: WorkerLogger = options.logger ?? jsonLogger();
  // Said once per handler, not on every invocation of a warm function.
  const warned: Warned = { intervalCapped: false, claimWithoutToken: false };

  return async function handler(event: unknown, context?: LambdaContextLike): Promise<WorkerSummary> {
    const { invocationId } = parseWorkerEvent(event);
    const logger = withFields(base, { ...(context?.awsRequestId ? { awsRequestId: context.awsRequestId } : {}) });
    let db = await workerPool(options.databaseUrl);
    const summary: WorkerSummary = { invocationId, outcome: 'skipped', leased: 0, started: 0, done: 0, failed: 0, retried: 0, released: 0 };

    // Retried for a few seconds: one stale pooled connection must not fail the delivery (retry-briefly.ts).
    // An attempt that waits out its time sets the pool aside: every connection in it may be dead alike, and
    // the retry goes out on a new one (renewWorkerPool).
    const beforeClaim = <T>(what: string, call: (queryable: Queryable) => Promise<T>) =>
      retryBriefly(
        () =>
          withinTime(options.databaseUrl, db, PRE_CLAIM_ATTEMPT_MS, call, (renewed) => {
            db = renewed;
          }),
        {
          policy: WRITE_RETRY,
          budgetMs: PRE_CLAIM_RETRY_BUDGET_MS,
          onRetry: (attempt, waitMs, error) =>
            logger.warn('database call before the claim failed; retrying', {
              call: what,
              invocation: invocationId,
              attempt,
              retryInMs: waitMs,
              error: errorText(error),
            }),
        },
      );

    // A forged or misrouted event (another pool's invocation id, sent to this function) touches nothing.
    const running = runningFunction(process.env, context?.invokedFunctionArn);
    if (running) {
      const row = await beforeClaim('check function', (queryable) => dispatchedFunction(queryable, invocationId));
      const wrong = row && mismatch(rowFunction(row.functionName, row.functionQualifier), running);
      if (wrong) {
        logger.warn('delivery refused: the invocation belongs to another function', { invocation: invocationId, detail: wrong });
        return { ...summary, reason: 'WrongFunction' };
      }
    }

    // Every attempt of this run's claim carries one token: a claim that committed but whose answer was lost
    // is answered again on retry, where a duplicate delivery (another run, another token) is refused.
    const claimToken = randomUUID();
    const warnWithoutToken = (sqlState: string) => {
      if (warned.claimWithoutToken) return;
      warned.claimWithoutToken = true;
      logger.warn('claiming without a claim token: a claim whose answer is lost will waste its invocation', {
        sqlState,
        fix: CLAIM_TOKEN_FIX[sqlState],
      });
    };
    let claimSentAt = 0;
    const claim = await beforeClaim('claim', (queryable) => {
      // Dated when the attempt that takes the row is sent: never later than its write of the heartbeat.
      claimSentAt = performance.now();
      return claimInvocation(queryable, {
        id: invocationId,
        requestId: context?.awsRequestId,
        claimToken,
        onWithoutToken: warnWithoutToken,
      });
    });
    if (!claim.claimed) {
      logger.info('delivery skipped: invocation already past its start', { invocation: invocationId, status: claim.status });
      return { ...summary, reason: claim.status };
    }
    const run = new InvocationRun({ db, invocation: claim.invocation, options, context, summary, claimSentAt, logger, warned });
    try {
      return await run.execute();
    } finally {
      run.close();
    }
  };
}

type Persisted<T> = { ok: true; value: T } | { ok: false };
type Warned = { intervalCapped: boolean; claimWithoutToken: boolean };
type Db = pg.Pool;

/** One claimed invocation, from lease to finish. */
class InvocationRun<P, R> {
  private readonly log: WorkerLogger;
  private readonly keeper: LeaseKeeper;
  private readonly minTimeToStart: number;
  /** Set aside for a new pool when a heartbeat waits out its time (renewWorkerPool): later writes use the new one. */
  private db: Db;
  private readonly invocation: ClaimedInvocation;
  private readonly summary: WorkerSummary;

  constructor(
    private readonly args: {
      db: Db;
      invocation: ClaimedInvocation;
      options: TaskWorkerOptions<P, R>;
      context: LambdaContextLike | undefined;
      summary: WorkerSummary;
      claimSentAt: number;
      logger: WorkerLogger;
      warned: Warned;
    },
  ) {
    const { invocation, options } = args;
    this.db = args.db;
    this.invocation = invocation;
    this.summary = args.summary;
    this.minTimeToStart = options.minTimeToStartTaskMs ?? DEFAULT_MIN_TIME_TO_START_TASK_MS;
    this.log = withFields(args.logger, { invocation: invocation.id, queue: invocation.queue });
    this.keeper = new LeaseKeeper(
      {
        heartbeatTimeoutMs: invocation.heartbeatTimeoutSeconds * 1000,
        intervalMs: options.heartbeatIntervalMs,
        onIntervalCapped: (requestedMs, usedMs) => {
          if (args.warned.intervalCapped) return;
          args.warned.intervalCapped = true;
          this.log.warn('heartbeatIntervalMs is too long for the heartbeat timeout: renewing more often', {
            requestedMs,
            usedMs,
            heartbeatTimeoutMs: invocation.heartbeatTimeoutSeconds * 1000,
          });
        },
        // A beat waits no longer than the interval: one stuck on a connection the network dropped would hold
        // back every renewal after it (one beat at a time), and fence a healthy worker.
        beat: (timeoutMs) =>
          withinTime(
            options.databaseUrl,
            this.db,
            timeoutMs,
            (queryable) => heartbeat(queryable, invocation.id),
            (renewed) => {
              this.db = renewed;
            },
          ),
        onStop: (reason, detail) => {
          const fields = { reason: STOP_CODES[reason], detail };
          if (reason === 'fenced') this.log.warn('invocation stopping', fields);
          else this.log.info('invocation stopping', fields);
        },
        onBeatError: (error) => this.log.warn('heartbeat failed', { error: errorText(error) }),
      },
      args.claimSentAt,
    );
    // Never stop earlier than half the least time a task may start with.
    const stopBefore = options.stopBeforeTimeoutMs ?? Math.min(DEFAULT_STOP_BEFORE_TIMEOUT_MS, Math.floor(this.minTimeToStart / 2));
    this.keeper.stopBeforeDeadline(this.remainingTimeMs(), stopBefore);
  }

  close(): void {
    this.keeper.close();
  }

  private remainingTimeMs(): number {
    return this.args.context?.getRemainingTimeInMillis?.() ?? Number.POSITIVE_INFINITY;
  }

  private noTimeMessage(): string {
    return `${Math.round(this.remainingTimeMs())} ms of the function's time was left; a task starts only with at least ${this.minTimeToStart} ms left (minTimeToStartTaskMs): give the function a longer timeout`;
  }

  async execute(): Promise<WorkerSummary> {
    const { summary, invocation } = this;
    // Not even one task could start: lease nothing, and say why on the row.
    if (this.remainingTimeMs() < this.minTimeToStart) {
      const message = this.noTimeMessage();
      await this.persist('finish', () =>
        finishInvocation(this.db, { id: invocation.id, outcome: 'failed', code: 'NoTimeToStart', message }),
      );
      this.log.warn('invocation started no task: not enough time left', { detail: message });
      summary.outcome = 'failed';
      summary.reason = 'NoTimeToStart';
      return summary;
    }

    let tasks: LeasedTask[] = [];
    const started = new Set<number>();
    try {
      const leaseSentAt = performance.now();
      const leased = await this.persist('lease', () => leaseTasks(this.db, { invocationId: invocation.id }));
      if (!leased.ok) return this.fencedSummary();
      if (leased.value === undefined) {
        summary.outcome = 'stopped';
        this.log.info('invocation ended by the controller before it leased tasks');
        return summary;
      }
      this.keeper.renewed(leaseSentAt);
      tasks = leased.value;
      summary.leased = tasks.length;
      this.log.info('invocation running', { leased: tasks.length });

      let outOfTime = false;
      for (const task of tasks) {
        if (this.keeper.stopped) break;
        if (this.remainingTimeMs() < this.minTimeToStart) {
          outOfTime = true;
          this.log.info('releasing unstarted tasks: not enough time left', { remainingMs: Math.round(this.remainingTimeMs()) });
          break;
        }
        const sentAt = performance.now();
        const start = await this.persist('start', () => startTask(this.db, { taskId: task.id, invocationId: invocation.id }));
        if (!start.ok) break;
        if (start.value === undefined) {
          this.log.info('task not started: its lease or the invocation ended', { task: task.id });
          break;
        }
        this.keeper.renewed(sentAt);
        started.add(task.id);
        summary.started += 1;
        if (!(await this.runOne(task, start.value))) break;
      }

      if (this.keeper.fenced) return this.fencedSummary();
      const stop = this.keeper.stopped;
      const unstarted = tasks.filter((t) => !started.has(t.id)).map((t) => t.id);
      const code = stop ? STOP_CODES[stop] : outOfTime ? 'NoTimeToStart' : undefined;
      const released = await this.persist('release', () =>
        releaseUnstarted(this.db, {
          invocationId: invocation.id,
          taskIds: unstarted,
          reason: RELEASE_REASONS[code ?? 'none'] ?? 'released unstarted',
        }),
      );
      if (!released.ok) return this.fencedSummary();
      summary.released = released.value;

      if (stop === 'ended') {
        summary.outcome = 'stopped';
        this.log.info('invocation stopped early by the controller', counts(summary));
        return summary;
      }
      const finish =
        summary.leased === 0
          ? { outcome: 'succeeded' as const, code: 'NothingToLease', message: 'no due task was waiting when it started' }
          : summary.started === 0 && code === 'NoTimeToStart'
            ? { outcome: 'failed' as const, code, message: this.noTimeMessage() }
            : code
              ? {
                  outcome: 'succeeded' as const,
                  code,
                  message: `${summary.released} ${summary.released === 1 ? 'task' : 'tasks'} given back unstarted`,
                }
              : { outcome: 'succeeded' as const };
      const finished = await this.persist('finish', () => finishInvocation(this.db, { id: invocation.id, ...finish }));
      if (!finished.ok) return this.fencedSummary();
      if (finished.value) {
        summary.outcome = finish.outcome;
        if (finish.code) summary.reason = finish.code;
        const fields = { outcome: finish.outcome, code: finish.code, ...counts(summary) };
        if (summary.started === 0) this.log.warn('invocation finished without starting a task', fields);
        else this.log.info('invocation finished', fields);
      } else {
        // The controller ended the row meanwhile (orphaned or terminated); it keeps that verdict.
        summary.outcome = 'stopped';
        this.log.info('invocation ended by the controller before it could finish', counts(summary));
      }
      return summary;
    } catch (error) {
      // Something other than the database failing (a bug, or a permanent SQL error): give back what was
      // not started and end the row failed, unless the lease may have passed.
      this.log.error('invocation failed', { error: errorText(error) });
      if (!this.keeper.fenced) {
        await releaseUnstarted(this.db, {
          invocationId: invocation.id,
          taskIds: tasks.filter((t) => !started.has(t.id)).map((t) => t.id),
          reason: 'released: the worker failed',
        }).catch((e: unknown) => {
          this.log.error('could not give back the unstarted tasks: the stranded sweep will, after the heartbeat timeout', {
            error: errorText(e),
          });
          return 0;
        });
        await finishInvocation(this.db, { id: invocation.id, outcome: 'failed', code: 'WorkerError', message: errorText(error) }).catch(
          (e: unknown) => {
            this.log.error('could not end the invocation failed: it stays running until its heartbeat times out', {
              error: errorText(e),
            });
            return false;
          },
        );
      }
      throw error;
    }
  }

  /** Runs one started task and records its outcome. False when the invocation must stop writing. */
  private async runOne(task: LeasedTask, attempt: number): Promise<boolean> {
    const { invocation, summary, log } = this;
    const begun = Date.now();
    const ctx: TaskContext = {
      invocationId: invocation.id,
      signal: this.keeper.signal,
      remainingTimeMs: () => this.remainingTimeMs(),
      logger: log,
    };
    let outcome: { ok: true; resultJson: string } | { ok: false; error: string };
    try {
      // The payload is the producer's JSON; P is the shape the function's author declares for it.
      const result = await this.args.options.process(
        { id: task.id, queue: task.queue, payload: task.payload as P, attempt, createdAt: task.createdAt },
        ctx,
      );
      outcome = { ok: true, resultJson: storableJson(result) };
    } catch (error) {
      outcome = { ok: false, error: errorText(error) };
    }
    if (this.keeper.fenced) {
      log.warn('task finished after its lease may have passed; nothing is recorded', { task: task.id, durationMs: Date.now() - begun });
      return false;
    }
    if (outcome.ok) {
      const recorded = await this.recordDone(task, attempt, begun, outcome.resultJson);
      if (typeof recorded === 'boolean') return recorded;
      outcome = { ok: false, error: recorded.refused };
    }
    const error = outcome.error;
    const retryDelayMs = backoffMs(attempt, { initialMs: invocation.retryInitialDelayMs, maxMs: invocation.retryMaxDelayMs });
    const fail = (text: string) =>
      this.persist('fail', () => failTask(this.db, { taskId: task.id, invocationId: invocation.id, error: text, retryDelayMs }));
    const failed = await fail(error).catch((refusal: unknown) => {
      if (!isRefusedValueError(refusal)) throw refusal;
      // The error text itself is refused (a character the database's encoding lacks): record the attempt
      // with a reason it can always store; the log line below keeps the text.
      return fail(`the database refused this attempt's error text (SQLSTATE ${String(errorCode(refusal))}); see the function's log`);
    });
    if (!failed.ok) return false;
    if (failed.value === 'failed') summary.failed += 1;
    if (failed.value === 'created') summary.retried += 1;
    log.warn('task attempt failed', {
      task: task.id,
      attempt,
      next: failed.value ?? 'lease lost',
      ...(failed.value === 'created' ? { retryInMs: retryDelayMs } : {}),
      error,
    });
    return true;
  }

  /**
   * Records a task's result. False when the invocation must stop writing; `refused`, with why, when the
   * database refuses the result itself: no retry would change that, so that attempt fails, not the invocation.
   */
  private async recordDone(task: LeasedTask, attempt: number, begun: number, resultJson: string): Promise<boolean | { refused: string }> {
    const { invocation, summary, log } = this;
    let done: Persisted<boolean>;
    try {
      done = await this.persist('complete', () => completeTask(this.db, { taskId: task.id, invocationId: invocation.id, resultJson }));
    } catch (error) {
      if (!isRefusedValueError(error)) throw error;
      return { refused: `the database refused the task's result (SQLSTATE ${String(errorCode(error))}): ${errorText(error)}` };
    }
    if (!done.ok) return false;
    if (done.value) {
      summary.done += 1;
      log.info('task done', { task: task.id, attempt, durationMs: Date.now() - begun });
    } else {
      log.warn('task finished after its lease was taken back; the result is not recorded', {
        task: task.id,
        durationMs: Date.now() - begun,
      });
    }
    return true;
  }

  /**
   * Runs a write until it succeeds, retrying a database that is unreachable or busy with jittered backoff,
   * for as long as the lease is certainly held. At the fence it gives up ({ ok: false }): the write may
   * still land later, and every write is conditional on the lease, so a late one changes nothing wrong.
   */
  private async persist<T>(what: string, write: () => Promise<T>): Promise<Persisted<T>> {
    for (let attempt = 1; ; attempt += 1) {
      if (this.keeper.fenced) return { ok: false };
      const fence = this.keeper.untilFenced().then(() => 'fenced' as const);
      try {
        const value = await Promise.race([write(), fence]);
        if (value === 'fenced') return { ok: false };
        return { ok: true, value };
      } catch (error) {
        if (!isRetryableWriteError(error)) throw error;
        const waitMs = Math.min(backoffMs(attempt, WRITE_RETRY), this.keeper.msUntilFence());
        this.log.warn('database write failed; retrying', { write: what, attempt, retryInMs: waitMs, error: errorText(error) });
        await new Promise((resolve) => setTimeout(resolve, waitMs));
      }
    }
  }

  private fencedSummary(): WorkerSummary {
    this.summary.outcome = 'fenced';
    this.log.warn(
      'invocation fenced: it lost touch with the database for close to its heartbeat timeout; its tasks go back when the controller orphans it',
      counts(this.summary),
    );
    return this.summary;
  }
}

function counts(s: WorkerSummary) {
  return { leased: s.leased, started: s.started, done: s.done, failed: s.failed, retried: s.retried, released: s.released };
}
