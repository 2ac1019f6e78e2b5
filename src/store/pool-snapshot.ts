// Everything a dispatch pass reads about a pool, in one round trip for a whole batch of pools: the database
// clock, each pool's live invocations, the due backlog (bounded), when the next delayed task is due, the
// latest Invoke rejection, the latest invocations a worker finished, and the tasks still leased by its ended
// invocations. Every part is bounded by live rows, a limit or a recent window, through the indexes of the
// migrations (1764892800000-pass-plan-indexes.ts has the ones that match the live rows and the leases
// exactly). The leased tasks are looked up by the pool's own queue (spec.queue is immutable, and a pool's
// invocations lease only from it), so a pass reads its own leases, not those of every pool in the database.
import type { InvocationState, LiveInvocationState } from '../api/types.ts';
import type { Queryable } from './db.ts';
import type { LiveInvocation, WorkerOutcomeRow } from './invocation-store.ts';
import type { StrandedLeaseRow } from './task-store.ts';

export interface PoolSnapshot {
  now: Date;
  live: LiveInvocation[];
  backlog: number;
  nextDueAt?: Date;
  rejectedAt?: Date;
  outcomes: WorkerOutcomeRow[];
  stranded: StrandedLeaseRow[];
}

/** What a snapshot reads of one pool. */
export interface PoolSnapshotArgs {
  poolUid: string;
  queue: string;
  /** Count the due backlog no further than this. */
  backlogLimit: number;
  /** Whether to look for the next delayed task (only an active pool wakes for one). */
  withNextDue: boolean;
  /** How many of the latest finished invocations to read (0: none). */
  outcomesLimit: number;
}

/** Windows and limits every pool of one snapshot shares. */
export interface SnapshotWindows {
  rejectionWithinMs: number;
  outcomesWithinSeconds: number;
  strandedLimit: number;
}

export type SnapshotArgs = PoolSnapshotArgs & SnapshotWindows;

interface Raw {
  /** The pool's place in the arguments, from 1. */
  n: number;
  now: Date;
  live: Array<{
    id: number;
    status: LiveInvocationState;
    created_at: string;
    invoke_after: string;
    heartbeat_at: string | null;
    ready_at: string | null;
    heartbeat_timeout_seconds: number;
    invoke_attempts: number;
    fn: string;
    qualifier: string | null;
    region: string | null;
  }> | null;
  backlog: number;
  next_due: Date | null;
  rejected_at: Date | null;
  outcomes: Array<{ finished_at: string; tasks_started: number; code: string | null; message: string | null }> | null;
  stranded: Array<{
    id: number;
    invocation_id: number;
    attempts: number;
    max_attempts: number | null;
    started: boolean;
    queue: string;
    status: InvocationState;
    ever_started: boolean;
    finished_at: string | null;
    heartbeat_timeout_seconds: number;
    max_task_attempts: number;
    retry_initial_delay_ms: number;
    retry_max_delay_ms: number;
  }> | null;
}

/**
 * The most live invocations a pass reads. A pool never has more than maxConcurrency (at most 1,000) live rows
 * of its own making; more can only have been written into its database by someone else (say, the owner of a
 * pool's own database), and reading them all would let that database fill the controller's memory.
 */
export const LIVE_ROWS_READ = 2_000;

// One row per pool of the batch, in one round trip: the pools come in as parallel arrays, and every part is
// a subquery correlated to its pool, so each is the same bounded index read as for a pool alone. Exported for
// the test that reads its plan (test/integration/pass-reads.test.ts).
export const POOL_SNAPSHOTS_SQL = `
SELECT p.n::int AS n, now() AS now,
  (SELECT json_agg(l ORDER BY l.id) FROM (
     SELECT id, status, created_at, invoke_after, heartbeat_at, ready_at, heartbeat_timeout_seconds, invoke_attempts,
            function_name AS fn, function_qualifier AS qualifier, function_region AS region
       FROM ltp.invocations WHERE pool_uid = p.uid AND status IN ('created', 'pending', 'ready', 'running')
      ORDER BY id LIMIT $9) l) AS live,
  (SELECT count(*)::int FROM (
     SELECT 1 FROM ltp.tasks WHERE queue = p.queue AND status = 'created' AND run_after <= now() LIMIT p.backlog_limit) b) AS backlog,
  CASE WHEN p.with_next_due THEN
    (SELECT min(run_after) FROM ltp.tasks WHERE queue = p.queue AND status = 'created' AND run_after > now()) END AS next_due,
  (SELECT max(finished_at) FROM ltp.invocations
    WHERE pool_uid = p.uid AND finished_at > now() - make_interval(secs => $6::double precision / 1000)
      AND status = 'failed' AND ready_at IS NULL AND error_code IS NOT NULL) AS rejected_at,
  (SELECT json_agg(o) FROM (
     SELECT finished_at, tasks_started, error_code AS code, error_message AS message FROM ltp.invocations
      WHERE pool_uid = p.uid AND status IN ('succeeded', 'failed') AND ready_at IS NOT NULL
        AND finished_at > now() - make_interval(secs => $7)
      ORDER BY finished_at DESC LIMIT p.outcomes_limit) o) AS outcomes,
  (SELECT json_agg(s ORDER BY s.id) FROM (
     SELECT t.id, t.invocation_id, t.attempts, t.max_attempts, (t.started_at IS NOT NULL AND t.started_at >= t.leased_at) AS started,
            t.queue, i.status, i.ready_at IS NOT NULL AS ever_started, i.finished_at, i.heartbeat_timeout_seconds,
            i.max_task_attempts, i.retry_initial_delay_ms, i.retry_max_delay_ms
       FROM ltp.tasks t JOIN ltp.invocations i ON i.id = t.invocation_id
      WHERE t.status = 'leased' AND t.queue = p.queue AND i.pool_uid = p.uid
        AND i.status IN ('succeeded', 'failed', 'orphaned', 'terminated')
      ORDER BY t.id LIMIT $8) s) AS stranded
FROM unnest($1::text[], $2::text[], $3::int[], $4::boolean[], $5::int[])
     WITH ORDINALITY AS p(uid, queue, backlog_limit, with_next_due, outcomes_limit, n)`;

