// The statements a worker runs (DESIGN.md §4 and §6). Each is one conditional statement, so a stale
// worker (a duplicate, a late arrival, an invocation the controller ended) changes nothing.
import type pg from 'pg';

export type Queryable = Pick<pg.Pool, 'query'> | Pick<pg.PoolClient, 'query'>;

export interface ClaimedInvocation {
  id: number;
  queue: string;
  poolUid: string;
  functionName: string;
  functionQualifier: string | null;
  tasksPerInvocation: number;
  maxTaskAttempts: number;
  heartbeatTimeoutSeconds: number;
  retryInitialDelayMs: number;
  retryMaxDelayMs: number;
}

/** The function an invocation row was dispatched to, read before claiming it; undefined when there is no row. */
export async function dispatchedFunction(db: Queryable, id: number): Promise<{ functionName: string; functionQualifier: string | null } | undefined> {
  const result = await db.query<{ functionName: string; functionQualifier: string | null }>(
    `SELECT function_name AS "functionName", function_qualifier AS "functionQualifier" FROM ltp.invocations WHERE id = $1`,
    [id],
  );
  return result.rows[0];
}

export type ClaimResult =
  | { claimed: true; invocation: ClaimedInvocation }
  | { claimed: false; status: string };

/**
 * The worker's first act: compare-and-set created|pending -> ready. When it changes no row the event is
 * a duplicate, a retry of a finished run, or a late arrival; the delivery is still counted.
 */
export async function claimInvocation(db: Queryable, args: { id: number; requestId?: string }): Promise<ClaimResult> {
  const claimed = await db.query<ClaimedInvocation>(
    `UPDATE ltp.invocations
        SET status = 'ready', ready_at = now(), heartbeat_at = now(), deliveries = deliveries + 1,
            request_id = COALESCE(request_id, $2)
      WHERE id = $1 AND status IN ('created', 'pending')
      RETURNING id, queue, pool_uid AS "poolUid", function_name AS "functionName", function_qualifier AS "functionQualifier",
                tasks_per_invocation AS "tasksPerInvocation", max_task_attempts AS "maxTaskAttempts",
                heartbeat_timeout_seconds AS "heartbeatTimeoutSeconds",
                retry_initial_delay_ms AS "retryInitialDelayMs", retry_max_delay_ms AS "retryMaxDelayMs"`,
    [args.id, args.requestId ?? null],
  );
  const row = claimed.rows[0];
  if (row) return { claimed: true, invocation: row };
  const seen = await db.query<{ status: string }>(
    `UPDATE ltp.invocations SET deliveries = deliveries + 1 WHERE id = $1 RETURNING status`,
    [args.id],
  );
  return { claimed: false, status: seen.rows[0]?.status ?? 'missing' };
}

export interface LeasedTask {
  id: number;
  queue: string;
  payload: unknown;
  /** Handler starts before this lease. */
  attempts: number;
  maxAttempts: number | null;
  createdAt: Date;
}

/**
 * Leases up to `limit` due tasks of the queue (FOR UPDATE SKIP LOCKED) and moves the invocation from ready
 * to running, in one transaction. No attempt is counted yet: that happens when a handler starts.
 * Returns undefined when the invocation is no longer ready (the controller ended it): nothing is leased.
 */
