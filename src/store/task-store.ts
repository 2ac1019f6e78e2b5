// Tasks (DESIGN.md §6). Every transition is one conditional UPDATE, so a stale caller changes nothing.
import { TASK_STATES, type StateCounts, type TaskState } from '../api/types.ts';
import type { Queryable } from './db.ts';

export interface TaskRow {
  id: number;
  queue: string;
  payload: unknown;
  status: TaskState;
  attempts: number;
  maxAttempts: number | null;
  invocationId: number | null;
  createdAt: Date;
  leasedAt: Date | null;
  finishedAt: Date | null;
  result: unknown;
  lastError: string | null;
}

const taskColumns = (t: string) => `${t}id, ${t}queue, ${t}payload, ${t}status, ${t}attempts, ${t}max_attempts AS "maxAttempts",
  ${t}invocation_id AS "invocationId", ${t}created_at AS "createdAt", ${t}leased_at AS "leasedAt",
  ${t}finished_at AS "finishedAt", ${t}result, ${t}last_error AS "lastError"`;

export interface EnqueueInput {
  queue: string;
  payloads: unknown[];
  maxAttempts?: number;
}

/** Inserts tasks in one statement, as a producer's plain INSERT would. Returns their ids. */
export async function enqueueTasks(db: Queryable, input: EnqueueInput): Promise<number[]> {
  if (input.payloads.length === 0) return [];
  const result = await db.query<{ id: number }>(
    `INSERT INTO ltp.tasks (queue, payload, max_attempts)
     SELECT $1, p, $3 FROM jsonb_array_elements($2::jsonb) AS p
     RETURNING id`,
    [input.queue, JSON.stringify(input.payloads), input.maxAttempts ?? null],
  );
  return result.rows.map((r) => r.id);
}

