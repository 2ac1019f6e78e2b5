// The worker side of the invocation protocol (DESIGN.md §4 and §6):
//   claim (created|pending -> ready) -> lease tasks and move to running -> process each task with
//   heartbeats -> release what was not started -> succeeded.
// A delivery whose claim changes no row is a duplicate, a retry or a late arrival: it touches no task.
import { createLogger, type Logger } from '../ops/logger.ts';
import { createDb, withTransaction, type Db } from '../store/db.ts';
import { parseDatabaseUrl } from '../store/database-url.ts';
import { claimInvocation, finishInvocation, heartbeat, markRunning, type ClaimedInvocation } from '../store/invocation-store.ts';
import { completeTask, failTask, leaseTasks, releaseUnstarted, type TaskRow } from '../store/task-store.ts';
import { parseWorkerEvent } from './event.ts';
import type { LambdaContextLike, TaskContext, TaskWorkerHandler, TaskWorkerOptions, WorkerSummary } from './types.ts';

const DEFAULT_MIN_TIME_TO_START_TASK_MS = 60_000;

// Connections are reused across warm invocations of the same function instance.
const pools = new Map<string, Db>();

function sharedDb(databaseUrl: string | undefined): Db {
  const target = parseDatabaseUrl(databaseUrl, 'the worker database URL (DATABASE_URL)');
  let db = pools.get(target.url);
  if (!db) {
    db = createDb(target, { max: 2, applicationName: 'lambda-task-pool-worker' });
    pools.set(target.url, db);
  }
  return db;
}

/** Closes the pooled connections (for tests and graceful shutdowns; Lambda never needs it). */
export async function closeWorkerConnections(): Promise<void> {
  const all = [...pools.values()];
  pools.clear();
  await Promise.all(all.map((db) => db.end()));
}

