// Invocations (docs/architecture.md §4): one row per asynchronous invoke, inserted before the Invoke call. Every
// transition is one conditional UPDATE; the database trigger refuses anything the state machine forbids.
import { INVOCATION_STATES, type FunctionRef, type InvocationState, type LiveInvocationState, type StateCounts } from '../api/types.ts';
import type { Queryable } from './db.ts';
import type { DbClock } from './db-clock.ts';

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
  functionRegion?: string;
  tasksPerInvocation: number;
  maxTaskAttempts: number;
  heartbeatTimeoutSeconds: number;
  retryInitialDelayMs: number;
  retryMaxDelayMs: number;
}

export interface LiveInvocation {
  id: number;
  status: LiveInvocationState;
  createdAt: Date;
  invokeAfter: Date;
  heartbeatAt: Date | null;
  /** When its handler started (claimed the row), if it has. */
  readyAt: Date | null;
  heartbeatTimeoutSeconds: number;
  invokeAttempts: number;
  /** The function the row was dispatched to: a re-invoke goes there, whatever the spec says now. */
  function: FunctionRef;
}

export interface InvocationRow extends Omit<LiveInvocation, 'function'> {
  poolUid: string;
  functionName: string;
  tasksStarted: number;
  queue: string;
  requestId: string | null;
  invokeAttempts: number;
  deliveries: number;
  tasksLeased: number;
  tasksPerInvocation: number;
  maxTaskAttempts: number;
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
  args: { template: InvocationTemplate; count: number; invokeAfterMs: number; decisionId?: number },
): Promise<number[]> {
  const [ids] = await insertInvocationBatches(db, {
    invokeAfterMs: args.invokeAfterMs,
    batches: [{ template: args.template, count: args.count, ...(args.decisionId !== undefined ? { decisionId: args.decisionId } : {}) }],
  });
  return ids ?? [];
}

/**
 * New `created` rows for many pools (one batch per pool, each pool at most once) in one statement; returns
 * each batch's ids, in order. Every row may be invoked from `invokeAfterMs` on; before that, only the pass that inserted it does.
 */
export async function insertInvocationBatches(
  db: Queryable,
  args: {
    invokeAfterMs: number;
    batches: ReadonlyArray<{ template: InvocationTemplate; count: number; decisionId?: number }>;
  },
): Promise<number[][]> {
  const batches = args.batches;
  const ids = batches.map((): number[] => []);
  if (batches.every((b) => b.count <= 0)) return ids;
  const byPool = new Map(batches.map((b, i) => [b.template.pool.uid, ids[i]]));
  if (byPool.size !== batches.length) throw new Error('insertInvocationBatches takes one batch per pool');
  const column = <T>(f: (t: InvocationTemplate, b: (typeof batches)[number]) => T) => batches.map((b) => f(b.template, b));
  const result = await db.query<{ id: number; pool_uid: string }>({
    name: 'ltp_insert_invocation_batches',
    text: `INSERT INTO ltp.invocations (pool_namespace, pool_name, pool_uid, queue, function_name, function_qualifier, function_region,
                                  tasks_per_invocation, max_task_attempts, heartbeat_timeout_seconds,
                                  retry_initial_delay_ms, retry_max_delay_ms, created_at, invoke_after, decision_id)
     SELECT p.namespace, p.name, p.uid, p.queue, p.fn, p.qualifier, p.region, p.tasks_per_invocation, p.max_task_attempts,
            p.heartbeat_timeout_seconds, p.retry_initial_delay_ms, p.retry_max_delay_ms, clock_timestamp(),
            clock_timestamp() + make_interval(secs => $14::double precision / 1000), p.decision_id
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::int[], $9::int[],
                   $10::int[], $11::int[], $12::int[], $13::bigint[], $15::int[])
            AS p(namespace, name, uid, queue, fn, qualifier, region, tasks_per_invocation, max_task_attempts,
                 heartbeat_timeout_seconds, retry_initial_delay_ms, retry_max_delay_ms, decision_id, count),
            generate_series(1, p.count)
     RETURNING id, pool_uid`,
    values: [
      column((t) => t.pool.namespace),
      column((t) => t.pool.name),
      column((t) => t.pool.uid),
      column((t) => t.queue),
      column((t) => t.functionName),
      column((t) => t.functionQualifier ?? null),
      column((t) => t.functionRegion ?? null),
      column((t) => t.tasksPerInvocation),
      column((t) => t.maxTaskAttempts),
      column((t) => t.heartbeatTimeoutSeconds),
      column((t) => t.retryInitialDelayMs),
      column((t) => t.retryMaxDelayMs),
      column((_, b) => b.decisionId ?? null),
      args.invokeAfterMs,
      column((_, b) => Math.max(0, b.count)),
    ],
  });
  for (const row of result.rows) byPool.get(row.pool_uid)?.push(row.id);
  return ids.map((list) => list.sort((x, y) => x - y));
}

