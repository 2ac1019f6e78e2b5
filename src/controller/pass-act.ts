// The database half of dispatch passes, for one pool or for a batch of pools of one database, in one
// transaction: lock each pool, gather (one round trip for the whole batch), decide and carry out each
// pool's sweep, decide each dispatch from what the database really ended, record the decisions and insert
// the new rows (one statement each for the whole batch), commit. Invoking comes only after the commit
// (pass-invoke.ts): a crash in between leaves `created` rows that a later pass invokes again, with the same ids.
// A large pass commits only its first rows with its decision and inserts the rest right after, on the same
// connection, while the first are being invoked; session-level locks keep its pools its own until the rest
// are committed, so no other pass decides from the first rows alone.
import type { Pool } from '../api/types.ts';
import { backlogCountLimit } from '../planner/dispatch.ts';
import { explainPass } from '../planner/explain.ts';
import { planPoolDispatch, planPoolSweep, type PoolPlan, type PoolPlanInput, type PoolPlanLimits } from '../planner/pool-plan.ts';
import { planRelease } from '../planner/release.ts';
import type { PoolMode } from '../planner/sweep.ts';
import { splitFirstRows } from '../planner/first-rows.ts';
import { timedOutRows } from '../planner/timed-out.ts';
import {
  advisoryLocks,
  advisoryUnlocks,
  advisoryXactLock,
  tryAdvisoryXactLocks,
  withTransactionThen,
  type Db,
  type DbClient,
} from '../store/db.ts';
import { recordDecisions, type DecisionRecord } from '../store/decisions.ts';
import { endInvocations, insertInvocationBatches, type InvocationTemplate, type LiveInvocation } from '../store/invocation-store.ts';
import { loadPoolSnapshots, type PoolSnapshot, type PoolSnapshotArgs } from '../store/pool-snapshot.ts';
import { findStrandedLeases, releaseLeases } from '../store/task-store.ts';

export interface DispatchPassOptions {
  /** A created row not invoked within this long (the controller died first) is invoked again. */
  reinvokeGraceMs: number;
  /** After a permanent Invoke rejection, dispatching pauses this long from the rejection. */
  rejectionBackoffMs: number;
  limits: PoolPlanLimits;
  /**
   * A pass (or a batch of passes) that starts more than twice this many rows commits this many with its
   * decisions, and inserts the rest right after the commit, while the first are invoked (first-rows.ts).
   * Unset or 0: every row in the one transaction.
   */
  firstRows?: number;
  /** Randomness for jitter; injected by tests. */
  random?: () => number;
}

/** What one pool's pass needs besides the database. */
export interface PoolPassInput {
  pool: Pool;
  /** How long this controller has reached the database without interruption (Connectivity). */
  connectedForMs: number;
  mode?: PoolMode;
  /** Sweep only: dispatch and re-invoke nothing (the pool may not serve its queue right now). */
  dispatchBlocked?: boolean;
  /** The function's timeout as last read (function guard): a heartbeat lost at about this run time is a timeout. */
  functionTimeoutSeconds?: number;
}

/** What a pass did in the database, before it invokes. */
export interface ActedPass {
  now: Date;
  plan: PoolPlan;
  backlog: number;
  /** The new rows, to invoke. */
  dispatched: number[];
  /**
   * The rest of the new rows, when the pass committed only its first ones: their ids once they are
   * committed, or none and the error if inserting them failed (a later pass decides again).
   */
  rest?: Promise<RestRows>;
  orphaned: number[];
  terminated: number[];
  releasedTasks: number;
  failedTasks: number;
  /** The live rows the pass read, by id (re-invokes go where the row says). */
  byId: Map<number, LiveInvocation>;
  /** How long until tasks held back from release should be looked at again. */
  heldUntilMs: number;
  /** The decision this pass recorded, when it changed something (the trace). */
  decision?: { id: number; decidedAt: Date; reason: string };
  /** When the oldest row Lambda accepted but has not started was created (FunctionReady's stall check). */
  oldestPendingAt?: Date;
}