function errorText(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

export function taskWorker<P = unknown, R = unknown>(options: TaskWorkerOptions<P, R>): TaskWorkerHandler {
  const logger: Logger = options.logger ?? createLogger({ component: 'worker', stream: process.stdout });
  const minTimeToStart = options.minTimeToStartTaskMs ?? DEFAULT_MIN_TIME_TO_START_TASK_MS;

  return async function handler(event: unknown, context?: LambdaContextLike): Promise<WorkerSummary> {
    const { invocationId } = parseWorkerEvent(event);
    const db = sharedDb(options.databaseUrl ?? process.env.DATABASE_URL);
    const remainingTimeMs = () => context?.getRemainingTimeInMillis?.() ?? Number.POSITIVE_INFINITY;
    const summary: WorkerSummary = { invocationId, outcome: 'skipped', leased: 0, done: 0, failed: 0, retried: 0, released: 0 };

    const claim = await claimInvocation(db, { id: invocationId, requestId: context?.awsRequestId });
    if (!claim.claimed) {
      logger.info('delivery skipped: invocation already past its start', { invocation: invocationId, status: claim.status });
      return { ...summary, reason: claim.status };
    }
    const invocation = claim.invocation;
    const log = logger.child({ invocation: invocationId, queue: invocation.queue });
    const stop = new AbortController();
    const beat = startHeartbeat({ db, invocation, stop, log, intervalMs: options.heartbeatIntervalMs });

    let tasks: TaskRow[] = [];
    const started = new Set<number>();
    try {
      tasks = await leaseBatch(db, invocation);
      summary.leased = tasks.length;
      log.info('invocation running', { leased: tasks.length });
      const ctx: TaskContext = { invocationId, signal: stop.signal, remainingTimeMs, logger: log };
      for (const task of tasks) {
        if (stop.signal.aborted) break;
        if (remainingTimeMs() < minTimeToStart) {
          log.info('releasing unstarted tasks: not enough time left', { remainingMs: remainingTimeMs() });
          break;
        }
        started.add(task.id);
        await runOne({ db, invocation, task, ctx, options, summary, log });
      }
      summary.released = await releaseUnstarted(db, {
        invocationId,
        taskIds: tasks.filter((t) => !started.has(t.id)).map((t) => t.id),
        reason: stop.signal.aborted ? 'released: invocation ended by the controller' : 'released: the function ran out of time',
      });
      beat.stop();
      if (stop.signal.aborted) {
        summary.outcome = 'stopped';
        log.info('invocation stopped early by the controller', { ...counts(summary) });
      } else if (await finishInvocation(db, { id: invocationId, outcome: 'succeeded' })) {
        summary.outcome = 'succeeded';
        log.info('invocation succeeded', { ...counts(summary) });
      } else {
        // The controller ended the row meanwhile (orphaned or terminated); it keeps that verdict.
        summary.outcome = 'stopped';
        log.info('invocation ended by the controller before it could finish', { ...counts(summary) });
      }
      return summary;
    } catch (error) {
      beat.stop();
      log.error('invocation failed', { error: errorText(error) });
      await releaseUnstarted(db, {
        invocationId,
        taskIds: tasks.filter((t) => !started.has(t.id)).map((t) => t.id),
        reason: 'released: the worker failed',
      }).catch(() => 0);
      await finishInvocation(db, { id: invocationId, outcome: 'failed', code: 'WorkerError', message: errorText(error) }).catch(() => false);
      throw error;
    }
  };
}

function counts(s: WorkerSummary) {
  return { leased: s.leased, done: s.done, failed: s.failed, retried: s.retried, released: s.released };
}

async function leaseBatch(db: Db, invocation: ClaimedInvocation): Promise<TaskRow[]> {
  return withTransaction(db, async (client) => {
    const tasks = await leaseTasks(client, { queue: invocation.queue, invocationId: invocation.id, limit: invocation.tasksPerInvocation });
    if (!(await markRunning(client, { id: invocation.id, tasksLeased: tasks.length }))) {
      // The controller ended the invocation between the claim and the lease: keep nothing.
      throw new InvocationEndedError(invocation.id);
    }
    return tasks;
  }).catch((error: unknown) => {
    if (error instanceof InvocationEndedError) return [];
    throw error;
  });
}

class InvocationEndedError extends Error {
  constructor(id: number) {
    super(`invocation ${id} ended before it leased tasks`);
  }
}

async function runOne<P, R>(args: {
  db: Db;
  invocation: ClaimedInvocation;
  task: TaskRow;
  ctx: TaskContext;
  options: TaskWorkerOptions<P, R>;
  summary: WorkerSummary;
  log: Logger;
}): Promise<void> {
  const { db, invocation, task, ctx, summary, log } = args;
  const begun = Date.now();
  try {
    // The payload is the producer's JSON; P is the shape the function's author declares for it.
    const payload = task.payload as P;
    const result = await args.options.process(
      { id: task.id, queue: task.queue, payload, attempt: task.attempts, createdAt: task.createdAt },
      ctx,
    );
    if (await completeTask(db, { taskId: task.id, invocationId: invocation.id, result })) {
      summary.done += 1;
      log.info('task done', { task: task.id, attempt: task.attempts, durationMs: Date.now() - begun });
    } else {
      log.warn('task finished after its lease was taken back; the result is not recorded', { task: task.id, durationMs: Date.now() - begun });
    }
  } catch (error) {
    const status = await failTask(db, {
      taskId: task.id,
      invocationId: invocation.id,
      error: errorText(error),
      defaultMaxAttempts: invocation.maxTaskAttempts,
    });
    if (status === 'failed') summary.failed += 1;
    if (status === 'created') summary.retried += 1;
    log.warn('task attempt failed', { task: task.id, attempt: task.attempts, next: status ?? 'lease lost', error: errorText(error) });
  }
}

function startHeartbeat(args: {
  db: Db;
  invocation: ClaimedInvocation;
  stop: AbortController;
  log: Logger;
  intervalMs: number | undefined;
}): { stop(): void } {
  const intervalMs = args.intervalMs ?? Math.max(250, (args.invocation.heartbeatTimeoutSeconds * 1000) / 4);
  const timer = setInterval(() => {
    heartbeat(args.db, args.invocation.id)
      .then((live) => {
        if (!live && !args.stop.signal.aborted) {
          args.log.info('invocation ended by the controller; stopping');
          args.stop.abort(new Error('invocation ended by the controller'));
        }
      })
      .catch((error: unknown) => args.log.warn('heartbeat failed', { error: errorText(error) }));
  }, intervalMs);
  return { stop: () => clearInterval(timer) };
}
