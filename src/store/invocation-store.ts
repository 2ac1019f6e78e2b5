// Invocations (DESIGN.md §4): one row per asynchronous invoke, inserted before the Invoke call. Every
// transition is one conditional UPDATE; the database trigger refuses anything the state machine forbids.
import { INVOCATION_STATES, type InvocationState, type LiveInvocationState, type StateCounts } from '../api/types.ts';
import type { Queryable } from './db.ts';

export interface PoolIdentity {
  namespace: string;
  name: string;
  uid: string;
}

export interface InvocationTemplate {
  pool: PoolIdentity;
  queue: string;
  functionName: string;
  functionQualifier?: string;
  tasksPerInvocation: number;
  maxTaskAttempts: number;
  heartbeatTimeoutSeconds: number;
}

export interface LiveInvocation {
  id: number;
  status: LiveInvocationState;
  createdAt: Date;
  invokeAfter: Date;
  heartbeatAt: Date | null;
}

export interface InvocationRow extends LiveInvocation {
  poolUid: string;
  queue: string;
  requestId: string | null;
  invokeAttempts: number;
  deliveries: number;
  tasksLeased: number;
  tasksPerInvocation: number;
  maxTaskAttempts: number;
  heartbeatTimeoutSeconds: number;
  errorCode: string | null;
  errorMessage: string | null;
  finishedAt: Date | null;
}

// ---- controller side ----

/**
 * A row Lambda refused to invoke: only markRejected ends a row `failed` without it ever having started.
 * The status conditions and the dispatch pause both use this one rule.
 */
const REJECTED_ROW = `status = 'failed' AND ready_at IS NULL AND error_code IS NOT NULL`;

export async function insertInvocations(
  db: Queryable,
  args: { template: InvocationTemplate; count: number; invokeAfterMs: number },
): Promise<number[]> {
  if (args.count <= 0) return [];
  const t = args.template;
  const result = await db.query<{ id: number }>(
    `INSERT INTO ltp.invocations (pool_namespace, pool_name, pool_uid, queue, function_name, function_qualifier,
                                  tasks_per_invocation, max_task_attempts, heartbeat_timeout_seconds, created_at, invoke_after)
     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, clock_timestamp(),
            clock_timestamp() + make_interval(secs => $10::double precision / 1000)
       FROM generate_series(1, $11)
     RETURNING id`,
    [t.pool.namespace, t.pool.name, t.pool.uid, t.queue, t.functionName, t.functionQualifier ?? null,
      t.tasksPerInvocation, t.maxTaskAttempts, t.heartbeatTimeoutSeconds, args.invokeAfterMs, args.count],
  );
  return result.rows.map((r) => r.id).sort((a, b) => a - b);
}

export async function loadLiveInvocations(db: Queryable, poolUid: string): Promise<LiveInvocation[]> {
  const result = await db.query<LiveInvocation>(
    `SELECT id, status, created_at AS "createdAt", invoke_after AS "invokeAfter", heartbeat_at AS "heartbeatAt"
       FROM ltp.invocations
      WHERE pool_uid = $1 AND status IN ('created', 'pending', 'ready', 'running')
      ORDER BY id`,
    [poolUid],
  );
  return result.rows;
}

/**
 * The Invoke calls answered 202: created -> pending, in one statement. A worker may already have moved a
 * row on; then only its request id is kept.
 */
export async function markInvoked(db: Queryable, accepted: ReadonlyArray<{ id: number; requestId?: string }>): Promise<void> {
  if (accepted.length === 0) return;
  await db.query(
    `UPDATE ltp.invocations i
        SET status = CASE WHEN i.status = 'created' THEN 'pending'::ltp.invocation_status ELSE i.status END,
            invoked_at = COALESCE(i.invoked_at, now()), request_id = COALESCE(a.request_id, i.request_id),
            invoke_attempts = i.invoke_attempts + 1, error_code = NULL, error_message = NULL
       FROM unnest($1::bigint[], $2::text[]) AS a(id, request_id)
      WHERE i.id = a.id`,
    [accepted.map((a) => a.id), accepted.map((a) => a.requestId ?? null)],
  );
}

