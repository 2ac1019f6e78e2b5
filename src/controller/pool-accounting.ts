// What a pool's finished rows cost and how they ended, taken once each from the finished_at feeds:
// tasks finished by result, invocation run time and estimated GB-seconds, wasted and orphaned
// invocations as counters, and a folded Event with the last error when tasks fail for good. A cursor
// starts at the pool's first status write in this process, so a new leader counts from its own start.
import type { Pool } from '../api/types.ts';
import type { Metrics } from '../ops/metrics.ts';
import type { Db } from '../store/db.ts';
import { invocationsFinishedSince, tasksFinishedSince, type FinishedInvocation } from '../store/finished-rows.ts';
import type { EventRecorder } from './events.ts';
import { FinishedCursor } from './finished-cursor.ts';
import { isWasted } from '../planner/waste.ts';

const READ_LIMIT = 5_000;

export interface TaskError {
  taskId: number;
  attempts: number;
  message: string;
  time: Date;
}

/** What the pool's recent finished rows say, for FunctionReady: kept in memory, so no status write reads history for it. */
export interface RecentRuns {
  /** Median run time of the last done tasks. */
  taskDurationMs?: number;
  /** Median delay from invoke to start of the last started invocations. */
  usualStartDelayMs?: number;
  /** The latest start of an invocation this controller saw finish. */
  lastStartAt?: Date;
}

const RECENT_TASKS = 50;
const RECENT_STARTS = 20;

interface PoolCursor {
  invocations: FinishedCursor;
  tasks: FinishedCursor;
  queue: string;
  taskDurations: number[];
  startDelays: number[];
  lastStartAt?: Date;
}

export class PoolAccounting {
  private readonly cursors = new Map<string, PoolCursor>();

  constructor(
    private readonly metrics: Metrics,
    private readonly events: EventRecorder,
    /** The memory of a function as the guard last read it, for GB-seconds; undefined when unknown. */
    private readonly memoryMb: (row: FinishedInvocation) => number | undefined,
  ) {}

  /** Takes what finished since the last call; returns the newest task error among them, if any. */
  async observe(pool: Pool, db: Db, now: Date): Promise<TaskError | undefined> {
    const { uid, namespace, name } = pool.meta;
    const cursor = this.cursors.get(uid);
    if (!cursor || cursor.queue !== pool.spec.queue) {
      this.cursors.set(uid, {
        invocations: new FinishedCursor(now),
        tasks: new FinishedCursor(now),
        queue: pool.spec.queue,
        taskDurations: [],
        startDelays: [],
      });
      return undefined;
    }
    const labels = { namespace, pool: name };
    const [invocationRows, taskRows] = await Promise.all([
      invocationsFinishedSince(db, { poolUid: uid, since: cursor.invocations.readFrom(), limit: READ_LIMIT }),
      tasksFinishedSince(db, { queue: pool.spec.queue, since: cursor.tasks.readFrom(), limit: READ_LIMIT }),
    ]);
    for (const row of cursor.invocations.take(invocationRows, READ_LIMIT)) {
      if (row.readyAt && row.invokedAt) keepLast(cursor.startDelays, row.readyAt.getTime() - row.invokedAt.getTime(), RECENT_STARTS);
      if (row.readyAt && (!cursor.lastStartAt || row.readyAt > cursor.lastStartAt)) cursor.lastStartAt = row.readyAt;
      if (row.readyAt) {
        // It ran from its start to its end (or, orphaned, to its last heartbeat: Lambda stopped billing about then).
        const end = row.status === 'orphaned' || row.status === 'terminated' ? (row.lastSeenAt ?? row.readyAt) : row.finishedAt;
        const seconds = Math.max(0, (end.getTime() - row.readyAt.getTime()) / 1000);
        this.metrics.invocationDuration.observe({ ...labels, outcome: row.status }, seconds);
        const memory = this.memoryMb(row);
        if (memory !== undefined) this.metrics.gbSeconds.inc(labels, (seconds * memory) / 1024);
      }
      if (isWasted(row)) this.metrics.wastedTotal.inc(labels);
      if (row.status === 'orphaned') this.metrics.orphaned.inc({ ...labels, reason: row.errorCode ?? 'Unknown' });
    }
    let failed = 0;
    let last: TaskError | undefined;
    for (const row of cursor.tasks.take(taskRows, READ_LIMIT)) {
      this.metrics.tasksFinished.inc({ ...labels, result: row.status });
      if (row.status === 'done' && row.tookMs !== null) keepLast(cursor.taskDurations, row.tookMs, RECENT_TASKS);
      if (row.status !== 'failed') continue;
      failed += 1;
      if (!last || row.finishedAt >= last.time) {
        last = { taskId: row.id, attempts: row.attempts, message: row.lastError ?? '(no error recorded)', time: row.finishedAt };
      }
    }
    if (last) {
      this.events.record(
        { namespace, name, uid },
        'Warning',
        'TasksFailed',
        `${failed === 1 ? '1 task' : `${failed} tasks`} failed for good; the last, task ${last.taskId} after ${plural(last.attempts, 'attempt')}: ${last.message}`.slice(
          0,
          1000,
        ),
      );
    }
    return last;
  }

  /** The pool's recent runs as this controller saw them finish (empty until some did). */
  recent(uid: string): RecentRuns {
    const cursor = this.cursors.get(uid);
    if (!cursor) return {};
    const task = median(cursor.taskDurations);
    const start = median(cursor.startDelays);
    return {
      ...(task !== undefined ? { taskDurationMs: task } : {}),
      ...(start !== undefined ? { usualStartDelayMs: start } : {}),
      ...(cursor.lastStartAt ? { lastStartAt: cursor.lastStartAt } : {}),
    };
  }

  forget(uid: string): void {
    this.cursors.delete(uid);
  }
}

function keepLast(values: number[], value: number, size: number): void {
  values.push(value);
  if (values.length > size) values.splice(0, values.length - size);
}

function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