export async function loadLiveInvocations(db: Queryable, poolUid: string): Promise<LiveInvocation[]> {
  const result = await db.query<Omit<LiveInvocation, 'function'> & { fn: string; qualifier: string | null; region: string | null }>(
    `SELECT id, status, created_at AS "createdAt", invoke_after AS "invokeAfter", heartbeat_at AS "heartbeatAt", ready_at AS "readyAt",
            heartbeat_timeout_seconds AS "heartbeatTimeoutSeconds", invoke_attempts AS "invokeAttempts",
            function_name AS fn, function_qualifier AS qualifier, function_region AS region
       FROM ltp.invocations
      WHERE pool_uid = $1 AND status IN ('created', 'pending', 'ready', 'running')
      ORDER BY id`,
    [poolUid],
  );
  return result.rows.map(({ fn, qualifier, region, ...row }) => ({
    ...row,
    function: { name: fn, ...(qualifier ? { qualifier } : {}), ...(region ? { region } : {}) },
  }));
}

export interface WorkerOutcomeRow {
  finishedAt: Date;
  tasksStarted: number;
  code: string | null;
  message: string | null;
}

/** The pool's latest invocations that a worker finished (succeeded or failed after starting), newest first. */
export async function recentWorkerOutcomes(
  db: Queryable,
  args: { poolUid: string; limit: number; withinSeconds: number },
): Promise<WorkerOutcomeRow[]> {
  const result = await db.query<WorkerOutcomeRow>(
    `SELECT finished_at AS "finishedAt", tasks_started AS "tasksStarted", error_code AS code, error_message AS message
       FROM ltp.invocations
      WHERE pool_uid = $1 AND status IN ('succeeded', 'failed') AND ready_at IS NOT NULL
        AND finished_at > now() - make_interval(secs => $3)
      ORDER BY finished_at DESC LIMIT $2`,
    [args.poolUid, args.limit, args.withinSeconds],
  );
  return result.rows;
}

/** An Invoke call Lambda answered 202. */
export interface AcceptedInvoke {
  id: number;
  requestId?: string;
  /** When the answer arrived, on this process's monotonic clock (performance.now()); now when absent. */
  acceptedAt?: number;
}

/**
 * The Invoke calls answered 202: created -> pending, in one statement. A worker may already have moved a
 * row on, even finished it; then only when it was invoked and its request id are recorded.
 *
 * `invoked_at` is when Lambda answered, not when the row is marked: rows are marked in one statement once a
 * burst's invokes are answered (pass-batcher.ts), up to a second after the first answer, and a start delay
 * taken from the marking time read short, even negative. With `clock` (the database's, db-clock.ts) each
 * answer's moment is written as the database's time directly, never later than the statement. Without it, or
 * while it has no recent probe, each row's time is the database's clock at this statement less how long ago
 * its answer came on this process's monotonic clock: late by the statement's trip, a few ms in a burst.
 */
