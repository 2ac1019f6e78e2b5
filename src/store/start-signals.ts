// What the ledger says about whether a pool's invocations start, and how long its tasks run: the inputs of
// the FunctionReady verdict that no Lambda API tells (planner/function-readiness.ts). Bounded reads: live
// rows, and the last few finished rows through the finished_at indexes.
import type { StartSignals } from '../planner/function-readiness.ts';
import type { Queryable } from './db.ts';

const RECENT_INVOCATIONS = 20;
const RECENT_TASKS = 50;

export async function startSignals(db: Queryable, args: { poolUid: string; queue: string }): Promise<StartSignals> {
  const result = await db.query<{
    waiting: number;
    oldest_wait_ms: number | null;
    usual_ms: number | null;
    started_since: boolean;
    task_ms: number | null;
  }>(
    `WITH waiting AS (
       SELECT count(*)::int AS n, min(invoked_at) AS oldest FROM ltp.invocations WHERE pool_uid = $1 AND status = 'pending'
     ), recent AS (
       SELECT ready_at, invoked_at FROM ltp.invocations
        WHERE pool_uid = $1 AND finished_at IS NOT NULL ORDER BY finished_at DESC LIMIT ${RECENT_INVOCATIONS}
     ), started AS (
       SELECT max(ready_at) AS at FROM (
         SELECT ready_at FROM recent
         UNION ALL SELECT ready_at FROM ltp.invocations WHERE pool_uid = $1 AND status IN ('ready', 'running')) s
     ), tasks AS (
       SELECT finished_at - started_at AS took FROM ltp.tasks
        WHERE queue = $2 AND status = 'done' AND started_at IS NOT NULL ORDER BY finished_at DESC LIMIT ${RECENT_TASKS}
     )
     SELECT waiting.n AS waiting,
            (extract(epoch FROM now() - waiting.oldest) * 1000)::float8 AS oldest_wait_ms,
            (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM ready_at - invoked_at) * 1000)
               FROM recent WHERE ready_at IS NOT NULL AND invoked_at IS NOT NULL)::float8 AS usual_ms,
            COALESCE(started.at > waiting.oldest, false) AS started_since,
            (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM took) * 1000) FROM tasks)::float8 AS task_ms
       FROM waiting, started`,
    [args.poolUid, args.queue],
  );
  const row = result.rows[0];
  return {
    waiting: row?.waiting ?? 0,
    oldestWaitMs: row?.oldest_wait_ms ?? 0,
    startedSince: row?.started_since ?? false,
    ...(row?.usual_ms !== null && row?.usual_ms !== undefined ? { usualStartDelayMs: row.usual_ms } : {}),
    ...(row?.task_ms !== null && row?.task_ms !== undefined ? { taskDurationMs: row.task_ms } : {}),
  };
}
