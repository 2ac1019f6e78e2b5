// One dispatch pass for one pool: gather (under the pool's advisory lock), decide (the pure planner),
// act (sweep and insert the new invocation rows), commit, and only then invoke. A crash after the commit
// leaves `created` rows that the next pass invokes again with the same ids.
import type { Pool } from '../api/types.ts';
import type { InvokeFailure } from '../lambda/errors.ts';
import type { Invoker } from '../lambda/invoker.ts';
import { planPool, type PoolPlan, type PoolPlanLimits } from '../planner/pool-plan.ts';
import { backlogCountLimit } from '../planner/dispatch.ts';
import { planRelease, type PoolMode } from '../planner/sweep.ts';
import { advisoryXactLock, withTransaction, type Db, type DbClient } from '../store/db.ts';
import {
  deferInvoke, endInvocations, insertInvocations, latestRejection, loadLiveInvocations, markInvoked, markRejected,
  type InvocationTemplate,
} from '../store/invocation-store.ts';
import { countBacklog, findStrandedLeases, releaseLeases } from '../store/task-store.ts';

export interface DispatchPassOptions {
  /** A created row not invoked within this long (the controller died first) is invoked again. */
  reinvokeGraceMs: number;
  /** After a permanent Invoke rejection, dispatching pauses this long (or until the spec changes). */
  rejectionBackoffMs: number;
  limits: PoolPlanLimits;
}

export interface InvokeOutcomes {
  accepted: number;
  rejected?: { ids: number[]; failure: InvokeFailure };
  /** Throttled or transient: `unsent` were never sent because an earlier call of the batch failed. */
  deferred?: { ids: number[]; unsent: number[]; failure: InvokeFailure };
}

export interface DispatchPassResult {
  plan: PoolPlan;
  now: Date;
  backlog: number;
  dispatched: number[];
  orphaned: number[];
  terminated: number[];
  releasedTasks: number;
  failedTasks: number;
  invoke: InvokeOutcomes;
  requeueAfterMs: number;
}

export function templateFor(pool: Pool): InvocationTemplate {
  return {
    pool: { namespace: pool.meta.namespace, name: pool.meta.name, uid: pool.meta.uid },
    queue: pool.spec.queue,
    functionName: pool.spec.function.name,
    functionQualifier: pool.spec.function.qualifier,
    tasksPerInvocation: pool.spec.tasksPerInvocation,
    maxTaskAttempts: pool.spec.maxTaskAttempts,
    heartbeatTimeoutSeconds: pool.spec.heartbeatTimeoutSeconds,
  };
}

