// Rows that finished since a point in time, for the cost metrics and the task-failure reports: read
// through the finished_at indexes (invocations_finished_by_pool, tasks_finished_by_queue), so a read
// costs what finished since the last one, never the history.
import type { Queryable } from './db.ts';

export interface FinishedInvocation {
  id: number;
  status: 'succeeded' | 'failed' | 'orphaned' | 'terminated';
  finishedAt: Date;
  /** When Lambda accepted its invoke (null: never invoked). */
  invokedAt: Date | null;
  /** When its handler started (null: it never ran). */
  readyAt: Date | null;
  /** The last sign of life: the heartbeat, else the start. */
  lastSeenAt: Date | null;
  tasksLeased: number;
  tasksStarted: number;
  errorCode: string | null;
  functionName: string;
  functionQualifier: string | null;
  functionRegion: string | null;
}

export async function invocationsFinishedSince(
  db: Queryable,
  args: { poolUid: string; since: Date; limit: number },
): Promise<FinishedInvocation[]> {
  const result = await db.query<FinishedInvocation>({
    name: 'ltp_invocations_finished_since',
    text: `SELECT id, status, finished_at AS "finishedAt", invoked_at AS "invokedAt", ready_at AS "readyAt", COALESCE(heartbeat_at, ready_at) AS "lastSeenAt",
            tasks_leased AS "tasksLeased", tasks_started AS "tasksStarted", error_code AS "errorCode",
            function_name AS "functionName", function_qualifier AS "functionQualifier", function_region AS "functionRegion"
       FROM ltp.invocations
      WHERE pool_uid = $1 AND finished_at IS NOT NULL AND finished_at > $2
      ORDER BY finished_at LIMIT $3`,
    values: [args.poolUid, args.since, args.limit],
  });
  return result.rows.map((r) => ({ ...r, id: Number(r.id) }));
}

export interface FinishedTask {
  id: number;
  status: 'done' | 'failed';
  finishedAt: Date;
  attempts: number;
  lastError: string | null;
  /** Its last attempt's run time, when it was started. */
  tookMs: number | null;
}

export async function tasksFinishedSince(db: Queryable, args: { queue: string; since: Date; limit: number }): Promise<FinishedTask[]> {
  const result = await db.query<FinishedTask>({
    name: 'ltp_tasks_finished_since',
    text: `SELECT id, status, finished_at AS "finishedAt", attempts, left(last_error, 1000) AS "lastError",
            (extract(epoch FROM finished_at - started_at) * 1000)::float8 AS "tookMs"
       FROM ltp.tasks
      WHERE queue = $1 AND status IN ('done', 'failed') AND finished_at > $2
      ORDER BY finished_at LIMIT $3`,
    values: [args.queue, args.since, args.limit],
  });
  return result.rows.map((r) => ({ ...r, id: Number(r.id) }));
}