/** The Invoke call was refused for good: created -> failed, with the error code. */
export async function markRejected(db: Queryable, args: { ids: number[]; code: string; message: string }): Promise<number> {
  if (args.ids.length === 0) return 0;
  const result = await db.query(
    `UPDATE ltp.invocations
        SET status = 'failed', finished_at = now(), invoke_attempts = invoke_attempts + 1,
            error_code = $2, error_message = $3
      WHERE id = ANY($1::bigint[]) AND status = 'created'`,
    [args.ids, args.code, args.message.slice(0, 2000)],
  );
  return result.rowCount ?? 0;
}

/** The Invoke call should be tried again later (throttled, or a transient error): the row stays created. */
export async function deferInvoke(
  db: Queryable,
  args: { ids: number[]; delayMs: number; code: string; message: string; attempted: boolean },
): Promise<void> {
  if (args.ids.length === 0) return;
  await db.query(
    `UPDATE ltp.invocations
        SET invoke_after = now() + make_interval(secs => $2::double precision / 1000),
            invoke_attempts = invoke_attempts + $5::int, error_code = $3, error_message = $4
      WHERE id = ANY($1::bigint[]) AND status = 'created'`,
    [args.ids, args.delayMs, args.code, args.message.slice(0, 2000), args.attempted ? 1 : 0],
  );
}

/** Ends invocations as orphaned or terminated, only from the states given. Returns the ids that changed. */
export async function endInvocations(
  db: Queryable,
  args: { ids: number[]; from: readonly LiveInvocationState[]; to: 'orphaned' | 'terminated'; code: string; message: string },
): Promise<number[]> {
  if (args.ids.length === 0) return [];
  const result = await db.query<{ id: number }>(
    `UPDATE ltp.invocations SET status = $3::ltp.invocation_status, finished_at = now(), error_code = $4, error_message = $5
      WHERE id = ANY($1::bigint[]) AND status = ANY($2::ltp.invocation_status[])
      RETURNING id`,
    [args.ids, args.from, args.to, args.code, args.message],
  );
  return result.rows.map((r) => r.id);
}

export async function countInvocationsByState(db: Queryable, poolUid: string): Promise<StateCounts<InvocationState>> {
  const result = await db.query<{ status: InvocationState; n: number }>(
    `SELECT status, count(*)::int AS n FROM ltp.invocations WHERE pool_uid = $1 GROUP BY status`,
    [poolUid],
  );
  const counts = Object.fromEntries(INVOCATION_STATES.map((s) => [s, 0])) as StateCounts<InvocationState>;
  for (const row of result.rows) counts[row.status] = row.n;
  return counts;
}

// ---- worker side ----

export interface ClaimedInvocation {
  id: number;
  queue: string;
  tasksPerInvocation: number;
  maxTaskAttempts: number;
  heartbeatTimeoutSeconds: number;
  poolUid: string;
}

