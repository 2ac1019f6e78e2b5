// One dispatch pass for one pool: gather (under the pool's advisory lock), decide the sweep, carry it
// out, decide the dispatch from what the database really ended, insert the new rows, commit, and only
// then invoke. A crash after the commit leaves `created` rows that the next pass invokes again with the
// same ids, at the function recorded on each row.
import type { FunctionRef, Pool } from '../api/types.ts';
import type { InvokeFailure } from '../lambda/errors.ts';
import type { InvokeTarget, Invoker } from '../lambda/invoker.ts';
import { backlogCountLimit } from '../planner/dispatch.ts';
import { invokeRetryDelayMs } from '../planner/invoke-retry.ts';
import { planPoolDispatch, planPoolSweep, type PoolPlan, type PoolPlanInput, type PoolPlanLimits } from '../planner/pool-plan.ts';
import { planRelease } from '../planner/release.ts';
import type { PoolMode } from '../planner/sweep.ts';
import { advisoryXactLock, withTransaction, type Db } from '../store/db.ts';
import {
  deferInvoke,
  endInvocations,
  insertInvocations,
  markInvoked,
  markRejected,
  type InvocationTemplate,
  type LiveInvocation,
} from '../store/invocation-store.ts';
import { loadPoolSnapshot } from '../store/pool-snapshot.ts';
import { recordDecision } from '../store/decisions.ts';
import { explainPass } from '../planner/explain.ts';
import { timedOutRows } from '../planner/timed-out.ts';
import { findStrandedLeases, releaseLeases } from '../store/task-store.ts';

export interface DispatchPassOptions {
  /** A created row not invoked within this long (the controller died first) is invoked again. */
  reinvokeGraceMs: number;
  /** After a permanent Invoke rejection, dispatching pauses this long (or until the spec changes). */
  rejectionBackoffMs: number;
  limits: PoolPlanLimits;
  /** Randomness for jitter; injected by tests. */
  random?: () => number;
}

export interface InvokeOutcomes {
  accepted: number;
  rejected?: { ids: number[]; failure: InvokeFailure };
  /** Throttled or transient: `unsent` were never sent because an earlier call of the batch failed. */
  deferred?: { ids: number[]; unsent: number[]; failure: InvokeFailure; retryInMs: number };
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
  /** The decision this pass recorded, when it changed something (the trace). */
  decision?: { id: number; decidedAt: Date; reason: string };
  /** When the oldest row Lambda accepted but has not started was created (FunctionReady's stall check). */
  oldestPendingAt?: Date;
}

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

/** The recent finished invocations the waste rule reads: a handful, within the last hour. */
const WASTE_LOOKBACK = { limit: 20, withinSeconds: 3600 };
/** Stranded leases a pass gives back at most; the rest go in the next pass (it looks again at once). */
const STRANDED_BATCH = 1_000;

