// The statements a worker runs (docs/architecture.md §4 and §6): each calls one of the SECURITY DEFINER functions of
// the schema (ltp.worker_*), which checks the invocation, and the lease for a task, before it changes
// anything. A stale worker (a duplicate, a late arrival, an invocation the controller ended) changes
// nothing, and a database role that may only execute these functions can do nothing else. Free text (an
// error, a reason) is made storable here, where it meets the database (storable.ts).
import type pg from 'pg';
import { storableText } from './storable.ts';

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
export async function dispatchedFunction(
  db: Queryable,
  id: number,
): Promise<{ functionName: string; functionQualifier: string | null } | undefined> {
  const result = await db.query<{ functionName: string; functionQualifier: string | null }>(
    `SELECT function_name AS "functionName", function_qualifier AS "functionQualifier" FROM ltp.worker_dispatched_function($1)`,
    [id],
  );
  return result.rows[0];
}

export type ClaimResult = { claimed: true; invocation: ClaimedInvocation } | { claimed: false; status: string };

/** Databases that cannot take the claim token (a schema before migration 1765152000000, or a role not granted it). */
const withoutClaimToken = new WeakSet<object>();

/**
 * The worker's first act: compare-and-set created|pending -> ready. When it changes no row the event is
 * a duplicate, a retry of a finished run, or a late arrival; the delivery is still counted. `claimToken`
 * is drawn once per run and sent with every attempt: an attempt that finds the row ready with its own
 * token is this run retrying a claim whose answer was lost, and is answered as the first one was.
 */