/** The number of created tasks of a queue, counted no further than `limit`. */
export async function countBacklog(db: Queryable, queue: string, limit: number): Promise<number> {
  const result = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM (SELECT 1 FROM ltp.tasks WHERE queue = $1 AND status = 'created' LIMIT $2) b`,
    [queue, limit],
  );
  return result.rows[0]?.n ?? 0;
}

export async function countTasksByState(db: Queryable, queue: string): Promise<StateCounts<TaskState>> {
  const result = await db.query<{ status: TaskState; n: number }>(
    `SELECT status, count(*)::int AS n FROM ltp.tasks WHERE queue = $1 GROUP BY status`,
    [queue],
  );
  const counts = Object.fromEntries(TASK_STATES.map((s) => [s, 0])) as StateCounts<TaskState>;
  for (const row of result.rows) counts[row.status] = row.n;
  return counts;
}

/**
 * Leases up to `limit` created tasks of a queue for an invocation, skipping rows other workers hold,
 * and counts the attempt. Must run inside the transaction that also moves the invocation to running.
 */
export async function leaseTasks(
  db: Queryable,
  args: { queue: string; invocationId: number; limit: number },
): Promise<TaskRow[]> {
  const result = await db.query<TaskRow>(
    `WITH picked AS (
       SELECT id FROM ltp.tasks WHERE queue = $1 AND status = 'created'
       ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)
     UPDATE ltp.tasks t
        SET status = 'leased', invocation_id = $2, attempts = t.attempts + 1, leased_at = now(), finished_at = NULL
       FROM picked WHERE t.id = picked.id
     RETURNING ${taskColumns('t.')}`,
    [args.queue, args.invocationId, args.limit],
  );
  return result.rows.sort((a, b) => a.id - b.id);
}

/** Marks a task done, only while this invocation still holds its lease. */
export async function completeTask(
  db: Queryable,
  args: { taskId: number; invocationId: number; result: unknown },
): Promise<boolean> {
  const result = await db.query(
    `UPDATE ltp.tasks SET status = 'done', result = $3::jsonb, last_error = NULL, finished_at = now()
      WHERE id = $1 AND status = 'leased' AND invocation_id = $2`,
    [args.taskId, args.invocationId, JSON.stringify(args.result ?? null)],
  );
  return result.rowCount === 1;
}

/**
 * A failed attempt: the task goes back to created, or to failed once its attempts are used up.
 * Only while this invocation still holds the lease.
 */
export async function failTask(
  db: Queryable,
  args: { taskId: number; invocationId: number; error: string; defaultMaxAttempts: number },
): Promise<TaskState | undefined> {
  const result = await db.query<{ status: TaskState }>(
    `UPDATE ltp.tasks
        SET status = CASE WHEN attempts >= COALESCE(max_attempts, $4) THEN 'failed'::ltp.task_status ELSE 'created'::ltp.task_status END,
            last_error = $3,
            finished_at = CASE WHEN attempts >= COALESCE(max_attempts, $4) THEN now() END
      WHERE id = $1 AND status = 'leased' AND invocation_id = $2
      RETURNING status`,
    [args.taskId, args.invocationId, args.error.slice(0, 4000), args.defaultMaxAttempts],
  );
  return result.rows[0]?.status;
}

/** Gives back leased tasks this invocation never started: they return to created and the attempt is not counted. */
export async function releaseUnstarted(
  db: Queryable,
  args: { taskIds: number[]; invocationId: number; reason: string },
): Promise<number> {
  if (args.taskIds.length === 0) return 0;
  const result = await db.query(
    `UPDATE ltp.tasks SET status = 'created', attempts = GREATEST(attempts - 1, 0), last_error = $3
      WHERE id = ANY($1::bigint[]) AND status = 'leased' AND invocation_id = $2`,
    [args.taskIds, args.invocationId, args.reason],
  );
  return result.rowCount ?? 0;
}

export interface LeasedTask {
  id: number;
  invocationId: number;
  attempts: number;
  maxAttempts: number | null;
}

/** Tasks still leased by invocations that have ended (orphaned, terminated, failed, succeeded). */
export async function findStrandedLeases(db: Queryable, poolUid: string): Promise<LeasedTask[]> {
  const result = await db.query<LeasedTask>(
    // Starts from the (small) partial index of leased tasks, not from the pool's whole history.
    `SELECT t.id, t.invocation_id AS "invocationId", t.attempts, t.max_attempts AS "maxAttempts"
       FROM ltp.tasks t JOIN ltp.invocations i ON i.id = t.invocation_id
      WHERE t.status = 'leased' AND i.pool_uid = $1 AND i.status IN ('succeeded', 'failed', 'orphaned', 'terminated')
      ORDER BY t.id`,
    [poolUid],
  );
  return result.rows;
}

/** Applies release decisions: each task returns to created or fails, if it is still leased by that invocation. */
export async function releaseLeases(
  db: Queryable,
  args: { toCreated: LeasedTask[]; toFailed: LeasedTask[]; reason: string },
): Promise<number> {
  let changed = 0;
  for (const [status, tasks] of [['created', args.toCreated], ['failed', args.toFailed]] as const) {
    if (tasks.length === 0) continue;
    const result = await db.query(
      `UPDATE ltp.tasks t SET status = $1::ltp.task_status, last_error = $4,
              finished_at = CASE WHEN $1 = 'failed' THEN now() END
         FROM unnest($2::bigint[], $3::bigint[]) AS r(id, invocation_id)
        WHERE t.id = r.id AND t.invocation_id = r.invocation_id AND t.status = 'leased'`,
      [status, tasks.map((t) => t.id), tasks.map((t) => t.invocationId), args.reason],
    );
    changed += result.rowCount ?? 0;
  }
  return changed;
}

export async function getTask(db: Queryable, id: number): Promise<TaskRow | undefined> {
  const result = await db.query<TaskRow>(`SELECT ${taskColumns('')} FROM ltp.tasks WHERE id = $1`, [id]);
  return result.rows[0];
}

/**
 * Created-to-leased waits of tasks leased after the cursor, oldest first, for the task wait metric.
 * The cursor is Postgres's own text of a timestamp, so no precision is lost between calls.
 */
export async function leaseWaitsSince(db: Queryable, args: { queue: string; since: string; limit: number }): Promise<{ waitsSeconds: number[]; cursor?: string }> {
  const result = await db.query<{ wait: number; cursor: string }>(
    `SELECT extract(epoch FROM leased_at - created_at)::float8 AS wait, leased_at::text AS cursor FROM ltp.tasks
      WHERE queue = $1 AND leased_at > $2::timestamptz ORDER BY leased_at LIMIT $3`,
    [args.queue, args.since, args.limit],
  );
  const last = result.rows[result.rows.length - 1];
  return { waitsSeconds: result.rows.map((r) => r.wait), ...(last ? { cursor: last.cursor } : {}) };
}
