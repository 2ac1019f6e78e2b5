// Retention: finished tasks and invocations older than their retention age are deleted, oldest first, in
// small batches. Each batch is its own short statement that locks only the finished rows it deletes
// (SKIP LOCKED), so it never holds up a dispatch pass, which touches only live rows. Totals are kept in
// ltp.queue_totals and ltp.pool_totals, so status is unchanged by a delete.
import type { Queryable } from './db.ts';

export interface RetentionTarget {
  /** A queue (tasks) or a pool uid (invocations). */
  key: string;
  /** Rows finished longer ago than this are deleted. */
  maxAgeSeconds: number;
}

const EXPIRED_PROBES = {
  tasks: `EXISTS (SELECT 1 FROM ltp.tasks x WHERE x.queue = t.key AND x.status IN ('done', 'failed', 'cancelled')
                  AND x.finished_at < now() - make_interval(secs => t.age))`,
  invocations: `EXISTS (SELECT 1 FROM ltp.invocations x WHERE x.pool_uid = t.key AND x.finished_at IS NOT NULL
                        AND x.finished_at < now() - make_interval(secs => t.age))`,
  decisions: `EXISTS (SELECT 1 FROM ltp.decisions x WHERE x.pool_uid = t.key AND x.decided_at < now() - make_interval(secs => t.age))`,
};

/**
 * Of the targets, those with at least one finished row older than their age, in one statement (one index
 * probe each): the queues and pools of the totals rows never shrink, and a statement per pool that ever
 * existed, every sweep, grew with pool churn (20,000 gone pools: 20,005 statements, 5 s).
 */
export async function targetsWithExpiredRows(
  db: Queryable,
  table: keyof typeof EXPIRED_PROBES,
  targets: readonly RetentionTarget[],
): Promise<RetentionTarget[]> {
  if (targets.length === 0) return [];
  const probe = EXPIRED_PROBES[table];
  const result = await db.query<{ key: string; age: number }>(
    `SELECT t.key, t.age FROM unnest($1::text[], $2::double precision[]) AS t(key, age) WHERE ${probe}`,
    [targets.map((t) => t.key), targets.map((t) => t.maxAgeSeconds)],
  );
  return result.rows.map((r) => ({ key: r.key, maxAgeSeconds: r.age }));
}

/** Deletes at most `batch` finished (done, failed or cancelled) tasks of one queue older than the age. Returns how many. */
export async function deleteExpiredTasks(db: Queryable, args: { queue: string; maxAgeSeconds: number; batch: number }): Promise<number> {
  const result = await db.query(
    `DELETE FROM ltp.tasks WHERE id IN (
       SELECT id FROM ltp.tasks
        WHERE queue = $1 AND status IN ('done', 'failed', 'cancelled') AND finished_at < now() - make_interval(secs => $2)
        ORDER BY finished_at LIMIT $3 FOR UPDATE SKIP LOCKED)`,
    [args.queue, args.maxAgeSeconds, args.batch],
  );
  return result.rowCount ?? 0;
}

/**
 * Deletes at most `batch` finished invocations of one pool older than the age that no task points at any
 * more (a task keeps the invocation that last leased it until retention deletes the task). Returns how many.
 */
export async function deleteExpiredInvocations(
  db: Queryable,
  args: { poolUid: string; maxAgeSeconds: number; batch: number },
): Promise<number> {
  const result = await db.query(
    `DELETE FROM ltp.invocations WHERE id IN (
       SELECT i.id FROM ltp.invocations i
        WHERE i.pool_uid = $1 AND i.finished_at IS NOT NULL AND i.finished_at < now() - make_interval(secs => $2)
          AND NOT EXISTS (SELECT 1 FROM ltp.tasks t WHERE t.invocation_id = i.id)
        ORDER BY i.finished_at LIMIT $3 FOR UPDATE SKIP LOCKED)`,
    [args.poolUid, args.maxAgeSeconds, args.batch],
  );
  return result.rowCount ?? 0;
}

/** Every queue and pool that ever finished something in this database (their totals rows). */
export async function knownQueuesAndPools(db: Queryable): Promise<{ queues: string[]; pools: string[] }> {
  const [queues, pools] = await Promise.all([
    db.query<{ queue: string }>(`SELECT queue FROM ltp.queue_totals`),
    db.query<{ pool_uid: string }>(`SELECT pool_uid FROM ltp.pool_totals`),
  ]);
  return { queues: queues.rows.map((r) => r.queue), pools: pools.rows.map((r) => r.pool_uid) };
}

/** A queue's claim as retention reads it: who holds it, and the retention its controller recorded. */
export interface QueueHolder {
  uid: string;
  /** Seconds (0: for ever); undefined when the claim records none, or was not refreshed within `freshSeconds`. */
  retentionSeconds?: number;
}

/** A claim whose controller has not confirmed it for this long counts as stale: its recorded retention is ignored. */
export const CLAIM_FRESH_SECONDS = 86_400;

/**
 * Which pool holds each queue's claim in this database (queue -> holder), with the retention the holder's
 * controller recorded when the claim is fresh: only the holder sets its queue's retention.
 */
export async function queueHolders(db: Queryable, freshSeconds = CLAIM_FRESH_SECONDS): Promise<Map<string, QueueHolder>> {
  const claims = await db.query<{ queue: string; pool_uid: string; retention_seconds: number | null }>(
    `SELECT queue, pool_uid,
            CASE WHEN refreshed_at > now() - make_interval(secs => $1) THEN retention_seconds END AS retention_seconds
       FROM ltp.queue_claims`,
    [freshSeconds],
  );
  return new Map(
    claims.rows.map((r) => [
      r.queue,
      { uid: r.pool_uid, ...(r.retention_seconds === null ? {} : { retentionSeconds: r.retention_seconds }) },
    ]),
  );
}
