// Level-based reconcile of one LambdaTaskPool key: re-read the world, converge, write status once.
// Safe to run twice; it never branches on what kind of watch event brought the key here.
import { Reason } from '../api/conditions.ts';
import { parsePool, type ParseResult } from '../api/parse.ts';
import { FINALIZER, type Pool, type PoolStatus } from '../api/types.ts';
import type { Invoker } from '../lambda/invoker.ts';
import type { Logger } from '../ops/logger.ts';
import type { Metrics } from '../ops/metrics.ts';
import { isDatabaseUnavailable, type Db } from '../store/db.ts';
import { poolInvocationCounts, recentTrouble, type PoolIdentity } from '../store/invocation-store.ts';
import { claimQueue, releaseClaims } from '../store/queue-claims.ts';
import { leaseWaitsSince, queueTaskCounts } from '../store/task-store.ts';
import { backlogCountLimit } from '../planner/dispatch.ts';
import type { Database, DatabaseRegistry } from './databases.ts';
import { describeError } from '../ops/describe-error.ts';
import { runDispatchPass, type DispatchPassOptions, type DispatchPassResult } from './dispatch-pass.ts';
import type { EventRecorder } from './events.ts';
import type { KubeApi, PoolObject } from './kube.ts';
import type { NotificationRoutes } from './routes.ts';
import { blockedStatus, buildStatus, sameStatus } from './status.ts';
import type { StrandedSweeper } from './stranded-sweep.ts';
import type { ProcessResult } from './work-queue.ts';

export interface PoolCache {
  get(namespace: string, name: string): PoolObject | undefined;
  knownUids(): ReadonlySet<string>;
}

export interface ReconcilerDeps {
  kube: KubeApi;
  cache: PoolCache;
  databases: DatabaseRegistry;
  invoker: Invoker;
  events: EventRecorder;
  metrics: Metrics;
  logger: Logger;
  routes: NotificationRoutes;
  sweeper: StrandedSweeper;
  options: DispatchPassOptions & {
    /** How often a pool blocked on something outside Kubernetes (a Secret, the database) is looked at again. */
    blockedRetryMs: number;
    troubleWindowSeconds: number;
  };
}

export class PoolReconciler {
  private readonly waitCursor = new Map<string, string>();
  /** The status this controller last wrote per pool uid: the informer's copy may not show it yet. */
  private readonly written = new Map<string, PoolStatus>();

  constructor(private readonly deps: ReconcilerDeps) {}

  async reconcile(key: string): Promise<ProcessResult> {
    const [namespace, name] = splitKey(key);
    const obj = this.deps.cache.get(namespace, name);
    if (!obj) return this.forgetGone(key, namespace, name);
    const parsed = parsePool(obj);
    if (parsed.meta.deletionTimestamp) return this.finalize(key, parsed);
    if (!parsed.meta.finalizers.includes(FINALIZER)) {
      await this.deps.kube.setFinalizers(namespace, name, [...parsed.meta.finalizers, FINALIZER], parsed.meta.resourceVersion);
    }
    if (!parsed.ok) {
      const message = `invalid spec: ${parsed.problems.join('; ')}`;
      await this.block(parsed, Reason.InvalidSpec, message, true);
      return {};
    }
    return this.reconcilePool(key, parsed.pool);
  }

