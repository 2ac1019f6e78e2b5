// Tasks (DESIGN.md §6). Every transition is one conditional UPDATE, so a stale caller changes nothing.
import { TASK_STATES, type InvocationState, type StateCounts, type TaskState } from '../api/types.ts';
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
  runAfter: Date;
  leasedAt: Date | null;
  startedAt: Date | null;
  finishedAt: Date | null;
  result: unknown;
  lastError: string | null;
}

const taskColumns = (t: string) => `${t}id, ${t}queue, ${t}payload, ${t}status, ${t}attempts, ${t}max_attempts AS "maxAttempts",
  ${t}invocation_id AS "invocationId", ${t}created_at AS "createdAt", ${t}run_after AS "runAfter", ${t}leased_at AS "leasedAt",
  ${t}started_at AS "startedAt", ${t}finished_at AS "finishedAt", ${t}result, ${t}last_error AS "lastError"`;

export interface EnqueueInput {
  queue: string;
  payloads: unknown[];
  maxAttempts?: number;
  /** Delay the tasks: they are not due before this many ms from now. */
  delayMs?: number;
}

/** Inserts tasks in one statement, as a producer's plain INSERT would. Returns their ids. */
export async function enqueueTasks(db: Queryable, input: EnqueueInput): Promise<number[]> {
  if (input.payloads.length === 0) return [];
  const result = await db.query<{ id: number }>(
    `INSERT INTO ltp.tasks (queue, payload, max_attempts, run_after)
     SELECT $1, p, $3, now() + make_interval(secs => $4::double precision / 1000) FROM jsonb_array_elements($2::jsonb) AS p
     RETURNING id`,
    [input.queue, JSON.stringify(input.payloads), input.maxAttempts ?? null, input.delayMs ?? 0],
  );
  return result.rows.map((r) => r.id);
}