/** The rows a pass inserted after its commit (ActedPass.rest). */
export interface RestRows {
  ids: number[];
  /** Why they could not be inserted; `ids` is then empty. */
  error?: unknown;
}

/**
 * How a pass takes its pool's lock: `wait` for it (a pass of its own), or `skip` a pool whose lock another
 * session holds right now (a batch, which must not wait on one pool, nor deadlock on lock order). A skipped
 * pool's result is `busy`: another controller, or the stranded sweep, is acting on it this moment.
 */
export type LockMode = 'wait' | 'skip';

/** The recent finished invocations the waste rule reads: a handful, within the last hour. */
export const WASTE_LOOKBACK = { limit: 20, withinSeconds: 3600 };
/** Stranded leases a pass gives back at most; the rest go in the next pass (it looks again at once). */
const STRANDED_BATCH = 1_000;

export const poolLockKey = (uid: string) => `lambda-task-pool:pool:${uid}`;

/**
 * How a pass's transaction begins, in one round trip. Its statements are prepared and bounded by live rows,
 * limits and recent windows, so one generic plan per connection serves every pass. Left to itself, Postgres
 * re-plans the snapshot on every pass once a pool has history (a generic estimate of the recent window and
 * of the batch's arrays makes the generic plan look costly), paying 0.5 to 0.9 ms of planning for 0.1 ms of
 * work; and the estimated cost of a large batch crosses jit_above_cost, so JIT compiles it for 25 to 40 ms.
 * Neither ever pays off here: the pass pins the generic plan and turns JIT off, for its own transaction only.
 * It also rules out sequential scans: every read of a pass has an index that bounds it, but on a table of a
 * few thousand rows the planner costed a scan of the whole tasks table, stopped at the backlog limit, below
 * tasks_due_by_queue (measured: 7,240 rows read per pool, 1.1 ms, for a batch of 100 pools), a cost that grows
 * with the table until the estimate flips.
 */
export const PASS_BEGIN = 'BEGIN; SET LOCAL plan_cache_mode = force_generic_plan; SET LOCAL jit = off; SET LOCAL enable_seqscan = off';

export function templateFor(pool: Pool): InvocationTemplate {
  const { spec, meta } = pool;
  return {
    pool: { namespace: meta.namespace, name: meta.name, uid: meta.uid },
    queue: spec.queue,
    functionName: spec.function.name,
    functionQualifier: spec.function.qualifier,
    functionRegion: spec.function.region,
    tasksPerInvocation: spec.tasksPerInvocation,
    maxTaskAttempts: spec.maxTaskAttempts,
    heartbeatTimeoutSeconds: spec.heartbeatTimeoutSeconds,
    retryInitialDelayMs: spec.retry.initialDelaySeconds * 1000,
    retryMaxDelayMs: spec.retry.maxDelaySeconds * 1000,
  };
}

const modeOf = (input: PoolPassInput): PoolMode => input.mode ?? (input.pool.spec.suspend ? 'suspended' : 'active');

/** How a pass's transaction waits for locks. */
export interface PassLocking {
  /** How it takes its pools' advisory locks. */
  lock: LockMode;
  /**
   * The most any statement of it waits for a row lock, when it should give up sooner than the connection's
   * own lock timeout (a batch, whose other pools should not wait on one pool's row: PassBatcher).
   */
  lockWaitMs?: number;
}