export async function runDispatchPass(args: {
  db: Db;
  pool: Pool;
  invoker: Invoker;
  options: DispatchPassOptions;
  mode?: PoolMode;
  /** Sweep only: dispatch and re-invoke nothing (the pool may not serve its queue right now). */
  dispatchBlocked?: boolean;
}): Promise<DispatchPassResult> {
  const { db, pool, invoker, options } = args;
  const { spec, meta } = pool;
  const mode: PoolMode = args.mode ?? (spec.suspend ? 'suspended' : 'active');

  const acted = await withTransaction(db, async (client) => {
    await advisoryXactLock(client, `lambda-task-pool:pool:${meta.uid}`);
    // Gather.
    const now = await dbNow(client);
    const live = await loadLiveInvocations(client, meta.uid);
    const backlog = mode === 'active' ? await countBacklog(client, spec.queue, backlogCountLimit(spec)) : 0;
    const rejectedAt = await latestRejection(client, { poolUid: meta.uid, withinMs: options.rejectionBackoffMs });
    const blockedUntil = args.dispatchBlocked
      ? now.getTime() + options.limits.resyncMs
      : rejectedAt ? rejectedAt.getTime() + options.rejectionBackoffMs : undefined;
    // Decide.
    const plan = planPool(
      {
        now: now.getTime(),
        mode,
        backlog,
        invocations: live.map((i) => ({
          id: i.id,
          status: i.status,
          createdAt: i.createdAt.getTime(),
          invokeAfter: i.invokeAfter.getTime(),
          heartbeatAt: i.heartbeatAt?.getTime() ?? null,
        })),
        maxConcurrency: spec.maxConcurrency,
        tasksPerInvocation: spec.tasksPerInvocation,
        startTimeoutMs: spec.startTimeoutSeconds * 1000,
        heartbeatTimeoutMs: spec.heartbeatTimeoutSeconds * 1000,
        blockedUntil,
      },
      options.limits,
    );
    // Act.
    const orphaned = [
      ...(await endInvocations(client, {
        ids: plan.orphanUnstarted, from: ['created', 'pending'], to: 'orphaned', code: 'StartTimeout',
        message: `did not start within ${spec.startTimeoutSeconds}s`,
      })),
      ...(await endInvocations(client, {
        ids: plan.orphanSilent, from: ['ready', 'running'], to: 'orphaned', code: 'HeartbeatLost',
        message: `no heartbeat for ${spec.heartbeatTimeoutSeconds}s`,
      })),
    ];
    const terminated = await endInvocations(client, {
      ids: plan.terminate,
      from: mode === 'deleting' ? ['created', 'pending', 'ready', 'running'] : ['created', 'pending'],
      to: 'terminated',
      code: mode === 'deleting' ? 'PoolDeleted' : mode === 'suspended' ? 'PoolSuspended' : 'ScaledDown',
      message: mode === 'deleting' ? 'the pool was deleted' : mode === 'suspended' ? 'the pool was suspended' : 'maxConcurrency was lowered',
    });
    const stranded = await findStrandedLeases(client, meta.uid);
    const release = planRelease(stranded, spec.maxTaskAttempts);
    await releaseLeases(client, { ...release, reason: 'released: its invocation ended before finishing it' });
    const dispatched = await insertInvocations(client, { template: templateFor(pool), count: plan.dispatch, invokeAfterMs: options.reinvokeGraceMs });
    return { now, plan, backlog, orphaned, terminated, dispatched, releasedTasks: release.toCreated.length, failedTasks: release.toFailed.length };
  });

  // Invoke, after the rows are committed.
  const invoke = await invokeRows({ db, pool, invoker, ids: [...acted.plan.reinvoke, ...acted.dispatched] });
  const retryAfter = invoke.deferred && invoke.deferred.failure.kind !== 'rejected' ? invoke.deferred.failure.retryAfterMs : undefined;
  // Tasks released by this pass's sweep were not in its backlog count: look again at once.
  const releasedNow = acted.releasedTasks > 0 ? options.limits.minRequeueMs : Number.POSITIVE_INFINITY;
  const requeueAfterMs = Math.max(options.limits.minRequeueMs, Math.min(acted.plan.requeueAfterMs, retryAfter ?? Number.POSITIVE_INFINITY, releasedNow));
  return { ...acted, invoke, requeueAfterMs };
}

async function dbNow(client: DbClient): Promise<Date> {
  const result = await client.query<{ now: Date }>('SELECT now() AS now');
  const row = result.rows[0];
  if (!row) throw new Error('the database returned no time');
  return row.now;
}

async function invokeRows(args: { db: Db; pool: Pool; invoker: Invoker; ids: number[] }): Promise<InvokeOutcomes> {
  if (args.ids.length === 0) return { accepted: 0 };
  const results = await args.invoker.invokeBatch(args.pool.spec.function, args.ids);
  const outcomes: InvokeOutcomes = { accepted: 0 };
  const accepted: Array<{ id: number; requestId?: string }> = [];
  for (const result of results) {
    if (result.accepted) {
      accepted.push({ id: result.id, requestId: result.requestId });
      continue;
    }
    if (result.failure.kind === 'rejected' && result.sent) {
      (outcomes.rejected ??= { ids: [], failure: result.failure }).ids.push(result.id);
    } else {
      // A row never sent after a rejection is not itself rejected: it waits, like a throttled one.
      const entry = (outcomes.deferred ??= { ids: [], unsent: [], failure: result.failure });
      (result.sent ? entry.ids : entry.unsent).push(result.id);
    }
  }
  await markInvoked(args.db, accepted);
  outcomes.accepted = accepted.length;
  if (outcomes.rejected) {
    const f = outcomes.rejected.failure;
    await markRejected(args.db, { ids: outcomes.rejected.ids, code: f.code, message: f.message });
  }
  if (outcomes.deferred) {
    const f = outcomes.deferred.failure;
    const delayMs = f.kind === 'rejected' ? 0 : f.retryAfterMs;
    await deferInvoke(args.db, { ids: outcomes.deferred.ids, delayMs, code: f.code, message: f.message, attempted: true });
    await deferInvoke(args.db, { ids: outcomes.deferred.unsent, delayMs, code: f.code, message: f.message, attempted: false });
  }
  return outcomes;
}
