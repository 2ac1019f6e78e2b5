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

export async function recordDecision(
  db: Queryable,
  args: { pool: { namespace: string; name: string; uid: string }; inputs: DecisionInputs; outcome: DecisionOutcome; reason: string },
): Promise<{ id: number; decidedAt: Date }> {
  const outcome = {
    ...args.outcome,
    reinvoked: args.outcome.reinvoked.slice(0, IDS_KEPT),
    orphaned: args.outcome.orphaned.slice(0, IDS_KEPT),
    terminated: args.outcome.terminated.slice(0, IDS_KEPT),
  };
  const result = await db.query<{ id: string; decided_at: Date }>({
    name: 'ltp_record_decision',
    text: `INSERT INTO ltp.decisions (pool_uid, pool_namespace, pool_name, inputs, outcome, reason)
           VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, decided_at`,
    values: [args.pool.uid, args.pool.namespace, args.pool.name, JSON.stringify(args.inputs), JSON.stringify(outcome), args.reason],
  });
  const row = result.rows[0];
  if (!row) throw new Error('recording a decision returned no row');
  return { id: Number(row.id), decidedAt: row.decided_at };
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