export async function runDispatchPass(args: {
  db: Db;
  pool: Pool;
  invoker: Invoker;
  options: DispatchPassOptions;
  /** How long this controller has reached the database without interruption (Connectivity). */
  connectedForMs: number;
  mode?: PoolMode;
  /** Sweep only: dispatch and re-invoke nothing (the pool may not serve its queue right now). */
  dispatchBlocked?: boolean;
  /** The IAM role the pool's namespace invokes as (tenancy policy), if any. */
  roleArn?: string;
  /** The function's timeout as last read (function guard): a heartbeat lost at about this run time is a timeout. */
  functionTimeoutSeconds?: number;
  /**
   * Why the pool may not invoke a function (the tenancy policy), or undefined when it may. A row is invoked
   * again at the function it names, and a row written into the database by someone else must not make the
   * controller invoke what the pool's namespace may not: such a row is ended, never invoked.
   */
  functionRefusal?: (fn: FunctionRef) => string | undefined;
}): Promise<DispatchPassResult> {
  const { db, pool, invoker, options } = args;
  const { spec, meta } = pool;
  const mode: PoolMode = args.mode ?? (spec.suspend ? 'suspended' : 'active');
  const random = options.random ?? Math.random;

  const acted = await withTransaction(db, async (client) => {
    await advisoryXactLock(client, `lambda-task-pool:pool:${meta.uid}`);
    // Gather, in one round trip. The backlog is counted in every mode (status shows it) and used for
    // dispatch only when active.
    const active = mode === 'active';
    const snapshot = await loadPoolSnapshot(client, {
      poolUid: meta.uid,
      queue: spec.queue,
      backlogLimit: mode === 'deleting' ? 0 : backlogCountLimit(spec),
      withNextDue: active,
      rejectionWithinMs: options.rejectionBackoffMs,
      outcomesLimit: active ? WASTE_LOOKBACK.limit : 0,
      outcomesWithinSeconds: WASTE_LOOKBACK.withinSeconds,
      strandedLimit: STRANDED_BATCH,
    });
    const { now, live, backlog, rejectedAt, outcomes } = snapshot;
    const pendingSince = live.filter((i) => i.status === 'pending').map((i) => i.createdAt.getTime());
    const oldestPendingAt = pendingSince.length > 0 ? new Date(Math.min(...pendingSince)) : undefined;
    const dueAt = snapshot.nextDueAt;
    const byId = new Map(live.map((i) => [i.id, i]));
    const input: PoolPlanInput = {
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
      connectedForMs: args.connectedForMs,
      ...(args.dispatchBlocked
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
      ...(dueAt ? { nextDueAt: dueAt.getTime() } : {}),
    };

    // Decide the sweep, and carry it out.
    const sweep = planPoolSweep(input);
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
      args.functionTimeoutSeconds,
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
          `stopped heartbeating after about ${timedOut.ranSeconds}s, the function's timeout (${args.functionTimeoutSeconds ?? '?'}s): Lambda stopped it. ` +
          `Raise the function's timeout, or lower tasksPerInvocation (${spec.tasksPerInvocation}) so that the tasks fit in it`,
      })),
    ];
    const orphaned = [...unstarted, ...silent];
    const terminated = await endInvocations(client, {
      ids: sweep.terminate,
      from: mode === 'deleting' ? ['created', 'pending', 'ready', 'running'] : ['created', 'pending'],
      to: 'terminated',
      code: mode === 'deleting' ? 'PoolDeleted' : mode === 'suspended' ? 'PoolSuspended' : 'ScaledDown',
      message:
        mode === 'deleting' ? 'the pool was deleted' : mode === 'suspended' ? 'the pool was suspended' : 'maxConcurrency was lowered',
    });
    // Tasks still leased by ended invocations: those the snapshot saw, or, when this pass ended some, all of them now.
    const stranded =
      orphaned.length + terminated.length > 0
        ? await findStrandedLeases(client, { poolUid: meta.uid, limit: STRANDED_BATCH })
        : snapshot.stranded;
    const release = planRelease(stranded, { now: now.getTime(), random });
    const released = await releaseLeases(client, { ...release, reason: 'released: its invocation ended before finishing it' });

    // Decide the dispatch from what the database really ended: a row a worker claimed before the sweep's
    // UPDATE reached it is still live, and still counts against maxConcurrency.
    const plan = planPoolDispatch(input, sweep, new Set([...orphaned, ...terminated]), options.limits);
    // The trace: a pass that changes anything records what it saw, what it did and why, before the rows it starts.
    const changed =
      plan.dispatch > 0 ||
      orphaned.length > 0 ||
      terminated.length > 0 ||
      plan.reinvoke.length > 0 ||
      released.created + released.failed > 0;
    let decision: { id: number; decidedAt: Date; reason: string } | undefined;
    if (changed) {
      const reason = explainPass({
        plan,
        backlog,
        backlogCapped: mode !== 'deleting' && backlog >= backlogCountLimit(spec),
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
      const recorded = await recordDecision(client, {
        pool: { namespace: meta.namespace, name: meta.name, uid: meta.uid },
        inputs: {
          backlog,
          backlogCapped: mode !== 'deleting' && backlog >= backlogCountLimit(spec),
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
      });
      decision = { ...recorded, reason };
    }
    const dispatched = await insertInvocations(client, {
      template: templateFor(pool),
      count: plan.dispatch,
      invokeAfterMs: options.reinvokeGraceMs,
      ...(decision ? { decisionId: decision.id } : {}),
    });
    const heldUntil = release.nextAt !== undefined ? release.nextAt - now.getTime() : Number.POSITIVE_INFINITY;
    return {
      now,
      plan,
      backlog,
      orphaned,
      terminated,
      dispatched,
      byId,
      heldUntil,
      releasedTasks: released.created,
      failedTasks: released.failed,
      ...(decision ? { decision } : {}),
      ...(oldestPendingAt ? { oldestPendingAt } : {}),
    };
  });

  // Invoke, after the rows are committed: new rows at the spec's function, old ones where they were sent.
  const targets: Target[] = [];
  const as = (fn: FunctionRef): InvokeTarget => (args.roleArn ? { ...fn, roleArn: args.roleArn } : fn);
  const due = acted.plan.reinvoke.map((id) => acted.byId.get(id)).filter((i): i is LiveInvocation => i !== undefined);
  const refusedRows = new Map<string, number[]>();
  const reinvoked = due.filter((row) => {
    const refusal = args.functionRefusal?.(row.function);
    if (refusal !== undefined) refusedRows.set(refusal, [...(refusedRows.get(refusal) ?? []), row.id]);
    return refusal === undefined;
  });
  const refusedEnded: number[] = [];
  for (const [message, ids] of refusedRows) {
    refusedEnded.push(...(await endInvocations(db, { ids, from: ['created'], to: 'terminated', code: 'FunctionNotAllowed', message })));
  }
  for (const row of reinvoked) targetFor(targets, as(row.function)).ids.push(row.id);
  for (const row of reinvoked) targetFor(targets, as(row.function)).attempts.set(row.id, row.invokeAttempts);
  if (acted.dispatched.length > 0) targetFor(targets, as(spec.function)).ids.push(...acted.dispatched);
  const invoke = await invokeRows({ db, invoker, targets, random });

  const retryAfter = invoke.deferred?.retryInMs ?? Number.POSITIVE_INFINITY;
  // Tasks released by this pass's sweep were not in its backlog count: look again at once.
  const releasedNow = acted.releasedTasks > 0 ? options.limits.minRequeueMs : Number.POSITIVE_INFINITY;
  const requeueAfterMs = Math.max(
    options.limits.minRequeueMs,
    Math.min(acted.plan.requeueAfterMs, retryAfter, releasedNow, acted.heldUntil),
  );
  const { byId: _byId, heldUntil: _held, ...result } = acted;
  return { ...result, terminated: [...result.terminated, ...refusedEnded], invoke, requeueAfterMs };
}