  private async reconcilePool(key: string, pool: Pool): Promise<ProcessResult> {
    const { deps } = this;
    const log = deps.logger.child({ namespace: pool.meta.namespace, pool: pool.meta.name });
    const resolved = await deps.databases.resolve(pool);
    if (!resolved.ok) {
      await this.block({ ok: true, meta: pool.meta, pool }, resolved.reason, resolved.message, false);
      return { requeueAfterMs: deps.options.blockedRetryMs };
    }
    const { db, key: databaseKey, display, connectivity } = resolved.database;
    deps.routes.set(key, { database: databaseKey, queue: pool.spec.queue, uid: pool.meta.uid });

    let pass: DispatchPassResult;
    let conflict: string | undefined;
    try {
      const claim = await claimQueue(db, {
        queue: pool.spec.queue,
        pool: { namespace: pool.meta.namespace, name: pool.meta.name, uid: pool.meta.uid },
        isStale: (holder) => this.isGone(holder),
      });
      if (claim.held) await releaseClaims(db, { poolUid: pool.meta.uid, exceptQueue: pool.spec.queue });
      else conflict = `queue ${pool.spec.queue} in ${display} is already served by pool ${claim.holder.namespace}/${claim.holder.name}`;
      // A pool that may not serve its queue still sweeps its own invocations; it only dispatches nothing.
      pass = await runDispatchPass({
        db, pool, invoker: deps.invoker, options: deps.options, connectedForMs: connectivity.connectedForMs(), dispatchBlocked: conflict !== undefined,
      });
    } catch (error) {
      const unavailable = isDatabaseUnavailable(error);
      if (unavailable) connectivity.lost(error);
      const reason = unavailable ? Reason.DatabaseUnavailable : Reason.ReconcileError;
      const message = unavailable ? `database ${display} is unavailable: ${describeError(error)}` : `reconcile failed: ${describeError(error)}`;
      log.warn('reconcile failed', { reason, error: message });
      await this.block({ ok: true, meta: pool.meta, pool }, reason, message, false).catch((e: unknown) =>
        log.warn('could not record the failure in status', { error: describeError(e) }),
      );
      throw error;
    }

    await this.report(pool, pass, log);
    if (conflict) {
      await this.block({ ok: true, meta: pool.meta, pool }, Reason.QueueConflict, conflict, false);
      return { requeueAfterMs: deps.options.blockedRetryMs };
    }
    await this.writeStatus(pool, db, display, pass);
    return { requeueAfterMs: pass.requeueAfterMs };
  }

  /** A claim's holder is gone when no pool with its uid exists; when in doubt (say, no access to its namespace) it is not. */
  private async isGone(holder: PoolIdentity): Promise<boolean> {
    if (this.deps.cache.knownUids().has(holder.uid)) return false;
    return (await this.deps.kube.poolGone(holder)) === true;
  }

  /**
   * The pool left the cache without being finalized here (its finalizer was removed by hand): end what it
   * left live in its database now, rather than at the next stranded sweep, then forget it.
   */
  private async forgetGone(key: string, namespace: string, name: string): Promise<ProcessResult> {
    const { deps } = this;
    const route = deps.routes.get(key);
    if (route) {
      const database = deps.databases.lastResolved(route.uid);
      if (database) {
        const ended = await deps.sweeper.sweepGonePool(database, { namespace, name, uid: route.uid });
        if (ended.length > 0) {
          deps.logger.warn('pool deleted without finalizing; its live invocations were terminated', { namespace, pool: name, terminated: ended.length });
        }
        deps.sweeper.poke();
      }
      deps.databases.forget(route.uid);
      deps.events.forget(route.uid);
      this.waitCursor.delete(route.uid);
      this.written.delete(route.uid);
    }
    deps.routes.forget(key);
    deps.metrics.forgetPool(namespace, name);
    return {};
  }

