// At most one pool per database serves a queue (docs/architecture.md §9). A claim is a row keyed by the queue.
import type { Queryable } from './db.ts';
import type { PoolIdentity } from './invocation-store.ts';

export type ClaimOutcome = { held: true } | { held: false; holder: PoolIdentity };

/**
 * Claims the queue for the pool, or reports who holds it. `isStale` says whether a holder's pool no
 * longer exists; a stale claim is taken over. The holder records its retention on the claim, and each call
 * refreshes it: every controller sharing the database keeps the queue's tasks and the pool's invocations
 * that long (src/controller/retention-sweep.ts).
 */
export async function claimQueue(
  db: Queryable,
  args: {
    queue: string;
    pool: PoolIdentity;
    /** How long the pool keeps finished rows (its own retention or its controller's default; 0: for ever). */
    retentionSeconds: number;
    isStale: (holder: PoolIdentity) => Promise<boolean>;
  },
): Promise<ClaimOutcome> {
  const { queue, pool } = args;
  await db.query(
    `INSERT INTO ltp.queue_claims (queue, pool_namespace, pool_name, pool_uid, retention_seconds) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (queue) DO UPDATE SET retention_seconds = EXCLUDED.retention_seconds, refreshed_at = now()
      WHERE ltp.queue_claims.pool_uid = EXCLUDED.pool_uid`,
    [queue, pool.namespace, pool.name, pool.uid, args.retentionSeconds],
  );
  const current = await db.query<PoolIdentity>(
    `SELECT pool_namespace AS namespace, pool_name AS name, pool_uid AS uid FROM ltp.queue_claims WHERE queue = $1`,
    [queue],
  );
  const holder = current.rows[0];
  if (!holder || holder.uid === pool.uid) return { held: true };
  if (await args.isStale(holder)) {
    const taken = await db.query(
      `UPDATE ltp.queue_claims SET pool_namespace = $2, pool_name = $3, pool_uid = $4, claimed_at = now(),
              retention_seconds = $6, refreshed_at = now()
        WHERE queue = $1 AND pool_uid = $5`,
      [queue, pool.namespace, pool.name, pool.uid, holder.uid, args.retentionSeconds],
    );
    if (taken.rowCount === 1) return { held: true };
  }
  return { held: false, holder };
}

/**
 * The pool's claims stop speaking for their queues' retention (the tenancy policy now refuses the pool): every
 * controller's sweep then keeps those queues for its own default. Returns whether a claim changed.
 */
export async function withdrawClaimRetention(db: Queryable, poolUid: string): Promise<boolean> {
  const result = await db.query(
    `UPDATE ltp.queue_claims SET retention_seconds = NULL WHERE pool_uid = $1 AND retention_seconds IS NOT NULL`,
    [poolUid],
  );
  return (result.rowCount ?? 0) > 0;
}

/** Releases every claim the pool holds (its queue changed, or it is being deleted). */
export async function releaseClaims(db: Queryable, args: { poolUid: string; exceptQueue?: string }): Promise<void> {
  await db.query(`DELETE FROM ltp.queue_claims WHERE pool_uid = $1 AND queue IS DISTINCT FROM $2`, [
    args.poolUid,
    args.exceptQueue ?? null,
  ]);
}