export async function loadPoolSnapshot(db: Queryable, args: SnapshotArgs): Promise<PoolSnapshot> {
  const [snapshot] = await loadPoolSnapshots(db, [args], args);
  if (!snapshot) throw new Error('the database returned no snapshot');
  return snapshot;
}

/** The snapshots of many pools in one round trip, in the order of `pools`. */
export async function loadPoolSnapshots(
  db: Queryable,
  pools: readonly PoolSnapshotArgs[],
  windows: SnapshotWindows,
): Promise<PoolSnapshot[]> {
  if (pools.length === 0) return [];
  // A named (prepared) statement: Postgres plans it once per connection, not on every pass.
  const result = await db.query<Raw>({
    name: 'ltp_pool_snapshots',
    text: POOL_SNAPSHOTS_SQL,
    values: [
      pools.map((p) => p.poolUid),
      pools.map((p) => p.queue),
      pools.map((p) => p.backlogLimit),
      pools.map((p) => p.withNextDue),
      pools.map((p) => p.outcomesLimit),
      windows.rejectionWithinMs,
      windows.outcomesWithinSeconds,
      windows.strandedLimit,
      LIVE_ROWS_READ,
    ],
  });
  const snapshots = new Array<PoolSnapshot | undefined>(pools.length).fill(undefined);
  for (const row of result.rows) {
    const pool = pools[row.n - 1];
    if (pool) snapshots[row.n - 1] = toSnapshot(row, pool.poolUid);
  }
  return snapshots.map((snapshot, i) => {
    if (!snapshot) throw new Error(`the database returned no snapshot for pool ${pools[i]?.poolUid ?? i}`);
    return snapshot;
  });
}

function toSnapshot(row: Raw, poolUid: string): PoolSnapshot {
  const date = (text: string) => new Date(text);
  return {
    now: row.now,
    live: (row.live ?? []).map((l) => ({
      id: l.id,
      status: l.status,
      createdAt: date(l.created_at),
      invokeAfter: date(l.invoke_after),
      heartbeatAt: l.heartbeat_at === null ? null : date(l.heartbeat_at),
      readyAt: l.ready_at === null ? null : date(l.ready_at),
      heartbeatTimeoutSeconds: l.heartbeat_timeout_seconds,
      invokeAttempts: l.invoke_attempts,
      function: { name: l.fn, ...(l.qualifier ? { qualifier: l.qualifier } : {}), ...(l.region ? { region: l.region } : {}) },
    })),
    backlog: row.backlog,
    ...(row.next_due ? { nextDueAt: row.next_due } : {}),
    ...(row.rejected_at ? { rejectedAt: row.rejected_at } : {}),
    outcomes: (row.outcomes ?? []).map((o) => ({
      finishedAt: date(o.finished_at),
      tasksStarted: o.tasks_started,
      code: o.code,
      message: o.message,
    })),
    stranded: (row.stranded ?? []).map((s) => ({
      id: s.id,
      invocationId: s.invocation_id,
      attempts: s.attempts,
      maxAttempts: s.max_attempts,
      started: s.started,
      poolUid,
      queue: s.queue,
      invocation: {
        status: s.status,
        everStarted: s.ever_started,
        finishedAt: s.finished_at === null ? null : date(s.finished_at).getTime(),
        heartbeatTimeoutMs: s.heartbeat_timeout_seconds * 1000,
        maxTaskAttempts: s.max_task_attempts,
        retryInitialDelayMs: s.retry_initial_delay_ms,
        retryMaxDelayMs: s.retry_max_delay_ms,
      },
    })),
  };
}