/** The database half of the passes of `inputs` (each pool at most once), in one transaction. */
export async function actOnPools(
  db: Db,
  inputs: readonly PoolPassInput[],
  options: DispatchPassOptions,
  { lock, lockWaitMs }: PassLocking,
): Promise<Array<ActedPass | 'busy'>> {
  if (inputs.length === 0) return [];
  return withTransactionThen(
    db,
    async (client) => {
      const keys = inputs.map((i) => poolLockKey(i.pool.meta.uid));
      let locked: boolean[];
      if (lock === 'wait') {
        for (const key of [...keys].sort()) await advisoryXactLock(client, key);
        locked = keys.map(() => true);
      } else {
        locked = await tryAdvisoryXactLocks(client, keys);
      }
      const held = inputs.filter((_, i) => locked[i]);
      // Gather, in one round trip for every pool. The backlog is counted in every mode (status shows it) and
      // used for dispatch only when active.
      const snapshots = await loadPoolSnapshots(client, held.map(snapshotArgs), {
        rejectionWithinMs: options.rejectionBackoffMs,
        outcomesWithinSeconds: WASTE_LOOKBACK.withinSeconds,
        strandedLimit: STRANDED_BATCH,
      });
      const swept: Swept[] = [];
      for (const [k, input] of held.entries()) {
        const snapshot = snapshots[k];
        if (!snapshot) throw new Error(`no snapshot for pool ${input.pool.meta.uid}`);
        swept.push(await sweepAndPlan(client, input, snapshot, options));
      }
      const dispatching = swept.filter((s) => s.acted.plan.dispatch > 0);
      const split = splitFirstRows(
        dispatching.map((s) => s.acted.plan.dispatch),
        options.firstRows ?? 0,
      );
      // The trace: every pass that changes anything records what it saw, what it did and why, before the rows
      // it starts and in the same transaction. A pass whose only change is rows that all come after the
      // commit records its decision with them: if they never go in, neither does a decision that names them.
      const restOnly = new Set(
        dispatching.filter((s, k) => (split.first[k] ?? 0) === 0 && dispatchIsAllItDid(s.acted)).map((s) => s.pool.meta.uid),
      );
      const record = async (on: DbClient, passes: readonly Swept[]) => {
        const changed = passes.filter((s) => s.record !== undefined);
        const recorded = await recordDecisions(
          on,
          changed.map((s) => s.record).filter((r) => r !== undefined),
        );
        changed.forEach((s, k) => {
          const r = recorded[k];
          if (r && s.record) s.acted.decision = { ...r, reason: s.record.reason };
        });
      };
      await record(
        client,
        swept.filter((s) => !restOnly.has(s.pool.meta.uid)),
      );
      const batches = (counts: number[]) =>
        dispatching.map((s, k) => ({
          template: templateFor(s.pool),
          count: counts[k] ?? 0,
          ...(s.acted.decision ? { decisionId: s.acted.decision.id } : {}),
        }));
      const later = dispatching.filter((_, k) => (split.rest[k] ?? 0) > 0);
      const laterKeys = later.map((s) => poolLockKey(s.pool.meta.uid));
      // Held past the commit, until the rest is committed too: another pass of these pools (a replica's,
      // the stranded sweep's) waits or skips them, as it would while this transaction was open.
      await advisoryLocks(client, laterKeys);
      const inserted = await insertInvocationBatches(client, { invokeAfterMs: options.reinvokeGraceMs, batches: batches(split.first) });
      dispatching.forEach((s, k) => (s.acted.dispatched = inserted[k] ?? []));
      let next = 0;
      const value = locked.map((got) => (got ? (swept[next++]?.acted ?? 'busy') : 'busy'));
      if (later.length === 0) return { value };
      const settles: Array<(rows: RestRows) => void> = [];
      for (const s of later) s.acted.rest = new Promise<RestRows>((resolve) => settles.push(resolve));
      return {
        value,
        afterCommit: async (after: DbClient) => {
          try {
            await after.query(PASS_BEGIN);
            await record(
              after,
              later.filter((s) => restOnly.has(s.pool.meta.uid)),
            );
            const restBatches = batches(split.rest).filter((b) => b.count > 0);
            const ids = await insertInvocationBatches(after, { invokeAfterMs: options.reinvokeGraceMs, batches: restBatches });
            await after.query('COMMIT');
            settles.forEach((settle, k) => settle({ ids: ids[k] ?? [] }));
          } catch (error) {
            // The connection is closed (withTransactionThen), which rolls back and ends the locks; the
            // decisions recorded here went with it.
            for (const s of later) if (restOnly.has(s.pool.meta.uid)) delete s.acted.decision;
            settles.forEach((settle) => settle({ ids: [], error }));
            throw error;
          }
          await advisoryUnlocks(after, laterKeys);
        },
      };
    },
    lockWaitMs === undefined ? PASS_BEGIN : `${PASS_BEGIN}; SET LOCAL lock_timeout = ${Math.max(1, Math.round(lockWaitMs))}`,
  );
}