export async function markInvoked(db: Queryable, accepted: readonly AcceptedInvoke[], clock?: DbClock): Promise<void> {
  if (accepted.length === 0) return;
  const now = performance.now();
  const offset = clock?.offsetMs(now);
  await db.query({
    name: 'ltp_mark_invoked',
    text: `UPDATE ltp.invocations i
        SET status = CASE WHEN i.status = 'created' THEN 'pending'::ltp.invocation_status ELSE i.status END,
            invoked_at = COALESCE(i.invoked_at, CASE
              WHEN $4::float8 IS NULL THEN statement_timestamp() - make_interval(secs => a.age_ms / 1000)
              ELSE LEAST(to_timestamp(($4::float8 - a.age_ms) / 1000), statement_timestamp()) END),
            request_id = COALESCE(a.request_id, i.request_id),
            invoke_attempts = i.invoke_attempts + 1,
            -- A deferred invoke's error is cleared; a worker's or the sweep's verdict on an ended row is kept.
            error_code = CASE WHEN i.status IN ('created', 'pending') THEN NULL ELSE i.error_code END,
            error_message = CASE WHEN i.status IN ('created', 'pending') THEN NULL ELSE i.error_message END
       FROM unnest($1::bigint[], $2::text[], $3::float8[]) AS a(id, request_id, age_ms)
      WHERE i.id = a.id`,
    values: [
      accepted.map((a) => a.id),
      accepted.map((a) => a.requestId ?? null),
      accepted.map((a) => (a.acceptedAt === undefined ? 0 : Math.max(0, now - a.acceptedAt))),
      // The database's clock at `now`: each row's moment is this less its answer's age.
      offset === undefined ? null : now + offset,
    ],
  });
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

/**
 * The Invoke call should be tried again later (throttled, or a transient error): each row stays created
 * and is due again after its own delay. `attempted` rows count the call that failed.
 */
export async function deferInvoke(
  db: Queryable,
  args: { rows: ReadonlyArray<{ id: number; delayMs: number; attempted: boolean }>; code: string; message: string },
): Promise<void> {
  if (args.rows.length === 0) return;
  await db.query(
    `UPDATE ltp.invocations i
        SET invoke_after = now() + make_interval(secs => r.delay_ms / 1000),
            invoke_attempts = i.invoke_attempts + r.attempted, error_code = $4, error_message = $5
       FROM unnest($1::bigint[], $2::double precision[], $3::int[]) AS r(id, delay_ms, attempted)
      WHERE i.id = r.id AND i.status = 'created'`,
    [
      args.rows.map((r) => r.id),
      args.rows.map((r) => r.delayMs),
      args.rows.map((r) => (r.attempted ? 1 : 0)),
      args.code,
      args.message.slice(0, 2000),
    ],
  );
}

/** Ends invocations as orphaned or terminated, only from the states given. Returns the ids that changed. */
export async function endInvocations(
  db: Queryable,
  args: { ids: number[]; from: readonly LiveInvocationState[]; to: 'orphaned' | 'terminated'; code: string; message: string },
): Promise<number[]> {
  if (args.ids.length === 0) return [];
  const result = await db.query<{ id: number }>(
    `UPDATE ltp.invocations SET status = $3::ltp.invocation_status, finished_at = clock_timestamp(), error_code = $4, error_message = $5
      WHERE id = ANY($1::bigint[]) AND status = ANY($2::ltp.invocation_status[])
      RETURNING id`,
    [args.ids, args.from, args.to, args.code, args.message],
  );
  return result.rows.map((r) => r.id);
}

/**
 * The pool's invocations by state for status: live ones counted (bounded by the live rows), finished ones
 * from the pool's totals row. Reads no history. `wasted` is the pool's total of wasted invocations.
 */
export async function poolInvocationCounts(
  db: Queryable,
  poolUid: string,
): Promise<{ counts: StateCounts<InvocationState>; wasted: number }> {
  // Named (prepared), as every read a status write makes: planned once per connection, not on every write.
  const result = await db.query<{ status: InvocationState; n: number }>({
    name: 'ltp_pool_invocation_counts',
    text: `SELECT status::text AS status, count(*)::int AS n FROM ltp.invocations
      WHERE pool_uid = $1 AND status IN ('created', 'pending', 'ready', 'running') GROUP BY status
     UNION ALL
     SELECT s.status, s.n::int FROM ltp.pool_totals t,
            LATERAL (VALUES ('succeeded', t.succeeded), ('failed', t.failed), ('orphaned', t.orphaned),
                            ('terminated', t.terminated), ('wasted', t.wasted)) AS s(status, n)
      WHERE t.pool_uid = $1`,
    values: [poolUid],
  });
  const counts = Object.fromEntries(INVOCATION_STATES.map((s) => [s, 0])) as StateCounts<InvocationState>;
  let wasted = 0;
  for (const row of result.rows) {
    if ((row.status as string) === 'wasted') wasted = row.n;
    else counts[row.status] = row.n;
  }
  return { counts, wasted };
}

/** Every invocation of a pool counted by state, over all its rows: for inspection (tests, the CLI), never a pass. */
export async function countInvocationsByState(db: Queryable, poolUid: string): Promise<StateCounts<InvocationState>> {
  const result = await db.query<{ status: InvocationState; n: number }>(
    `SELECT status, count(*)::int AS n FROM ltp.invocations WHERE pool_uid = $1 GROUP BY status`,
    [poolUid],
  );
  const counts = Object.fromEntries(INVOCATION_STATES.map((s) => [s, 0])) as StateCounts<InvocationState>;
  for (const row of result.rows) counts[row.status] = row.n;
  return counts;
}

export async function getInvocation(db: Queryable, id: number): Promise<InvocationRow | undefined> {
  const result = await db.query<InvocationRow>(
    `SELECT id, status, pool_uid AS "poolUid", queue, function_name AS "functionName", request_id AS "requestId",
            invoke_attempts AS "invokeAttempts", deliveries, tasks_leased AS "tasksLeased", tasks_started AS "tasksStarted",
            tasks_per_invocation AS "tasksPerInvocation",
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
  /**
   * The latest Invoke rejection within the window: the function it named, and whether Lambda has accepted an
   * invoke of the pool since (then the rejection no longer describes the pool).
   */
  rejection?: { code: string; message: string; at: Date; function: FunctionRef; acceptedSince: boolean };
  /** Live rows waiting to be invoked again after a throttle or a transient error; code and message of the latest. */
  deferred?: { code: string; message: string; count: number };
  /** Invocations a worker finished within the window without starting a task. */
  wasted: number;
}

export async function recentTrouble(db: Queryable, args: { poolUid: string; windowSeconds: number }): Promise<RecentTrouble> {
  const result = await db.query<{
    orphaned: number;
    wasted: number;
    rej_code: string | null;
    rej_message: string | null;
    rej_at: Date | null;
    rej_fn: string | null;
    rej_qualifier: string | null;
    rej_region: string | null;
    def_code: string | null;
    def_message: string | null;
    def_count: number;
  }>({
    name: 'ltp_recent_trouble',
    text: `SELECT
       (SELECT count(*)::int FROM ltp.invocations
         WHERE pool_uid = $1 AND status = 'orphaned' AND finished_at > now() - make_interval(secs => $2)) AS orphaned,
       (SELECT count(*)::int FROM ltp.invocations
         WHERE pool_uid = $1 AND finished_at > now() - make_interval(secs => $2)
           AND status IN ('succeeded', 'failed') AND ready_at IS NOT NULL AND tasks_started = 0) AS wasted,
       r.error_code AS rej_code, r.error_message AS rej_message, r.finished_at AS rej_at,
       r.function_name AS rej_fn, r.function_qualifier AS rej_qualifier, r.function_region AS rej_region,
       d.error_code AS def_code, d.error_message AS def_message,
       (SELECT count(*)::int FROM ltp.invocations WHERE pool_uid = $1 AND status = 'created' AND error_code IS NOT NULL) AS def_count
     FROM (SELECT 1) one
     LEFT JOIN LATERAL (
       SELECT error_code, error_message, finished_at, function_name, function_qualifier, function_region FROM ltp.invocations
        WHERE pool_uid = $1 AND ${REJECTED_ROW} AND finished_at > now() - make_interval(secs => $2)
        ORDER BY finished_at DESC LIMIT 1) r ON true
     LEFT JOIN LATERAL (
       SELECT error_code, error_message FROM ltp.invocations
        WHERE pool_uid = $1 AND status = 'created' AND error_code IS NOT NULL
        ORDER BY updated_at DESC LIMIT 1) d ON true`,
    values: [args.poolUid, args.windowSeconds],
  });
  const row = result.rows[0];
  if (!row) return { orphaned: 0, wasted: 0 };
  return {
    orphaned: row.orphaned,
    wasted: row.wasted,
    ...(row.rej_code && row.rej_at
      ? {
          rejection: {
            code: row.rej_code,
            message: row.rej_message ?? '',
            at: row.rej_at,
            function: {
              name: row.rej_fn ?? '',
              ...(row.rej_qualifier ? { qualifier: row.rej_qualifier } : {}),
              ...(row.rej_region ? { region: row.rej_region } : {}),
            },
            acceptedSince: await acceptedSince(db, args.poolUid, row.rej_at),
          },
        }
      : {}),
    ...(row.def_code && row.def_count > 0
      ? { deferred: { code: row.def_code, message: row.def_message ?? '', count: row.def_count } }
      : {}),
  };
}

/**
 * Whether Lambda accepted an invoke of the pool after `at` (a rejection's time): a live row, or one that has
 * finished since. Asked only for a pool with a recent rejection, as a statement of its own planned for its
 * values: inside the status read it made Postgres plan that read again on every call (a generic plan costed
 * for a pool's whole history), 44 more shared buffers and 0.9 ms a pass with 3 million finished rows.
 */
async function acceptedSince(db: Queryable, poolUid: string, at: Date): Promise<boolean> {
  const result = await db.query<{ accepted: boolean }>(
    `SELECT COALESCE((SELECT max(invoked_at) FROM ltp.invocations
                       WHERE pool_uid = $1 AND status IN ('created', 'pending', 'ready', 'running')) > $2
                  OR (SELECT max(invoked_at) FROM ltp.invocations WHERE pool_uid = $1 AND finished_at > $2) > $2, false) AS accepted`,
    [poolUid, at],
  );
  return result.rows[0]?.accepted === true;
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

/** The pools that have live invocations in this database (bounded by the live rows, never history). */
export async function liveOwners(db: Queryable): Promise<Array<PoolIdentity & { live: number }>> {
  const result = await db.query<PoolIdentity & { live: number }>(
    `SELECT pool_uid AS uid, min(pool_namespace) AS namespace, min(pool_name) AS name, count(*)::int AS live
       FROM ltp.invocations WHERE status IN ('created', 'pending', 'ready', 'running')
      GROUP BY pool_uid`,
  );
  return result.rows;
}

/** Ends every live invocation of a pool as terminated (the pool is gone, or moved to another database). */
export async function terminatePoolInvocations(db: Queryable, args: { poolUid: string; code: string; message: string }): Promise<number[]> {
  const result = await db.query<{ id: number }>(
    `UPDATE ltp.invocations SET status = 'terminated', finished_at = clock_timestamp(), error_code = $2, error_message = $3
      WHERE pool_uid = $1 AND status IN ('created', 'pending', 'ready', 'running')
      RETURNING id`,
    [args.poolUid, args.code, args.message],
  );
  return result.rows.map((r) => r.id);
}