interface Target {
  fn: InvokeTarget;
  ids: number[];
  attempts: Map<number, number>;
}

function targetFor(targets: Target[], fn: InvokeTarget) {
  const same = (a: InvokeTarget, b: InvokeTarget) =>
    a.name === b.name && a.qualifier === b.qualifier && a.region === b.region && a.roleArn === b.roleArn;
  let target = targets.find((t) => same(t.fn, fn));
  if (!target) {
    target = { fn, ids: [], attempts: new Map() };
    targets.push(target);
  }
  return target;
}

async function invokeRows(args: { db: Db; invoker: Invoker; targets: readonly Target[]; random: () => number }): Promise<InvokeOutcomes> {
  const outcomes: InvokeOutcomes = { accepted: 0 };
  const accepted: Array<{ id: number; requestId?: string }> = [];
  const deferred: Array<{ id: number; delayMs: number; attempted: boolean }> = [];
  for (const target of args.targets) {
    if (target.ids.length === 0) continue;
    const results = await args.invoker.invokeBatch(target.fn, target.ids);
    for (const result of results) {
      if (result.accepted) {
        accepted.push({ id: result.id, requestId: result.requestId });
        continue;
      }
      if (result.failure.kind === 'rejected' && result.sent) {
        (outcomes.rejected ??= { ids: [], failure: result.failure }).ids.push(result.id);
        continue;
      }
      // A row never sent after a rejection is not itself rejected: it waits, like a throttled one.
      const entry = (outcomes.deferred ??= { ids: [], unsent: [], failure: result.failure, retryInMs: Number.POSITIVE_INFINITY });
      (result.sent ? entry.ids : entry.unsent).push(result.id);
      const attempts = (target.attempts.get(result.id) ?? 0) + 1;
      const delayMs = invokeRetryDelayMs(result.failure, attempts, args.random);
      deferred.push({ id: result.id, delayMs, attempted: result.sent });
      entry.retryInMs = Math.min(entry.retryInMs, delayMs);
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
    await deferInvoke(args.db, { rows: deferred, code: f.code, message: f.message });
  }
  return outcomes;
}