export type ClaimResult =
  | { claimed: true; invocation: ClaimedInvocation }
  | { claimed: false; status: InvocationState | 'missing' };

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
      RETURNING id, queue, tasks_per_invocation AS "tasksPerInvocation", max_task_attempts AS "maxTaskAttempts",
                heartbeat_timeout_seconds AS "heartbeatTimeoutSeconds", pool_uid AS "poolUid"`,
    [args.id, args.requestId ?? null],
  );
  const row = claimed.rows[0];
  if (row) return { claimed: true, invocation: row };
  const seen = await db.query<{ status: InvocationState }>(
    `UPDATE ltp.invocations SET deliveries = deliveries + 1 WHERE id = $1 RETURNING status`,
    [args.id],
  );
  return { claimed: false, status: seen.rows[0]?.status ?? 'missing' };
}

/** ready -> running, recording how many tasks were leased. Run in the leasing transaction. */
export async function markRunning(db: Queryable, args: { id: number; tasksLeased: number }): Promise<boolean> {
  const result = await db.query(
    `UPDATE ltp.invocations SET status = 'running', running_at = now(), heartbeat_at = now(), tasks_leased = $2
      WHERE id = $1 AND status = 'ready'`,
    [args.id, args.tasksLeased],
  );
  return result.rowCount === 1;
}

/** Records a heartbeat. Returns false when the invocation is no longer live (terminated or orphaned). */
export async function heartbeat(db: Queryable, id: number): Promise<boolean> {
  const result = await db.query(
    `UPDATE ltp.invocations SET heartbeat_at = now() WHERE id = $1 AND status IN ('ready', 'running')`,
    [id],
  );
  return result.rowCount === 1;
}

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

export async function getInvocation(db: Queryable, id: number): Promise<InvocationRow | undefined> {
  const result = await db.query<InvocationRow>(
    `SELECT id, status, pool_uid AS "poolUid", queue, request_id AS "requestId", invoke_attempts AS "invokeAttempts",
            deliveries, tasks_leased AS "tasksLeased", tasks_per_invocation AS "tasksPerInvocation",
            max_task_attempts AS "maxTaskAttempts", heartbeat_timeout_seconds AS "heartbeatTimeoutSeconds",
            created_at AS "createdAt", invoke_after AS "invokeAfter", heartbeat_at AS "heartbeatAt",
            finished_at AS "finishedAt", error_code AS "errorCode", error_message AS "errorMessage"
       FROM ltp.invocations WHERE id = $1`,
    [id],
  );
  return result.rows[0];
}

export interface RecentTrouble {
  /** Invocations orphaned within the window. */
  orphaned: number;
  /** The latest Invoke rejection within the window. */
  rejection?: { code: string; message: string; at: Date };
  /** Live rows waiting to be invoked again after a throttle or a transient error; code and message of the latest. */
  deferred?: { code: string; message: string; count: number };
  /** Invocations that succeeded having leased no task, ever. */
  wasted: number;
}

export async function recentTrouble(db: Queryable, args: { poolUid: string; windowSeconds: number }): Promise<RecentTrouble> {
  const result = await db.query<{
    orphaned: number; wasted: number;
    rej_code: string | null; rej_message: string | null; rej_at: Date | null;
    def_code: string | null; def_message: string | null; def_count: number;
  }>(
    `SELECT
       (SELECT count(*)::int FROM ltp.invocations
         WHERE pool_uid = $1 AND status = 'orphaned' AND finished_at > now() - make_interval(secs => $2)) AS orphaned,
       (SELECT count(*)::int FROM ltp.invocations
         WHERE pool_uid = $1 AND status = 'succeeded' AND tasks_leased = 0) AS wasted,
       r.error_code AS rej_code, r.error_message AS rej_message, r.finished_at AS rej_at,
       d.error_code AS def_code, d.error_message AS def_message,
       (SELECT count(*)::int FROM ltp.invocations WHERE pool_uid = $1 AND status = 'created' AND error_code IS NOT NULL) AS def_count
     FROM (SELECT 1) one
     LEFT JOIN LATERAL (
       SELECT error_code, error_message, finished_at FROM ltp.invocations
        WHERE pool_uid = $1 AND ${REJECTED_ROW} AND finished_at > now() - make_interval(secs => $2)
        ORDER BY finished_at DESC LIMIT 1) r ON true
     LEFT JOIN LATERAL (
       SELECT error_code, error_message FROM ltp.invocations
        WHERE pool_uid = $1 AND status = 'created' AND error_code IS NOT NULL
        ORDER BY updated_at DESC LIMIT 1) d ON true`,
    [args.poolUid, args.windowSeconds],
  );
  const row = result.rows[0];
  if (!row) return { orphaned: 0, wasted: 0 };
  return {
    orphaned: row.orphaned,
    wasted: row.wasted,
    ...(row.rej_code && row.rej_at ? { rejection: { code: row.rej_code, message: row.rej_message ?? '', at: row.rej_at } } : {}),
    ...(row.def_code && row.def_count > 0 ? { deferred: { code: row.def_code, message: row.def_message ?? '', count: row.def_count } } : {}),
  };
}


/** When Lambda last refused to invoke one of the pool's rows, if within the window. */
export async function latestRejection(db: Queryable, args: { poolUid: string; withinMs: number }): Promise<Date | undefined> {
  const result = await db.query<{ at: Date | null }>(
    `SELECT max(finished_at) AS at FROM ltp.invocations
      WHERE pool_uid = $1 AND ${REJECTED_ROW}
        AND finished_at > now() - make_interval(secs => $2::double precision / 1000)`,
    [args.poolUid, args.withinMs],
  );
  return result.rows[0]?.at ?? undefined;
}