/** Whether a pass changes nothing but the rows it starts (no sweep, re-invoke or release). */
function dispatchIsAllItDid(acted: ActedPass): boolean {
  return (
    acted.orphaned.length === 0 &&
    acted.terminated.length === 0 &&
    acted.plan.reinvoke.length === 0 &&
    acted.releasedTasks + acted.failedTasks === 0
  );
}

function snapshotArgs(input: PoolPassInput): PoolSnapshotArgs {
  const mode = modeOf(input);
  const { spec, meta } = input.pool;
  return {
    poolUid: meta.uid,
    queue: spec.queue,
    backlogLimit: mode === 'deleting' ? 0 : backlogCountLimit(spec),
    withNextDue: mode === 'active',
    outcomesLimit: mode === 'active' ? WASTE_LOOKBACK.limit : 0,
  };
}

interface Swept {
  pool: Pool;
  acted: ActedPass;
  /** The decision to record, when the pass changed something. */
  record?: DecisionRecord;
}

/** One pool: decide the sweep and carry it out, release what its ended rows leased, then decide the dispatch. */
async function sweepAndPlan(client: DbClient, input: PoolPassInput, snapshot: PoolSnapshot, options: DispatchPassOptions): Promise<Swept> {
  const { pool } = input;
  const { spec, meta } = pool;
  const mode = modeOf(input);
  const random = options.random ?? Math.random;
  const { now, live, backlog, rejectedAt, outcomes } = snapshot;
  const pendingSince = live.filter((i) => i.status === 'pending').map((i) => i.createdAt.getTime());
  const oldestPendingAt = pendingSince.length > 0 ? new Date(Math.min(...pendingSince)) : undefined;
  const byId = new Map(live.map((i) => [i.id, i]));
  const planInput: PoolPlanInput = {
    now: now.getTime(),
    mode,
    backlog,
    invocations: live.map((i) => ({
      id: i.id,
      status: i.status,
      createdAt: i.createdAt.getTime(),
      invokeAfter: i.invokeAfter.getTime(),
      heartbeatAt: i.heartbeatAt?.getTime() ?? null,
      heartbeatTimeoutMs: i.heartbeatTimeoutSeconds * 1000,
    })),
    maxConcurrency: spec.maxConcurrency,
    tasksPerInvocation: spec.tasksPerInvocation,
    startTimeoutMs: spec.startTimeoutSeconds * 1000,
    connectedForMs: input.connectedForMs,
    ...(input.dispatchBlocked
      ? { blockedUntil: now.getTime() + options.limits.resyncMs, blockedBy: 'conflict' as const }
      : rejectedAt
        ? { blockedUntil: rejectedAt.getTime() + options.rejectionBackoffMs, blockedBy: 'rejection' as const }
        : {}),
    recentOutcomes: outcomes.map((o) => ({
      finishedAt: o.finishedAt.getTime(),
      tasksStarted: o.tasksStarted,
      code: o.code,
      message: o.message,
    })),
    ...(snapshot.nextDueAt ? { nextDueAt: snapshot.nextDueAt.getTime() } : {}),
  };

  // Decide the sweep, and carry it out.
  const sweep = planPoolSweep(planInput);
  const unstarted = await endInvocations(client, {
    ids: sweep.orphanUnstarted,
    from: ['created', 'pending'],
    to: 'orphaned',
    code: 'StartTimeout',
    message: `did not start within ${spec.startTimeoutSeconds}s`,
  });
  // Silent rows that ran about as long as the function's timeout were stopped by Lambda: say so, and what to change.
  const timedOut = timedOutRows(
    sweep.orphanSilent.map((id) => byId.get(id)).filter((i): i is LiveInvocation => i !== undefined),
    input.functionTimeoutSeconds,
  );
  const silent = [
    ...(await endInvocations(client, {
      ids: sweep.orphanSilent.filter((id) => !timedOut.ids.has(id)),
      from: ['ready', 'running'],
      to: 'orphaned',
      code: 'HeartbeatLost',
      message: `no heartbeat for ${spec.heartbeatTimeoutSeconds}s`,
    })),
    ...(await endInvocations(client, {
      ids: [...timedOut.ids],
      from: ['ready', 'running'],
      to: 'orphaned',
      code: 'FunctionTimedOut',
      message:
        `stopped heartbeating after about ${timedOut.ranSeconds}s, the function's timeout (${input.functionTimeoutSeconds ?? '?'}s): Lambda stopped it. ` +
        `Raise the function's timeout, or lower tasksPerInvocation (${spec.tasksPerInvocation}) so that the tasks fit in it`,
    })),
  ];
  const orphaned = [...unstarted, ...silent];
  const terminated = await endInvocations(client, {
    ids: sweep.terminate,
    from: mode === 'deleting' ? ['created', 'pending', 'ready', 'running'] : ['created', 'pending'],
    to: 'terminated',
    code: mode === 'deleting' ? 'PoolDeleted' : mode === 'suspended' ? 'PoolSuspended' : 'ScaledDown',
    message: mode === 'deleting' ? 'the pool was deleted' : mode === 'suspended' ? 'the pool was suspended' : 'maxConcurrency was lowered',
  });
  // Tasks still leased by ended invocations: those the snapshot saw, or, when this pass ended some, all of them now.
  const stranded =
    orphaned.length + terminated.length > 0
      ? await findStrandedLeases(client, { pool: { uid: meta.uid, queue: spec.queue }, limit: STRANDED_BATCH })
      : snapshot.stranded;
  const release = planRelease(stranded, { now: now.getTime(), random });
  const released = await releaseLeases(client, { ...release, reason: 'released: its invocation ended before finishing it' });

  // Decide the dispatch from what the database really ended: a row a worker claimed before the sweep's
  // UPDATE reached it is still live, and still counts against maxConcurrency.
  const plan = planPoolDispatch(planInput, sweep, new Set([...orphaned, ...terminated]), options.limits);
  const acted: ActedPass = {
    now,
    plan,
    backlog,
    dispatched: [],
    orphaned,
    terminated,
    releasedTasks: released.created,
    failedTasks: released.failed,
    byId,
    heldUntilMs: release.nextAt !== undefined ? release.nextAt - now.getTime() : Number.POSITIVE_INFINITY,
    ...(oldestPendingAt ? { oldestPendingAt } : {}),
  };
  const changed =
    plan.dispatch > 0 || orphaned.length > 0 || terminated.length > 0 || plan.reinvoke.length > 0 || released.created + released.failed > 0;
  if (!changed) return { pool, acted };
  const backlogCapped = mode !== 'deleting' && backlog >= backlogCountLimit(spec);
  const reason = explainPass({
    plan,
    backlog,
    backlogCapped,
    maxConcurrency: spec.maxConcurrency,
    tasksPerInvocation: spec.tasksPerInvocation,
    startTimeoutSeconds: spec.startTimeoutSeconds,
    heartbeatTimeoutSeconds: spec.heartbeatTimeoutSeconds,
    orphanedUnstarted: unstarted.length,
    orphanedSilent: silent.length,
    terminated: terminated.length,
    mode,
    releasedTasks: released.created,
    failedTasks: released.failed,
  });
  const a = plan.arithmetic;
  return {
    pool,
    acted,
    record: {
      pool: { namespace: meta.namespace, name: meta.name, uid: meta.uid },
      inputs: {
        backlog,
        backlogCapped,
        queued: a.queued,
        ready: plan.live.ready,
        running: plan.live.running,
        supply: a.supply,
        want: a.want,
        headroom: a.headroom,
        maxConcurrency: spec.maxConcurrency,
        tasksPerInvocation: spec.tasksPerInvocation,
        mode,
      },
      outcome: {
        dispatched: plan.dispatch,
        reinvoked: plan.reinvoke,
        orphaned,
        terminated,
        releasedTasks: released.created,
        failedTasks: released.failed,
        ...(plan.limitedBy ? { limitedBy: plan.limitedBy } : {}),
      },
      reason,
    },
  };
}