  private async report(pool: Pool, pass: DispatchPassResult, log: Logger): Promise<void> {
    const { deps } = this;
    const ref = { namespace: pool.meta.namespace, name: pool.meta.name, uid: pool.meta.uid };
    const labels = { namespace: pool.meta.namespace, pool: pool.meta.name };
    const a = pass.plan.arithmetic;
    const events: Array<Promise<void>> = [];
    if (pass.invoke.accepted > 0) {
      deps.metrics.dispatched.inc({ ...labels, result: 'accepted' }, pass.invoke.accepted);
      // The planner counts the backlog only up to what could change its decision (maxConcurrency x tasksPerInvocation).
      const backlog = pass.backlog >= backlogCountLimit(pool.spec) ? `at least ${pass.backlog}` : `${pass.backlog}`;
      events.push(deps.events.record(ref, 'Normal', 'Dispatched',
        `invoked ${pass.invoke.accepted} (${pass.dispatched.length} new) for a backlog of ${backlog} tasks; before this, ${a.queued} queued and ${pass.plan.live.ready + pass.plan.live.running} started`));
    }
    if (pass.dispatched.length > 0 || pass.orphaned.length > 0 || pass.terminated.length > 0) {
      log.info('dispatch pass', {
        dispatched: pass.dispatched.length, reinvoked: pass.plan.reinvoke.length, backlog: pass.backlog,
        queued: a.queued, supply: a.supply, want: a.want, headroom: a.headroom,
        orphaned: pass.orphaned.length, terminated: pass.terminated.length, releasedTasks: pass.releasedTasks, failedTasks: pass.failedTasks,
      });
    }
    if (pass.orphaned.length > 0) {
      events.push(deps.events.record(ref, 'Warning', 'InvocationsOrphaned',
        `${pass.orphaned.length} invocations orphaned (never started or heartbeat lost); ${pass.releasedTasks} tasks returned to the queue, ${pass.failedTasks} failed`));
    }
    for (const kind of ['rejected', 'deferred'] as const) {
      const outcome = pass.invoke[kind];
      if (!outcome) continue;
      const f = outcome.failure;
      deps.metrics.dispatched.inc({ ...labels, result: f.kind }, outcome.ids.length);
      deps.metrics.invokeErrors.inc({ ...labels, code: f.code }, outcome.ids.length);
      log.warn('invoke failed', { code: f.code, kind: f.kind, invocations: outcome.ids.length, error: f.message });
      const reason = f.kind === 'throttled' ? 'Throttled' : f.kind === 'rejected' ? 'InvokeRejected' : 'InvokeFailed';
      events.push(deps.events.record(ref, 'Warning', reason, `${outcome.ids.length} invokes of ${pool.spec.function.name} failed: ${f.code}: ${f.message}`));
    }
    // record() never throws: a failed event is logged and the pass goes on.
    await Promise.all(events);
  }

  private async writeStatus(pool: Pool, db: Db, display: string, pass: DispatchPassResult): Promise<void> {
    const { deps } = this;
    // Every read here is bounded: live rows, the pass's bounded backlog count, totals rows, a recent window.
    const [{ counts: invocations, wasted }, tasks, trouble] = await Promise.all([
      poolInvocationCounts(db, pool.meta.uid),
      queueTaskCounts(db, { queue: pool.spec.queue, created: pass.backlog }),
      recentTrouble(db, { poolUid: pool.meta.uid, windowSeconds: deps.options.troubleWindowSeconds }),
    ]);
    const labels = { namespace: pool.meta.namespace, pool: pool.meta.name };
    for (const [state, n] of Object.entries(invocations)) deps.metrics.liveInvocations.set({ ...labels, state }, n);
    deps.metrics.backlog.set(labels, tasks.created);
    deps.metrics.wasted.set(labels, wasted);
    await this.observeTaskWaits(pool, db, pass.now);

    const previous = this.previousStatus(pool.meta.uid, pool.status);
    const status = buildStatus(previous, {
      now: pass.now,
      generation: pool.meta.generation,
      spec: pool.spec,
      database: display,
      invocations,
      tasks,
      trouble,
      waste: pass.plan.waste,
      troubleWindowSeconds: deps.options.troubleWindowSeconds,
      ...(pass.invoke.accepted > 0 && pass.dispatched.length > 0 ? { dispatchedAt: pass.now } : {}),
    });
    await this.patchIfChanged(pool.meta, previous, status);
  }

  private async observeTaskWaits(pool: Pool, db: Db, now: Date): Promise<void> {
    const since = this.waitCursor.get(pool.meta.uid);
    if (!since) {
      this.waitCursor.set(pool.meta.uid, now.toISOString());
      return;
    }
    const waits = await leaseWaitsSince(db, { queue: pool.spec.queue, since, limit: 5000 });
    for (const w of waits.waitsSeconds) this.deps.metrics.taskWait.observe({ namespace: pool.meta.namespace, pool: pool.meta.name }, w);
    if (waits.cursor) this.waitCursor.set(pool.meta.uid, waits.cursor);
  }