/** The number of due created tasks of a queue, counted no further than `limit`. */
export async function countBacklog(db: Queryable, queue: string, limit: number): Promise<number> {
  const result = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM (
       SELECT 1 FROM ltp.tasks WHERE queue = $1 AND status = 'created' AND run_after <= now() LIMIT $2) b`,
    [queue, limit],
  );
  return result.rows[0]?.n ?? 0;
}

/** When the next created task of the queue that is not due yet becomes due. */
export async function nextDueAt(db: Queryable, queue: string): Promise<Date | undefined> {
  const result = await db.query<{ at: Date | null }>(
    `SELECT min(run_after) AS at FROM ltp.tasks WHERE queue = $1 AND status = 'created' AND run_after > now()`,
    [queue],
  );
  return result.rows[0]?.at ?? undefined;
}

/**
 * The queue's tasks by state for status, without reading history: `created` is the caller's bounded count
 * of due tasks, `leased` is counted (bounded by the live leases), `done` and `failed` come from the queue's
 * totals row.
 */
export async function queueTaskCounts(db: Queryable, args: { queue: string; created: number }): Promise<StateCounts<TaskState>> {
  const result = await db.query<{ leased: number; done: number | null; failed: number | null }>(
    `SELECT (SELECT count(*)::int FROM ltp.tasks WHERE queue = $1 AND status = 'leased') AS leased,
            t.done::float8 AS done, t.failed::float8 AS failed
       FROM (SELECT 1) one LEFT JOIN ltp.queue_totals t ON t.queue = $1`,
    [args.queue],
  );
  const row = result.rows[0];
  return { created: args.created, leased: row?.leased ?? 0, done: row?.done ?? 0, failed: row?.failed ?? 0 };
}

/** Every task of a queue counted by state, over all its rows: for inspection (tests, the CLI), never a pass. */
export async function countTasksByState(db: Queryable, queue: string): Promise<StateCounts<TaskState>> {
  const result = await db.query<{ status: TaskState; n: number }>(
    `SELECT status, count(*)::int AS n FROM ltp.tasks WHERE queue = $1 GROUP BY status`,
    [queue],
  );
  const counts = Object.fromEntries(TASK_STATES.map((s) => [s, 0])) as StateCounts<TaskState>;
  for (const row of result.rows) counts[row.status] = row.n;
  return counts;
}

export interface StrandedLeaseRow {
  id: number;
  invocationId: number;
  attempts: number;
  maxAttempts: number | null;
  started: boolean;
  poolUid: string;
  queue: string;
  invocation: {
    status: InvocationState;
    everStarted: boolean;
    finishedAt: number | null;
    heartbeatTimeoutMs: number;
    maxTaskAttempts: number;
    retryInitialDelayMs: number;
    retryMaxDelayMs: number;
  };
}

/**
 * Tasks still leased by invocations that have ended, of one pool or (without `poolUid`) of the whole
 * database, at most `limit`. Starts from the small partial index of leased tasks, never from history.
 */
export async function findStrandedLeases(db: Queryable, args: { poolUid?: string; limit?: number }): Promise<StrandedLeaseRow[]> {
  const result = await db.query<{
    id: number;
    invocation_id: number;
    attempts: number;
    max_attempts: number | null;
    started: boolean;
    pool_uid: string;
    queue: string;
    status: InvocationState;
    ever_started: boolean;
    finished_at: Date | null;
    heartbeat_timeout_seconds: number;
    max_task_attempts: number;
    retry_initial_delay_ms: number;
    retry_max_delay_ms: number;
  }>(
    `SELECT t.id, t.invocation_id, t.attempts, t.max_attempts, (t.started_at IS NOT NULL AND t.started_at >= t.leased_at) AS started,
            i.pool_uid, t.queue, i.status, i.ready_at IS NOT NULL AS ever_started, i.finished_at, i.heartbeat_timeout_seconds,
            i.max_task_attempts, i.retry_initial_delay_ms, i.retry_max_delay_ms
       FROM ltp.tasks t JOIN ltp.invocations i ON i.id = t.invocation_id
      WHERE t.status = 'leased' AND i.status IN ('succeeded', 'failed', 'orphaned', 'terminated')
        AND ($1::text IS NULL OR i.pool_uid = $1)
      ORDER BY t.id LIMIT $2`,
    [args.poolUid ?? null, args.limit ?? 10_000],
  );
  return result.rows.map((r) => ({
    id: r.id,
    invocationId: r.invocation_id,
    attempts: r.attempts,
    maxAttempts: r.max_attempts,
    started: r.started,
    poolUid: r.pool_uid,
    queue: r.queue,
    invocation: {
      status: r.status,
      everStarted: r.ever_started,
      finishedAt: r.finished_at?.getTime() ?? null,
      heartbeatTimeoutMs: r.heartbeat_timeout_seconds * 1000,
      maxTaskAttempts: r.max_task_attempts,
      retryInitialDelayMs: r.retry_initial_delay_ms,
      retryMaxDelayMs: r.retry_max_delay_ms,
    },
  }));
}

/**
 * Applies release decisions: each task returns to created (due after its delay) or fails, if it is still
 * leased by that invocation. Returns how many changed each way.
 */
export async function releaseLeases(
  db: Queryable,
  args: {
    toCreated: ReadonlyArray<{ id: number; invocationId: number; delayMs: number }>;
    toFailed: ReadonlyArray<{ id: number; invocationId: number }>;
    reason: string;
  },
): Promise<{ created: number; failed: number }> {
  const changed = { created: 0, failed: 0 };
  if (args.toCreated.length > 0) {
    const result = await db.query(
      `UPDATE ltp.tasks t SET status = 'created', last_error = $4,
              run_after = GREATEST(t.run_after, now() + make_interval(secs => r.delay_ms / 1000))
         FROM unnest($1::bigint[], $2::bigint[], $3::double precision[]) AS r(id, invocation_id, delay_ms)
        WHERE t.id = r.id AND t.invocation_id = r.invocation_id AND t.status = 'leased'`,
      [args.toCreated.map((t) => t.id), args.toCreated.map((t) => t.invocationId), args.toCreated.map((t) => t.delayMs), args.reason],
    );
    changed.created = result.rowCount ?? 0;
  }
  if (args.toFailed.length > 0) {
    const result = await db.query(
      `UPDATE ltp.tasks t SET status = 'failed', last_error = $3, finished_at = now()
         FROM unnest($1::bigint[], $2::bigint[]) AS r(id, invocation_id)
        WHERE t.id = r.id AND t.invocation_id = r.invocation_id AND t.status = 'leased'`,
      [args.toFailed.map((t) => t.id), args.toFailed.map((t) => t.invocationId), args.reason],
    );
    changed.failed = result.rowCount ?? 0;
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
export async function leaseWaitsSince(
  db: Queryable,
  args: { queue: string; since: string; limit: number },
): Promise<{ waitsSeconds: number[]; cursor?: string }> {
  const result = await db.query<{ wait: number; cursor: string }>(
    `SELECT extract(epoch FROM leased_at - created_at)::float8 AS wait, leased_at::text AS cursor FROM ltp.tasks
      WHERE queue = $1 AND leased_at > $2::timestamptz ORDER BY leased_at LIMIT $3`,
    [args.queue, args.since, args.limit],
  );
  const last = result.rows[result.rows.length - 1];
  return { waitsSeconds: result.rows.map((r) => r.wait), ...(last ? { cursor: last.cursor } : {}) };
}
