// Tasks (docs/architecture.md §6). Every transition is one conditional UPDATE, so a stale caller changes nothing.
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
  /** The task this row re-runs (`lambda-task-pool retry`). */
  retryOf: number | null;
  /** Why it was cancelled, for a cancelled task. */
  cancelReason: string | null;
}

const taskColumns = (t: string) => `${t}id, ${t}queue, ${t}payload, ${t}status, ${t}attempts, ${t}max_attempts AS "maxAttempts",
  ${t}invocation_id AS "invocationId", ${t}created_at AS "createdAt", ${t}run_after AS "runAfter", ${t}leased_at AS "leasedAt",
  ${t}started_at AS "startedAt", ${t}finished_at AS "finishedAt", ${t}result, ${t}last_error AS "lastError",
  ${t}retry_of AS "retryOf", ${t}cancel_reason AS "cancelReason"`;

export interface EnqueueInput {
  queue: string;
  payloads: unknown[];
  maxAttempts?: number;
  /** Delay the tasks: they are not due before this many ms from now. */
  delayMs?: number;
}

/**
 * Inserts `count` tasks with one payload, given as JSON text, in one statement: the text goes to Postgres once
 * and as it is, so jsonb keeps its numbers exactly (an order id past 2^53, 1e400), which a round trip through
 * JavaScript's numbers does not. Returns their ids, in order.
 */