  private async block(parsed: ParseResult, reason: Reason, message: string, specVerdict: boolean): Promise<void> {
    const meta = parsed.meta;
    const previous = this.previousStatus(meta.uid, parsed.ok ? parsed.pool.status : parsed.status);
    const suspend = parsed.ok ? parsed.pool.spec.suspend : false;
    const status = blockedStatus(previous, { now: new Date(), generation: meta.generation, reason, message, specVerdict, suspend });
    const changed = await this.patchIfChanged(meta, previous, status);
    if (changed) {
      this.deps.logger.warn('pool blocked', { namespace: meta.namespace, pool: meta.name, reason, message });
      await this.deps.events.record({ namespace: meta.namespace, name: meta.name, uid: meta.uid }, 'Warning', reason, message);
    }
  }

  private previousStatus(uid: string, fromCache: PoolStatus): PoolStatus {
    return this.written.get(uid) ?? fromCache;
  }

  private async patchIfChanged(meta: { namespace: string; name: string; uid: string }, previous: PoolStatus, next: PoolStatus): Promise<boolean> {
    if (sameStatus(previous, next)) return false;
    await this.deps.kube.patchStatus(meta.namespace, meta.name, next);
    this.written.set(meta.uid, next);
    return true;
  }

  /**
   * Deletion: end every live invocation, return its leased tasks, release the queue claim, then drop the
   * finalizer. Never deletes tasks. Without its database (say, its Secret went first) the finalizer stays
   * until the Secret is back, and the Ready condition says how to let go.
   */
  private async finalize(key: string, parsed: ParseResult): Promise<ProcessResult> {
    const { deps } = this;
    const meta = parsed.meta;
    if (!meta.finalizers.includes(FINALIZER)) return {};
    const log = deps.logger.child({ namespace: meta.namespace, pool: meta.name });
    if (parsed.ok) {
      const resolved = await deps.databases.resolve(parsed.pool);
      const database: Database | undefined = resolved.ok ? resolved.database : deps.databases.lastResolved(meta.uid);
      if (!database) {
        if (!resolved.ok && resolved.reason === Reason.DatabaseUnavailable) throw new Error(`cannot finalize ${key}: ${resolved.message}`);
        const why = resolved.ok ? 'its database is unknown' : resolved.message;
        await this.block(parsed, Reason.Deleting,
          `waiting to finalize: ${why}. Restore it so the pool's invocations are ended and their tasks returned, or remove the finalizer ${FINALIZER} to abandon them`,
          false);
        return { requeueAfterMs: deps.options.blockedRetryMs };
      }
      const pass = await runDispatchPass({
        db: database.db, pool: parsed.pool, invoker: deps.invoker, options: deps.options, mode: 'deleting',
        connectedForMs: database.connectivity.connectedForMs(),
      });
      await releaseClaims(database.db, { poolUid: meta.uid });
      log.info('pool finalized', { terminated: pass.terminated.length, releasedTasks: pass.releasedTasks, failedTasks: pass.failedTasks });
    } else {
      // A spec that does not parse was never dispatched from.
      log.warn('pool with an invalid spec deleted', { problems: parsed.problems.join('; ') });
    }
    await deps.kube.setFinalizers(meta.namespace, meta.name, meta.finalizers.filter((f) => f !== FINALIZER), meta.resourceVersion);
    deps.routes.forget(key);
    deps.events.forget(meta.uid);
    deps.metrics.forgetPool(meta.namespace, meta.name);
    deps.databases.forget(meta.uid);
    this.waitCursor.delete(meta.uid);
    this.written.delete(meta.uid);
    return {};
  }
}

export function splitKey(key: string): [string, string] {
  const slash = key.indexOf('/');
  return [key.slice(0, slash), key.slice(slash + 1)];
}