export async function claimInvocation(
  db: Queryable,
  args: {
    id: number;
    requestId?: string;
    claimToken: string;
    /** Told the SQLSTATE when the database cannot take the token (older schema, or a role not yet granted). */
    onWithoutToken?: (sqlState: string) => void;
  },
): Promise<ClaimResult> {
  const columns = `claimed, status, queue, pool_uid AS "poolUid", function_name AS "functionName", function_qualifier AS "functionQualifier",
            tasks_per_invocation AS "tasksPerInvocation", max_task_attempts AS "maxTaskAttempts",
            heartbeat_timeout_seconds AS "heartbeatTimeoutSeconds",
            retry_initial_delay_ms AS "retryInitialDelayMs", retry_max_delay_ms AS "retryMaxDelayMs"`;
  type Row = Omit<ClaimedInvocation, 'id'> & { claimed: boolean; status: string };
  let result: pg.QueryResult<Row>;
  if (withoutClaimToken.has(db)) {
    result = await db.query<Row>(`SELECT ${columns} FROM ltp.worker_claim($1, $2)`, [args.id, args.requestId ?? null]);
  } else {
    try {
      result = await db.query<Row>(`SELECT ${columns} FROM ltp.worker_claim($1, $2, $3::uuid)`, [
        args.id,
        args.requestId ?? null,
        args.claimToken,
      ]);
    } catch (error) {
      // 42883 undefined_function: the schema is older than this SDK (the controller, which migrates, not yet
      // upgraded); 42501: a worker role whose grants a DBA has not yet applied again (docs/deploy.md). The
      // failed statement changed nothing: claim without a token, as SDKs before it did.
      const code = (error as { code?: unknown }).code;
      if (code !== '42883' && code !== '42501') throw error;
      withoutClaimToken.add(db);
      args.onWithoutToken?.(code);
      return claimInvocation(db, args);
    }
  }
  const row = result.rows[0];
  if (!row || !row.claimed) return { claimed: false, status: row?.status ?? 'missing' };
  const { claimed: _claimed, status: _status, ...invocation } = row;
  return { claimed: true, invocation: { id: args.id, ...invocation } };
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
 * Leases up to the invocation's tasksPerInvocation due tasks of its queue and moves it from ready to running,
 * atomically. No attempt is counted yet: that happens when a handler starts. Returns undefined when the
 * invocation is no longer ready (the controller ended it): nothing is leased.
 */
export async function leaseTasks(db: Queryable, args: { invocationId: number }): Promise<LeasedTask[] | undefined> {
  const result = await db.query<{
    id: number | null;
    queue: string;
    payload: unknown;
    attempts: number;
    maxAttempts: number | null;
    createdAt: Date;
  }>(`SELECT id, queue, payload, attempts, max_attempts AS "maxAttempts", created_at AS "createdAt" FROM ltp.worker_lease($1)`, [
    args.invocationId,
  ]);
  if (result.rows.length === 0) return undefined;
  return result.rows.filter((r): r is typeof r & { id: number } => r.id !== null).sort((a, b) => a.id - b.id);
}

/**
 * Records that the handler is about to start on a task: counts the attempt, stamps started_at, counts the
 * start on the invocation and renews its heartbeat. Returns the attempt number, or undefined when the
 * lease is gone or the invocation is no longer running (then the handler must not start).
 */
export async function startTask(db: Queryable, args: { taskId: number; invocationId: number }): Promise<number | undefined> {
  const result = await db.query<{ attempts: number | null }>(`SELECT ltp.worker_start_task($1, $2) AS attempts`, [
    args.taskId,
    args.invocationId,
  ]);
  return result.rows[0]?.attempts ?? undefined;
}

/** Renews the heartbeat. Returns false when the invocation is no longer live (terminated or orphaned). */
export async function heartbeat(db: Queryable, invocationId: number): Promise<boolean> {
  const result = await db.query<{ live: boolean }>(`SELECT ltp.worker_heartbeat($1) AS live`, [invocationId]);
  return result.rows[0]?.live === true;
}

/** Marks a task done, only while this invocation still holds its lease. `resultJson`: from storableJson. */
export async function completeTask(db: Queryable, args: { taskId: number; invocationId: number; resultJson: string }): Promise<boolean> {
  const result = await db.query<{ done: boolean }>(`SELECT ltp.worker_complete_task($1, $2, $3::jsonb) AS done`, [
    args.taskId,
    args.invocationId,
    args.resultJson,
  ]);
  return result.rows[0]?.done === true;
}

/**
 * A failed attempt, only while this invocation still holds the lease: the task becomes due again after
 * `retryDelayMs`, or fails once its attempts are used up. Returns the task's new status.
 */
export async function failTask(
  db: Queryable,
  args: { taskId: number; invocationId: number; error: string; retryDelayMs: number },
): Promise<'created' | 'failed' | undefined> {
  const result = await db.query<{ status: 'created' | 'failed' | null }>(`SELECT ltp.worker_fail_task($1, $2, $3, $4) AS status`, [
    args.taskId,
    args.invocationId,
    storableText(args.error),
    args.retryDelayMs,
  ]);
  return result.rows[0]?.status ?? undefined;
}

/** Gives back leased tasks whose handler never started: they are due again at once and cost no attempt. */
export async function releaseUnstarted(db: Queryable, args: { taskIds: number[]; invocationId: number; reason: string }): Promise<number> {
  if (args.taskIds.length === 0) return 0;
  const result = await db.query<{ n: number }>(`SELECT ltp.worker_release_unstarted($1, $2::bigint[], $3) AS n`, [
    args.invocationId,
    args.taskIds,
    storableText(args.reason),
  ]);
  return result.rows[0]?.n ?? 0;
}

/**
 * Ends the invocation as the worker sees it: succeeded (from running) or failed (from ready or running),
 * with a code that says why it ended early, if it did. False when the controller ended it first.
 */
export async function finishInvocation(
  db: Queryable,
  args: { id: number; outcome: 'succeeded' | 'failed'; code?: string; message?: string },
): Promise<boolean> {
  const result = await db.query<{ finished: boolean }>(`SELECT ltp.worker_finish($1, $2, $3, $4) AS finished`, [
    args.id,
    args.outcome,
    args.code ?? null,
    args.message === undefined ? null : storableText(args.message),
  ]);
  return result.rows[0]?.finished === true;
}