export async function enqueueCopies(
  db: Queryable,
  input: { queue: string; payloadJson: string; count: number; maxAttempts?: number; delayMs?: number },
): Promise<number[]> {
  if (input.count <= 0) return [];
  const result = await db.query<{ id: number }>(
    `INSERT INTO ltp.tasks (queue, payload, max_attempts, run_after)
     SELECT $1, $2::jsonb, $3, now() + make_interval(secs => $4::double precision / 1000) FROM generate_series(1, $5::int)
     RETURNING id`,
    [input.queue, input.payloadJson, input.maxAttempts ?? null, input.delayMs ?? 0, input.count],
  );
  return result.rows.map((r) => r.id).sort((a, b) => a - b);
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
 * of due tasks, `leased` is counted (bounded by the live leases), `done`, `failed` and `cancelled` come from
 * the queue's totals row.
 */
export async function queueTaskCounts(db: Queryable, args: { queue: string; created: number }): Promise<StateCounts<TaskState>> {
  const result = await db.query<{ leased: number; done: number | null; failed: number | null; cancelled: number | null }>({
    name: 'ltp_queue_task_counts',
    text: `SELECT (SELECT count(*)::int FROM ltp.tasks WHERE queue = $1 AND status = 'leased') AS leased,
            t.done::float8 AS done, t.failed::float8 AS failed, t.cancelled::float8 AS cancelled
       FROM (SELECT 1) one LEFT JOIN ltp.queue_totals t ON t.queue = $1`,
    values: [args.queue],
  });
  const row = result.rows[0];
  return {
    created: args.created,
    leased: row?.leased ?? 0,
    done: row?.done ?? 0,
    failed: row?.failed ?? 0,
    cancelled: row?.cancelled ?? 0,
  };
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

const STRANDED_COLUMNS = `t.id, t.invocation_id, t.attempts, t.max_attempts, (t.started_at IS NOT NULL AND t.started_at >= t.leased_at) AS started,
            i.pool_uid, t.queue, i.status, i.ready_at IS NOT NULL AS ever_started, i.finished_at, i.heartbeat_timeout_seconds,
            i.max_task_attempts, i.retry_initial_delay_ms, i.retry_max_delay_ms`;

/**
 * One pool's tasks still leased by its ended invocations: walks the partial index of leased tasks
 * (tasks_leased_by_queue_id) within the pool's queue, in id order. Without the queue, under a pass's settings
 * (a generic plan, sequential scans off), Postgres walked the primary key over every task of the database.
 */
export const STRANDED_LEASES_OF_POOL_SQL = `SELECT ${STRANDED_COLUMNS}
       FROM ltp.tasks t JOIN ltp.invocations i ON i.id = t.invocation_id
      WHERE t.status = 'leased' AND t.queue = $2 AND i.pool_uid = $1
        AND i.status IN ('succeeded', 'failed', 'orphaned', 'terminated')
      ORDER BY t.id LIMIT $3`;

/**
 * Tasks still leased by ended invocations, the whole database over (the stranded sweep): in the order of the
 * partial index of leased tasks (queue, id), so that only leased tasks are read, never the history.
 */
export const STRANDED_LEASES_SQL = `SELECT ${STRANDED_COLUMNS}
       FROM ltp.tasks t JOIN ltp.invocations i ON i.id = t.invocation_id
      WHERE t.status = 'leased' AND i.status IN ('succeeded', 'failed', 'orphaned', 'terminated')
      ORDER BY t.queue, t.id LIMIT $1`;

/**
 * Tasks still leased by invocations that have ended, of one pool (its uid and queue) or, without `pool`, of
 * the whole database, at most `limit`. Starts from the small partial index of leased tasks, never from history.
 */
export async function findStrandedLeases(
  db: Queryable,
  args: { pool?: { uid: string; queue: string }; limit?: number },
): Promise<StrandedLeaseRow[]> {
  const limit = args.limit ?? 10_000;
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
  }>(args.pool ? STRANDED_LEASES_OF_POOL_SQL : STRANDED_LEASES_SQL, args.pool ? [args.pool.uid, args.pool.queue, limit] : [limit]);
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
  const result = await db.query<{ wait: number; cursor: string }>({
    name: 'ltp_lease_waits_since',
    text: `SELECT extract(epoch FROM leased_at - created_at)::float8 AS wait, leased_at::text AS cursor FROM ltp.tasks
      WHERE queue = $1 AND leased_at > $2::timestamptz ORDER BY leased_at LIMIT $3`,
    values: [args.queue, args.since, args.limit],
  });
  const last = result.rows[result.rows.length - 1];
  return { waitsSeconds: result.rows.map((r) => r.wait), ...(last ? { cursor: last.cursor } : {}) };
}

// ---- Inspection and repair, for the CLI (`tasks`, `retry`, `cancel`): never run by a pass. ----

/** The latest tasks of a queue (newest first), of one state or of any. */
export async function listTasks(db: Queryable, args: { queue: string; status?: TaskState; limit: number }): Promise<TaskRow[]> {
  const result = await db.query<TaskRow>(
    `SELECT ${taskColumns('')} FROM ltp.tasks WHERE queue = $1 AND ($2::ltp.task_status IS NULL OR status = $2::ltp.task_status)
      ORDER BY id DESC LIMIT $3`,
    [args.queue, args.status ?? null, args.limit],
  );
  return result.rows;
}

/** A task, and the task that re-runs it (if it was re-run). */
export async function getTaskWithRerun(db: Queryable, id: number): Promise<(TaskRow & { retriedBy: number | null }) | undefined> {
  const result = await db.query<TaskRow & { retriedBy: number | null }>(
    `SELECT ${taskColumns('t.')}, (SELECT r.id FROM ltp.tasks r WHERE r.retry_of = t.id) AS "retriedBy" FROM ltp.tasks t WHERE t.id = $1`,
    [id],
  );
  return result.rows[0];
}

/** What `retry` and `cancel` need to know about a task to say what happens to it. */
export interface TaskStanding {
  id: number;
  queue: string;
  status: TaskState;
  /** The task that already re-runs this one. */
  retriedBy: number | null;
}

/** The standing of the given tasks (ids that name no task are simply absent). */
export async function taskStandings(db: Queryable, ids: readonly number[]): Promise<TaskStanding[]> {
  if (ids.length === 0) return [];
  const result = await db.query<TaskStanding>(
    `SELECT t.id, t.queue, t.status, (SELECT r.id FROM ltp.tasks r WHERE r.retry_of = t.id) AS "retriedBy"
       FROM ltp.tasks t WHERE t.id = ANY($1::bigint[]) ORDER BY t.id`,
    [ids],
  );
  return result.rows;
}

/** The states a task may be re-run from. */
export const RERUNNABLE_STATES = ['failed', 'cancelled'] as const satisfies readonly TaskState[];
export type RerunnableState = (typeof RERUNNABLE_STATES)[number];

/**
 * Ids of the queue's tasks in `status` (failed or cancelled) that were not re-run yet, oldest finished first,
 * at most `limit`; with `errorContains`, only those whose last error contains it (case-insensitive).
 */
export async function findRerunnableTasks(
  db: Queryable,
  args: { queue: string; status: RerunnableState; errorContains?: string; limit: number },
): Promise<number[]> {
  const result = await db.query<{ id: number }>(
    `SELECT t.id FROM ltp.tasks t
      WHERE t.queue = $1 AND t.status = $2::ltp.task_status
        AND ($3::text IS NULL OR strpos(lower(coalesce(t.last_error, '')), lower($3)) > 0)
        AND NOT EXISTS (SELECT 1 FROM ltp.tasks r WHERE r.retry_of = t.id)
      ORDER BY t.finished_at, t.id LIMIT $4`,
    [args.queue, args.status, args.errorContains ?? null, args.limit],
  );
  return result.rows.map((r) => r.id);
}

/**
 * Re-runs finished tasks: for each given task that is failed or cancelled and not re-run yet, one new
 * `created` row with its queue, payload and attempt limit, whose `retry_of` names it. The old rows do not
 * change. The unique index on retry_of makes a concurrent second re-run of the same task insert nothing.
 * Returns the new rows, as { id: new id, retryOf: old id }.
 */
export async function rerunTasks(db: Queryable, ids: readonly number[]): Promise<Array<{ id: number; retryOf: number }>> {
  if (ids.length === 0) return [];
  const result = await db.query<{ id: number; retryOf: number }>(
    `INSERT INTO ltp.tasks (queue, payload, max_attempts, retry_of)
     SELECT queue, payload, max_attempts, id FROM ltp.tasks
      WHERE id = ANY($1::bigint[]) AND status IN ('failed', 'cancelled')
      ORDER BY id
     ON CONFLICT (retry_of) WHERE retry_of IS NOT NULL DO NOTHING
     RETURNING id, retry_of AS "retryOf"`,
    [ids],
  );
  return result.rows;
}

/** Ids of the queue's created tasks (due or delayed), first due first, at most `limit`. */
export async function findCreatedTasks(db: Queryable, args: { queue: string; limit: number }): Promise<number[]> {
  const result = await db.query<{ id: number }>(
    `SELECT id FROM ltp.tasks WHERE queue = $1 AND status = 'created' ORDER BY run_after, id LIMIT $2`,
    [args.queue, args.limit],
  );
  return result.rows.map((r) => r.id);
}

/**
 * Cancels the given tasks that are still `created`, with a reason. A task a worker leases at the same moment
 * is not cancelled: the UPDATE waits for the worker's row lock and then finds the row no longer created.
 * Returns the ids it cancelled.
 */
export async function cancelTasks(db: Queryable, args: { ids: readonly number[]; reason: string }): Promise<number[]> {
  if (args.ids.length === 0) return [];
  const result = await db.query<{ id: number }>(
    `UPDATE ltp.tasks SET status = 'cancelled', cancel_reason = $2, finished_at = now()
      WHERE id = ANY($1::bigint[]) AND status = 'created' RETURNING id`,
    [args.ids, args.reason],
  );
  return result.rows.map((r) => r.id).sort((a, b) => a - b);
}

/**
 * Cancels up to `limit` created tasks of a queue, first due first, skipping any a worker is leasing right
 * now (SKIP LOCKED). Returns the ids it cancelled.
 */
export async function cancelCreatedTasks(db: Queryable, args: { queue: string; limit: number; reason: string }): Promise<number[]> {
  const result = await db.query<{ id: number }>(
    `WITH picked AS (
       SELECT id FROM ltp.tasks WHERE queue = $1 AND status = 'created' ORDER BY run_after, id LIMIT $2 FOR UPDATE SKIP LOCKED)
     UPDATE ltp.tasks t SET status = 'cancelled', cancel_reason = $3, finished_at = now()
       FROM picked WHERE t.id = picked.id AND t.status = 'created' RETURNING t.id`,
    [args.queue, args.limit, args.reason],
  );
  return result.rows.map((r) => r.id).sort((a, b) => a - b);
}