export async function leaseTasks(
  client: pg.PoolClient,
  args: { invocationId: number; queue: string; limit: number },
): Promise<LeasedTask[] | undefined> {
  await client.query('BEGIN');
  try {
    const leased = await client.query<LeasedTask>(
      `WITH picked AS (
         SELECT id FROM ltp.tasks
          WHERE queue = $1 AND status = 'created' AND run_after <= now()
          ORDER BY run_after, id LIMIT $3 FOR UPDATE SKIP LOCKED)
       UPDATE ltp.tasks t SET status = 'leased', invocation_id = $2, leased_at = now(), finished_at = NULL
         FROM picked WHERE t.id = picked.id
       RETURNING t.id, t.queue, t.payload, t.attempts, t.max_attempts AS "maxAttempts", t.created_at AS "createdAt"`,
      [args.queue, args.invocationId, args.limit],
    );
    const running = await client.query(
      `UPDATE ltp.invocations SET status = 'running', running_at = now(), heartbeat_at = now(), tasks_leased = $2
        WHERE id = $1 AND status = 'ready'`,
      [args.invocationId, leased.rows.length],
    );
    if (running.rowCount !== 1) {
      await client.query('ROLLBACK');
      return undefined;
    }
    await client.query('COMMIT');
    return leased.rows.sort((a, b) => a.id - b.id);
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/**
 * Records that the handler is about to start on a task: counts the attempt, stamps started_at, counts the
 * start on the invocation and renews its heartbeat. Returns the attempt number, or undefined when the
 * lease is gone or the invocation is no longer running (then the handler must not start).
 */
export async function startTask(db: Queryable, args: { taskId: number; invocationId: number }): Promise<number | undefined> {
  const result = await db.query<{ attempts: number | null }>(
    `WITH started AS (
       UPDATE ltp.tasks t SET attempts = t.attempts + 1, started_at = clock_timestamp()
        WHERE t.id = $1 AND t.status = 'leased' AND t.invocation_id = $2
          AND EXISTS (SELECT 1 FROM ltp.invocations i WHERE i.id = $2 AND i.status = 'running')
       RETURNING t.attempts),
     counted AS (
       UPDATE ltp.invocations SET tasks_started = tasks_started + 1, heartbeat_at = now()
        WHERE id = $2 AND status = 'running' AND EXISTS (SELECT 1 FROM started)
       RETURNING id)
     SELECT (SELECT attempts FROM started) AS attempts, (SELECT count(*) FROM counted) AS counted`,
    [args.taskId, args.invocationId],
  );
  return result.rows[0]?.attempts ?? undefined;
}

/** Renews the heartbeat. Returns false when the invocation is no longer live (terminated or orphaned). */
export async function heartbeat(db: Queryable, invocationId: number): Promise<boolean> {
  const result = await db.query(
    `UPDATE ltp.invocations SET heartbeat_at = now() WHERE id = $1 AND status IN ('ready', 'running')`,
    [invocationId],
  );
  return result.rowCount === 1;
}

/** Marks a task done, only while this invocation still holds its lease. */
export async function completeTask(db: Queryable, args: { taskId: number; invocationId: number; resultJson: string }): Promise<boolean> {
  const result = await db.query(
    `UPDATE ltp.tasks SET status = 'done', result = $3::jsonb, last_error = NULL, finished_at = now()
      WHERE id = $1 AND status = 'leased' AND invocation_id = $2`,
    [args.taskId, args.invocationId, args.resultJson],
  );
  return result.rowCount === 1;
}

/**
 * A failed attempt, only while this invocation still holds the lease: the task becomes due again after
 * `retryDelayMs`, or fails once its attempts are used up. Returns the task's new status.
 */
export async function failTask(
  db: Queryable,
  args: { taskId: number; invocationId: number; error: string; defaultMaxAttempts: number; retryDelayMs: number },
): Promise<'created' | 'failed' | undefined> {
  const result = await db.query<{ status: 'created' | 'failed' }>(
    `UPDATE ltp.tasks
        SET status = CASE WHEN attempts >= COALESCE(max_attempts, $4) THEN 'failed'::ltp.task_status ELSE 'created'::ltp.task_status END,
            last_error = $3,
            run_after = CASE WHEN attempts >= COALESCE(max_attempts, $4) THEN run_after
                             ELSE now() + make_interval(secs => $5::double precision / 1000) END,
            finished_at = CASE WHEN attempts >= COALESCE(max_attempts, $4) THEN now() END
      WHERE id = $1 AND status = 'leased' AND invocation_id = $2
      RETURNING status`,
    [args.taskId, args.invocationId, args.error.slice(0, 4000), args.defaultMaxAttempts, args.retryDelayMs],
  );
  return result.rows[0]?.status;
}

/** Gives back leased tasks whose handler never started: they are due again at once and cost no attempt. */
export async function releaseUnstarted(db: Queryable, args: { taskIds: number[]; invocationId: number; reason: string }): Promise<number> {
  if (args.taskIds.length === 0) return 0;
  const result = await db.query(
    `UPDATE ltp.tasks SET status = 'created', last_error = $3
      WHERE id = ANY($1::bigint[]) AND status = 'leased' AND invocation_id = $2`,
    [args.taskIds, args.invocationId, args.reason],
  );
  return result.rowCount ?? 0;
}

/**
 * Ends the invocation as the worker sees it: succeeded (from running) or failed (from ready or running),
 * with a code that says why it ended early, if it did. False when the controller ended it first.
 */
export async function finishInvocation(
  db: Queryable,
  args: { id: number; outcome: 'succeeded' | 'failed'; code?: string; message?: string },
): Promise<boolean> {
  const from = args.outcome === 'succeeded' ? ['running'] : ['ready', 'running'];
  const result = await db.query(
    `UPDATE ltp.invocations SET status = $2::ltp.invocation_status, finished_at = now(), error_code = $4, error_message = $5
      WHERE id = $1 AND status = ANY($3::ltp.invocation_status[])`,
    [args.id, args.outcome, from, args.code ?? null, args.message?.slice(0, 2000) ?? null],
  );
  return result.rowCount === 1;
}
