// The decision trace: one row per dispatch pass that changed something (what it saw, what it did, why),
// and the reads behind `lambda-task-pool trace`. The invocations a decision started carry its id.
import type { Queryable } from './db.ts';

export interface DecisionInputs {
  backlog: number;
  /** Whether the backlog count stopped at its limit (maxConcurrency x tasksPerInvocation): "at least". */
  backlogCapped: boolean;
  queued: number;
  ready: number;
  running: number;
  supply: number;
  want: number;
  headroom: number;
  maxConcurrency: number;
  tasksPerInvocation: number;
  mode: string;
}

export interface DecisionOutcome {
  dispatched: number;
  reinvoked: number[];
  orphaned: number[];
  terminated: number[];
  releasedTasks: number;
  failedTasks: number;
  limitedBy?: string;
}

export interface DecisionRow {
  id: number;
  poolUid: string;
  decidedAt: Date;
  inputs: DecisionInputs;
  outcome: DecisionOutcome;
  reason: string;
}

/** Ids kept per list in a decision's outcome; a pass that ends more says how many it left out. */
const IDS_KEPT = 1_000;

export interface DecisionRecord {
  pool: { namespace: string; name: string; uid: string };
  inputs: DecisionInputs;
  outcome: DecisionOutcome;
  reason: string;
}

export async function recordDecision(db: Queryable, args: DecisionRecord): Promise<{ id: number; decidedAt: Date }> {
  const [recorded] = await recordDecisions(db, [args]);
  if (!recorded) throw new Error('recording a decision returned no row');
  return recorded;
}

/** Records the decisions of many passes (one per pool) in one statement; returns their ids in the order given. */
export async function recordDecisions(db: Queryable, records: readonly DecisionRecord[]): Promise<Array<{ id: number; decidedAt: Date }>> {
  if (records.length === 0) return [];
  const outcome = (o: DecisionOutcome) => ({
    ...o,
    reinvoked: o.reinvoked.slice(0, IDS_KEPT),
    orphaned: o.orphaned.slice(0, IDS_KEPT),
    terminated: o.terminated.slice(0, IDS_KEPT),
  });
  const result = await db.query<{ id: number; pool_uid: string; decided_at: Date }>({
    name: 'ltp_record_decisions',
    text: `INSERT INTO ltp.decisions (pool_uid, pool_namespace, pool_name, inputs, outcome, reason)
           SELECT uid, namespace, name, inputs, outcome, reason
             FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::jsonb[], $6::text[])
                  WITH ORDINALITY AS d(uid, namespace, name, inputs, outcome, reason, n)
            ORDER BY n
           RETURNING id, pool_uid, decided_at`,
    values: [
      records.map((r) => r.pool.uid),
      records.map((r) => r.pool.namespace),
      records.map((r) => r.pool.name),
      records.map((r) => JSON.stringify(r.inputs)),
      records.map((r) => JSON.stringify(outcome(r.outcome))),
      records.map((r) => r.reason),
    ],
  });
  const byPool = new Map(result.rows.map((row) => [row.pool_uid, { id: Number(row.id), decidedAt: row.decided_at }]));
  if (byPool.size !== records.length) throw new Error(`recording ${records.length} decisions (one per pool) returned ${byPool.size}`);
  return records.map((r) => {
    const recorded = byPool.get(r.pool.uid);
    if (!recorded) throw new Error(`recording the decision of pool ${r.pool.uid} returned no row`);
    return recorded;
  });
}

/** The latest `limit` decisions of a pool since a time, oldest first. */
export async function decisionsSince(db: Queryable, args: { poolUid: string; since: Date; limit: number }): Promise<DecisionRow[]> {
  const result = await db.query<DecisionRow & { id: string }>(
    `SELECT * FROM (
       SELECT id, pool_uid AS "poolUid", decided_at AS "decidedAt", inputs, outcome, reason FROM ltp.decisions
        WHERE pool_uid = $1 AND decided_at >= $2 ORDER BY decided_at DESC, id DESC LIMIT $3) latest
      ORDER BY "decidedAt", id`,
    [args.poolUid, args.since, args.limit],
  );
  return result.rows.map((r) => ({ ...r, id: Number(r.id) }));
}

export interface TracedInvocation {
  id: number;
  decisionId: number;
  status: string;
  createdAt: Date;
  invokedAt: Date | null;
  readyAt: Date | null;
  finishedAt: Date | null;
  tasksLeased: number;
  tasksStarted: number;
  deliveries: number;
  errorCode: string | null;
}

/** The invocations the given decisions started, and how each ended (or where it is now). */
export async function invocationsOfDecisions(db: Queryable, decisionIds: readonly number[]): Promise<TracedInvocation[]> {
  if (decisionIds.length === 0) return [];
  const result = await db.query<TracedInvocation & { id: string; decisionId: string }>(
    `SELECT id, decision_id AS "decisionId", status, created_at AS "createdAt", invoked_at AS "invokedAt", ready_at AS "readyAt",
            finished_at AS "finishedAt", tasks_leased AS "tasksLeased", tasks_started AS "tasksStarted", deliveries,
            error_code AS "errorCode"
       FROM ltp.invocations WHERE decision_id = ANY($1::bigint[]) ORDER BY id`,
    [decisionIds],
  );
  return result.rows.map((r) => ({ ...r, id: Number(r.id), decisionId: Number(r.decisionId) }));
}

/** Deletes at most `batch` decisions of one pool older than the age. Returns how many. */
export async function deleteExpiredDecisions(
  db: Queryable,
  args: { poolUid: string; maxAgeSeconds: number; batch: number },
): Promise<number> {
  const result = await db.query(
    `DELETE FROM ltp.decisions WHERE id IN (
       SELECT id FROM ltp.decisions WHERE pool_uid = $1 AND decided_at < now() - make_interval(secs => $2)
        ORDER BY decided_at LIMIT $3)`,
    [args.poolUid, args.maxAgeSeconds, args.batch],
  );
  return result.rowCount ?? 0;
}
