// Level-based reconcile of one LambdaTaskPool key: re-read the world, converge, write status once.
// Safe to run twice; it never branches on what kind of watch event brought the key here.
import { Reason } from '../api/conditions.ts';
import { parsePool, parseStatus, type ParseResult } from '../api/parse.ts';
import { FINALIZER, type Pool, type PoolStatus } from '../api/types.ts';
import { checkPool, checkPoolSpec, rulesFor, type TenancyPolicy } from '../api/tenancy.ts';
import { functionVerdict, stallFloorMs, type StartSignals } from '../planner/function-readiness.ts';
import type { InvokeTarget } from '../lambda/invoker.ts';
import { startSignals } from '../store/start-signals.ts';
import type { FunctionGuard } from './function-guard.ts';
import { PoolAccounting, type TaskError } from './pool-accounting.ts';
import type { Invoker } from '../lambda/invoker.ts';
import type { Logger } from '../ops/logger.ts';
import type { Metrics } from '../ops/metrics.ts';
import { isConnectionLost, type Db } from '../store/db.ts';
import { poolInvocationCounts, recentTrouble, type PoolIdentity } from '../store/invocation-store.ts';
import { claimQueue, releaseClaims, withdrawClaimRetention } from '../store/queue-claims.ts';
import { leaseWaitsSince, queueTaskCounts } from '../store/task-store.ts';
import { backlogCountLimit } from '../planner/dispatch.ts';
import type { Database, DatabaseRegistry } from './databases.ts';
import { describeError } from '../ops/describe-error.ts';
import { plural } from '../ops/plural.ts';
import { runDispatchPass, type DispatchPassOptions, type DispatchPassResult } from './dispatch-pass.ts';
import type { PassBatcher } from './pass-batcher.ts';
import type { EventRecorder } from './events.ts';
import { apiStatus, type KubeApi, type PoolObject } from './kube.ts';
import type { NotificationRoutes } from './routes.ts';
import { blockedStatus, buildStatus, sameStatus } from './status.ts';
import type { StrandedSweeper } from './stranded-sweep.ts';
import { WorkQueue, type ProcessResult } from './work-queue.ts';

export interface PoolCache {
  get(namespace: string, name: string): PoolObject | undefined;
  knownUids(): ReadonlySet<string>;
}

export interface ReconcilerDeps {
  kube: KubeApi;
  cache: PoolCache;
  databases: DatabaseRegistry;
  invoker: Invoker;
  /** Runs the passes of many pools of one database together. */
  passes: PassBatcher;
  events: EventRecorder;
  metrics: Metrics;
  logger: Logger;
  routes: NotificationRoutes;
  sweeper: StrandedSweeper;
  /** What each function's configuration is (FunctionReady, memory for GB-seconds, timeout for orphan reasons). */
  guard: FunctionGuard;
  /** Which functions and queues each namespace's pools may use. */
  policy: TenancyPolicy;
  /** Whether dispatch passes are waiting: status writes yield to them. */
  dispatchBusy?: () => boolean;
  options: DispatchPassOptions & {
    /** How often a pool blocked on something outside Kubernetes (a Secret, the database) is looked at again. */
    blockedRetryMs: number;
    troubleWindowSeconds: number;
    /** The controller's retention (--retention), recorded on the claims of pools that name none. */
    defaultRetentionSeconds: number;
  };
}

/** How often a Degraded pool is looked at again, so that a condition read from a recent window clears. */
const DEGRADED_RECHECK_MS = 30_000;
/** How long a queue claim this pool holds is trusted before it is checked again in the database. */
const CLAIM_RECHECK_MS = 300_000;
/** A pool's status is written at most this often; passes in between are folded into the next write. */
const STATUS_MIN_INTERVAL_MS = 1_000;
const STATUS_FIRST_DELAY_MS = 250;
const STATUS_YIELD_MS = 200;
/** A status write yields to dispatch for at most this long after it was asked for, so a busy controller still writes status. */
const STATUS_MAX_YIELD_MS = 5_000;
/** When another session holds the pool's lock this moment (a replica's pass, the stranded sweep), look again this soon. */
const BUSY_RETRY_MS = 250;

interface PendingStatus {
  pool: Pool;
  db: Db;
  display: string;
  pass: DispatchPassResult;
  /** The newest pass since the last write that dispatched. */
  dispatchedAt?: Date;
  /** The newest decision recorded since the last write (a later pass that changed nothing must not hide it). */
  decision?: { pass: DispatchPassResult; decision: NonNullable<DispatchPassResult['decision']> };
  /** When the oldest pass not yet written asked for its status (ms). */
  since: number;
}

export class PoolReconciler {
  private readonly waitCursor = new Map<string, string>();
  /** The status this controller last wrote per pool uid: the informer's copy may not show it yet. */
  private readonly written = new Map<string, PoolStatus>();
  /**
   * The uid of each pool key this controller has seen: a pool deleted before it had a route (it never reached
   * a database, or was deleted between resolving one and its finalizer) is still forgotten by uid.
   */
  private readonly uidByKey = new Map<string, string>();

  private readonly pending = new Map<string, PendingStatus>();
  /**
   * What this controller knows of each pool's queue claim, per pool uid: held (and when it last checked it),
   * or, for a pool the tenancy policy refuses, that its claims' recorded retention is withdrawn in that database.
   */
  private readonly claims = new Map<
    string,
    { held: true; database: string; queue: string; retentionSeconds: number; at: number } | { held: false; withdrawnIn: string }
  >();
  private readonly lastStatusWrite = new Map<string, number>();
  private readonly statusQueue: WorkQueue;
  private readonly accounting: PoolAccounting;
  /** The newest task error per pool uid this controller saw (status keeps it across writes). */
  private readonly taskErrors = new Map<string, TaskError>();

  constructor(private readonly deps: ReconcilerDeps) {
    this.accounting = new PoolAccounting(deps.metrics, deps.events, (row) =>
      deps.guard.memoryOf({
        name: row.functionName,
        ...(row.functionQualifier ? { qualifier: row.functionQualifier } : {}),
        ...(row.functionRegion ? { region: row.functionRegion } : {}),
      }),
    );
    this.statusQueue = new WorkQueue((key) => this.flushStatus(key), { workers: 4, baseBackoffMs: 1_000, maxBackoffMs: 30_000 });
  }

  async reconcile(key: string): Promise<ProcessResult> {
    const [namespace, name] = splitKey(key);
    const obj = this.deps.cache.get(namespace, name);
    if (!obj) return this.forgetGone(key, namespace, name);
    const parsed = parsePool(obj);
    this.uidByKey.set(key, parsed.meta.uid);
    if (parsed.meta.deletionTimestamp) return this.finalize(key, parsed);
    if (!parsed.ok) {
      // An invalid pool dispatches nothing, so it needs no finalizer (one it had from a valid spec stays).
      const message = `invalid spec: ${parsed.problems.join('; ')}`;
      await this.block(parsed, Reason.InvalidSpec, message, true);
      return {};
    }
    return this.reconcilePool(key, parsed.pool);
  }

  /**
   * The finalizer goes on once the pool has a database, before its first pass there: a pool that never had
   * one (its Secret misspelt, the default database refused to its namespace) never dispatched, and is deleted
   * at once instead of waiting for ever for a database it never had.
   */
  private async addFinalizer(pool: Pool): Promise<void> {
    const { meta } = pool;
    if (meta.finalizers.includes(FINALIZER)) return;
    try {
      await this.deps.kube.setFinalizers(meta.namespace, meta.name, [...meta.finalizers, FINALIZER], meta.resourceVersion);
    } catch (error) {
      // Said in status as well as in the log (best effort: the status write may be refused too). A conflict
      // (the pool changed since it was read) is routine: the retry reads it again.
      if (apiStatus(error) !== 409) {
        const message = `could not add the finalizer ${FINALIZER}: ${describeError(error)}`;
        await this.block({ ok: true, meta, pool }, Reason.ReconcileError, message, false).catch(() => undefined);
      }
      throw error;
    }
  }

  private async reconcilePool(key: string, pool: Pool): Promise<ProcessResult> {
    const { deps } = this;
    const log = deps.logger.child({ namespace: pool.meta.namespace, pool: pool.meta.name });
    const resolved = await deps.databases.resolve(pool);
    if (!resolved.ok) {
      await this.block({ ok: true, meta: pool.meta, pool }, resolved.reason, resolved.message, false);
      return { requeueAfterMs: deps.options.blockedRetryMs };
    }
    await this.addFinalizer(pool);
    const { db, key: databaseKey, display, connectivity } = resolved.database;
    deps.routes.set(key, { database: databaseKey, queue: pool.spec.queue, uid: pool.meta.uid });

    let pass: DispatchPassResult;
    // A pool the tenancy policy refuses, or whose queue another pool holds, dispatches nothing; it still sweeps its own invocations.
    let refused: { reason: Reason; message: string } | undefined;
    const verdict = checkPoolSpec(deps.policy, pool);
    if (!verdict.allowed) refused = { reason: Reason[verdict.reason], message: verdict.message };
    try {
      // A claim this pool holds cannot be taken from it while it exists: it is checked again only now and then.
      const state = this.claims.get(pool.meta.uid);
      const known = state?.held ? state : undefined;
      const retentionSeconds = pool.spec.retentionSeconds ?? deps.options.defaultRetentionSeconds;
      if (refused) {
        // A refused pool claims nothing, and a claim it still holds no longer sets its queue's retention for
        // the other controllers on this database (retention-sweep.ts); once, until it is allowed again.
        if (state?.held !== false || state.withdrawnIn !== databaseKey) {
          await withdrawClaimRetention(db, pool.meta.uid);
          this.claims.set(pool.meta.uid, { held: false, withdrawnIn: databaseKey });
        }
      } else if (
        !known ||
        known.database !== databaseKey ||
        known.queue !== pool.spec.queue ||
        known.retentionSeconds !== retentionSeconds ||
        Date.now() - known.at > CLAIM_RECHECK_MS
      ) {
        const claim = await claimQueue(db, {
          queue: pool.spec.queue,
          pool: { namespace: pool.meta.namespace, name: pool.meta.name, uid: pool.meta.uid },
          retentionSeconds,
          isStale: (holder) => this.isGone(holder),
        });
        if (claim.held) {
          await releaseClaims(db, { poolUid: pool.meta.uid, exceptQueue: pool.spec.queue });
          this.claims.set(pool.meta.uid, { held: true, database: databaseKey, queue: pool.spec.queue, retentionSeconds, at: Date.now() });
        } else {
          this.claims.delete(pool.meta.uid);
          refused = {
            reason: Reason.QueueConflict,
            message: `queue ${pool.spec.queue} in ${display} is already served by pool ${claim.holder.namespace}/${claim.holder.name}`,
          };
        }
      }
      const target = this.invokeTarget(pool);
      const timeout = deps.guard.cached(target)?.configuration?.timeoutSeconds;
      const ran = await deps.passes.run(resolved.database, {
        pool,
        connectedForMs: connectivity.connectedForMs(),
        dispatchBlocked: refused !== undefined,
        ...(target.roleArn ? { roleArn: target.roleArn } : {}),
        ...(timeout !== undefined ? { functionTimeoutSeconds: timeout } : {}),
        functionRefusal: (fn) => {
          const row = checkPool(deps.policy, {
            namespace: pool.meta.namespace,
            functionName: fn.name,
            functionQualifier: fn.qualifier,
            queue: pool.spec.queue,
            usesDefaultDatabase: false,
          });
          return row.allowed ? undefined : `the row names a function this pool may not invoke: ${row.message}`;
        },
      });
      if (ran === 'busy') return { requeueAfterMs: BUSY_RETRY_MS };
      pass = ran;
    } catch (error) {
      // Only a lost connection pauses orphaning by heartbeat on the whole database, and reads as the
      // database being unavailable; a lock or statement timeout is this pool's own (a session holding one
      // of its rows), and the connectivity probe sees a frozen server by itself.
      const unavailable = isConnectionLost(error);
      if (unavailable) connectivity.lost(error);
      const reason = unavailable ? Reason.DatabaseUnavailable : Reason.ReconcileError;
      const message = unavailable
        ? `database ${display} is unavailable: ${describeError(error)}`
        : `reconcile failed: ${describeError(error)}`;
      log.warn('reconcile failed', { reason, error: message });
      await this.block({ ok: true, meta: pool.meta, pool }, reason, message, false).catch((e: unknown) =>
        log.warn('could not record the failure in status', { error: describeError(e) }),
      );
      throw error;
    }

    this.report(pool, pass, log);
    if (refused) {
      await this.block({ ok: true, meta: pool.meta, pool }, refused.reason, refused.message, false);
      return { requeueAfterMs: deps.options.blockedRetryMs };
    }
    // The status write is not on the dispatch path: it is folded and written by the status queue.
    this.requestStatus(key, { pool, db, display, pass });
    // A Degraded condition reads a recent window of rows: look again while it lasts, so that it clears.
    const degraded =
      this.previousStatus(pool.meta.uid, pool.status).conditions?.some((c) => c.type === 'Degraded' && c.status === 'True') ||
      pass.plan.waste.wasting ||
      pass.orphaned.length > 0 ||
      pass.invoke.deferred !== undefined;
    return { requeueAfterMs: degraded ? Math.min(pass.requeueAfterMs, DEGRADED_RECHECK_MS) : pass.requeueAfterMs };
  }

  /**
   * Status writes are folded per pool and spaced at least STATUS_MIN_INTERVAL_MS apart, on their own
   * queue: a burst of passes (a thousand pools woken at once) dispatches first and writes status after,
   * once per pool, from the newest pass.
   */
  private requestStatus(key: string, report: Omit<PendingStatus, 'since'>): void {
    const earlier = this.pending.get(key);
    this.pending.set(key, {
      ...report,
      since: earlier?.since ?? Date.now(),
      dispatchedAt: report.pass.invoke.accepted > 0 && report.pass.dispatched.length > 0 ? report.pass.now : earlier?.dispatchedAt,
      decision: report.pass.decision ? { pass: report.pass, decision: report.pass.decision } : earlier?.decision,
    });
    // Never sooner than the interval after the last write, and never right away: a burst dispatches first.
    const last = this.lastStatusWrite.get(key) ?? 0;
    this.statusQueue.addAfter(key, Math.max(STATUS_FIRST_DELAY_MS, last + STATUS_MIN_INTERVAL_MS - Date.now()));
  }

  private async flushStatus(key: string): Promise<ProcessResult> {
    const report = this.pending.get(key);
    if (!report) return {};
    // Dispatch comes first: while passes wait or invokes are under way, status waits too (a burst of a
    // thousand pools invokes first), though never longer than STATUS_MAX_YIELD_MS.
    if (this.deps.dispatchBusy?.() && Date.now() - report.since < STATUS_MAX_YIELD_MS) return { requeueAfterMs: STATUS_YIELD_MS };
    this.pending.delete(key);
    this.lastStatusWrite.set(key, Date.now());
    // The pool may have gone meanwhile (finalized, or removed): write nothing for it.
    if (!this.written.has(report.pool.meta.uid) && !this.deps.cache.get(report.pool.meta.namespace, report.pool.meta.name)) return {};
    // The pool's database as it resolves now: after a password rotation the connections the pass used may
    // already be closed (databases.ts closes the old credentials' at once).
    const current = this.deps.databases.lastResolved(report.pool.meta.uid);
    const db = current?.db ?? report.db;
    const display = current?.display ?? report.display;
    try {
      await this.writeStatus(report.pool, db, display, report.pass, report.dispatchedAt, report.decision);
    } catch (error) {
      // Written again from the next pass; a failure is never silent.
      this.deps.logger.warn('status write failed', {
        namespace: report.pool.meta.namespace,
        pool: report.pool.meta.name,
        error: describeError(error),
      });
      if (!this.pending.has(key)) this.pending.set(key, report);
      throw error;
    }
    return {};
  }

  /**
   * Stops the status queue after it has written what is due, for at most `timeoutMs`: the next leader
   * rebuilds every status from the world anyway, and a stopping controller must hand its Lease over promptly.
   */
  async close(timeoutMs = Number.POSITIVE_INFINITY): Promise<void> {
    await Promise.race([
      this.statusQueue.idle(),
      new Promise((resolve) => {
        if (Number.isFinite(timeoutMs)) setTimeout(resolve, timeoutMs).unref();
      }),
    ]);
    this.statusQueue.stop();
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
    await this.forgetStatus(key);
    const route = deps.routes.get(key);
    if (route) {
      const database = deps.databases.lastResolved(route.uid);
      if (database) {
        const ended = await deps.sweeper.sweepGonePool(database, { namespace, name, uid: route.uid });
        if (ended.length > 0) {
          deps.logger.warn('pool deleted without finalizing; its live invocations were terminated', {
            namespace,
            pool: name,
            terminated: ended.length,
          });
        }
        deps.sweeper.poke();
      }
    }
    const uid = route?.uid ?? this.uidByKey.get(key);
    if (uid !== undefined) this.forgetPoolState(uid);
    this.uidByKey.delete(key);
    deps.routes.forget(key);
    await deps.metrics.forgetPool(namespace, name);
    return {};
  }

  /** Everything this controller keeps of a pool by uid, forgotten once the pool is gone. */
  private forgetPoolState(uid: string): void {
    this.deps.databases.forget(uid);
    this.deps.events.forget(uid);
    this.forgetUid(uid);
    this.waitCursor.delete(uid);
    this.written.delete(uid);
    this.claims.delete(uid);
  }

  /**
   * A pool is gone: no status write of it is due any more, and one under way ends before the pool's metrics
   * and per-pool state are forgotten (a write that ended after them set its gauges again, for ever).
   */
  private async forgetStatus(key: string): Promise<void> {
    // After the wait: a write that fails puts its report back.
    await this.statusQueue.forget(key);
    this.pending.delete(key);
    this.lastStatusWrite.delete(key);
  }

  /** Metrics, logs and events of a pass. Events are sent in the background by the recorder. */
  private report(pool: Pool, pass: DispatchPassResult, log: Logger): void {
    const { deps } = this;
    const ref = { namespace: pool.meta.namespace, name: pool.meta.name, uid: pool.meta.uid };
    const labels = { namespace: pool.meta.namespace, pool: pool.meta.name };
    const a = pass.plan.arithmetic;
    if (pass.restError !== undefined) {
      log.warn('the pass committed only its first new rows: inserting the rest failed, the next pass decides again', {
        decided: pass.plan.dispatch,
        inserted: pass.dispatched.length,
        error: describeError(pass.restError),
      });
    }
    if (pass.invoke.accepted > 0) {
      deps.metrics.dispatched.inc({ ...labels, result: 'accepted' }, pass.invoke.accepted);
      // The planner counts the backlog only up to what could change its decision (maxConcurrency x tasksPerInvocation).
      const backlog = `${pass.backlog >= backlogCountLimit(pool.spec) ? 'at least ' : ''}${plural(pass.backlog, 'task')}`;
      deps.events.record(
        ref,
        'Normal',
        'Dispatched',
        `invoked ${pass.invoke.accepted} (${pass.dispatched.length} new) for a backlog of ${backlog}; before this, ${a.queued} queued and ${pass.plan.live.ready + pass.plan.live.running} started`,
      );
    }
    if (pass.dispatched.length > 0 || pass.orphaned.length > 0 || pass.terminated.length > 0) {
      log.info('dispatch pass', {
        dispatched: pass.dispatched.length,
        reinvoked: pass.plan.reinvoke.length,
        backlog: pass.backlog,
        queued: a.queued,
        supply: a.supply,
        want: a.want,
        headroom: a.headroom,
        orphaned: pass.orphaned.length,
        terminated: pass.terminated.length,
        releasedTasks: pass.releasedTasks,
        failedTasks: pass.failedTasks,
      });
    }
    if (pass.orphaned.length > 0) {
      deps.events.record(
        ref,
        'Warning',
        'InvocationsOrphaned',
        `${plural(pass.orphaned.length, 'invocation')} orphaned (never started or heartbeat lost); ${plural(pass.releasedTasks, 'task')} returned to the queue, ${pass.failedTasks} failed`,
      );
    }
    for (const kind of ['rejected', 'deferred'] as const) {
      const outcome = pass.invoke[kind];
      if (!outcome) continue;
      const f = outcome.failure;
      deps.metrics.dispatched.inc({ ...labels, result: f.kind }, outcome.ids.length);
      deps.metrics.invokeErrors.inc({ ...labels, code: f.code }, outcome.ids.length);
      log.warn('invoke failed', { code: f.code, kind: f.kind, invocations: outcome.ids.length, error: f.message });
      const reason = f.kind === 'throttled' ? 'Throttled' : f.kind === 'rejected' ? 'InvokeRejected' : 'InvokeFailed';
      deps.events.record(
        ref,
        'Warning',
        reason,
        `${outcome.ids.length} invokes of ${pool.spec.function.name} failed: ${f.code}: ${f.message}`,
      );
    }
  }

  private async writeStatus(
    pool: Pool,
    db: Db,
    display: string,
    pass: DispatchPassResult,
    dispatchedAt?: Date,
    decided?: PendingStatus['decision'],
  ): Promise<PoolStatus> {
    const { deps } = this;
    // Every read here is bounded: live rows, the pass's bounded backlog count, totals rows, a recent window.
    // Three at a time, so that the status writers never hold more of the database pool than dispatch can spare.
    const [{ counts: invocations, wasted }, tasks, trouble] = await Promise.all([
      poolInvocationCounts(db, pool.meta.uid),
      queueTaskCounts(db, { queue: pool.spec.queue, created: pass.backlog }),
      recentTrouble(db, { poolUid: pool.meta.uid, windowSeconds: deps.options.troubleWindowSeconds }),
    ]);
    const taskError = await this.accounting.observe(pool, db, pass.now);
    const signals = await this.startSignals(pool, db, pass);
    const labels = { namespace: pool.meta.namespace, pool: pool.meta.name };
    for (const [state, n] of Object.entries(invocations)) deps.metrics.liveInvocations.set({ ...labels, state }, n);
    deps.metrics.backlog.set(labels, tasks.created);
    await this.observeTaskWaits(pool, db, pass.now);
    if (taskError) this.taskErrors.set(pool.meta.uid, taskError);

    // The function guard answers from what it last read; a stale read is redone in the background.
    const target = this.invokeTarget(pool);
    const check = deps.guard.check(target, {
      poolUid: pool.meta.uid,
      ...(pool.spec.function.asyncConfig === 'Managed' ? { managed: { startTimeoutSeconds: pool.spec.startTimeoutSeconds } } : {}),
    });
    const verdict = functionVerdict({ spec: pool.spec, settings: check.settings, signals });
    // Managed, but the put failed: that is the cause of any async-config finding, so it leads the message.
    const asyncFinding = verdict.reason === 'AsyncRetriesEnabled' || verdict.reason === 'EventAgeTooShort';
    if (check.managedProblem && (verdict.status !== 'False' || asyncFinding)) {
      const p = check.managedProblem;
      verdict.message = `asyncConfig is Managed, but ${p.action} failed: ${p.code}: ${p.message}${verdict.status === 'False' ? `; ${verdict.message}` : ''}`;
      verdict.status = 'False';
      verdict.reason = 'AsyncConfigNotSet';
    }

    const previous = this.previousStatus(pool.meta.uid, pool.status);
    const latestError = this.taskErrors.get(pool.meta.uid);
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
      function: verdict,
      wasted,
      ...(latestError ? { lastTaskError: latestError } : {}),
      ...(decided
        ? {
            decision: {
              ...decided.decision,
              backlog: decided.pass.backlog,
              dispatched: decided.pass.dispatched.length,
              orphaned: decided.pass.orphaned.length,
              terminated: decided.pass.terminated.length,
            },
          }
        : {}),
      ...(dispatchedAt ? { dispatchedAt } : {}),
    });
    this.exportConditions(pool.meta, status);
    await this.patchIfChanged(pool.meta, previous, status);
    return status;
  }

  /** Where the pool invokes: its function, as its namespace's role when the tenancy policy names one. */
  private invokeTarget(pool: Pool): InvokeTarget {
    const roleArn = rulesFor(this.deps.policy, pool.meta.namespace).rules.roleArn;
    return roleArn ? { ...pool.spec.function, roleArn } : pool.spec.function;
  }

  /**
   * The ledger's view for FunctionReady, from what the pass saw and the runs accounting kept in memory. Only
   * when accepted invocations have waited past the stall floor with nothing running is the ledger read.
   */
  private async startSignals(pool: Pool, db: Db, pass: DispatchPassResult): Promise<StartSignals> {
    const recent = this.accounting.recent(pool.meta.uid);
    const live = pass.plan.live;
    const oldestWaitMs = pass.oldestPendingAt ? pass.now.getTime() - pass.oldestPendingAt.getTime() : 0;
    const startedSince =
      live.ready + live.running > 0 ||
      (recent.lastStartAt !== undefined && pass.oldestPendingAt !== undefined && recent.lastStartAt > pass.oldestPendingAt);
    if (live.pending > 0 && !startedSince && oldestWaitMs > stallFloorMs(pool.spec)) {
      const read = await startSignals(db, { poolUid: pool.meta.uid, queue: pool.spec.queue });
      return {
        ...read,
        ...(recent.taskDurationMs !== undefined && read.taskDurationMs === undefined ? { taskDurationMs: recent.taskDurationMs } : {}),
      };
    }
    return {
      waiting: live.pending,
      oldestWaitMs,
      startedSince: startedSince || live.pending === 0,
      ...(recent.usualStartDelayMs !== undefined ? { usualStartDelayMs: recent.usualStartDelayMs } : {}),
      ...(recent.taskDurationMs !== undefined ? { taskDurationMs: recent.taskDurationMs } : {}),
    };
  }

  /** Ready and FunctionReady as gauges, for alerts. */
  private exportConditions(meta: { namespace: string; name: string }, status: PoolStatus): void {
    const labels = { namespace: meta.namespace, pool: meta.name };
    const of = (type: string) => status.conditions?.find((c) => c.type === type)?.status;
    this.deps.metrics.poolReady.set(labels, of('Ready') === 'True' ? 1 : 0);
    const fn = of('FunctionReady');
    if (fn === 'True' || fn === 'False') this.deps.metrics.functionReady.set(labels, fn === 'True' ? 1 : 0);
    else this.deps.metrics.functionReady.remove(labels);
  }

  private forgetUid(uid: string): void {
    this.accounting.forget(uid);
    this.deps.guard.forgetPool(uid);
    this.taskErrors.delete(uid);
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
    this.exportConditions(meta, status);
    const ref = { namespace: meta.namespace, name: meta.name, uid: meta.uid };
    let changed: boolean;
    try {
      changed = await this.patchIfChanged(meta, previous, status);
    } catch (error) {
      // A pool stored before its CRD's schema refused such a spec cannot take a status write (the API server
      // validates the whole object): the Event still tells its owner, and the write is tried again later.
      if (apiStatus(error) !== 422) throw error;
      this.deps.logger.warn('pool blocked; the API server refused its status', {
        namespace: meta.namespace,
        pool: meta.name,
        reason,
        message,
      });
      this.deps.events.record(ref, 'Warning', reason, `${message} (status not written: the stored object fails the CRD's schema)`);
      return;
    }
    if (changed) {
      this.deps.logger.warn('pool blocked', { namespace: meta.namespace, pool: meta.name, reason, message });
      this.deps.events.record(ref, 'Warning', reason, message);
    }
  }

  private previousStatus(uid: string, fromCache: PoolStatus): PoolStatus {
    return this.written.get(uid) ?? fromCache;
  }

  /**
   * The informer now holds this status of the pool: once it shows what this controller last wrote, the
   * cache is the previous status again, and the copy kept here is dropped (one status per pool, not two).
   */
  observed(uid: string, status: unknown): void {
    const written = this.written.get(uid);
    if (written && sameStatus(written, parseStatus(status))) this.written.delete(uid);
  }

  private async patchIfChanged(
    meta: { namespace: string; name: string; uid: string },
    previous: PoolStatus,
    next: PoolStatus,
  ): Promise<boolean> {
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
        await this.block(
          parsed,
          Reason.Deleting,
          `waiting to finalize: ${why}. Restore it so the pool's invocations are ended and their tasks returned, or remove the finalizer ${FINALIZER} to abandon them`,
          false,
        );
        return { requeueAfterMs: deps.options.blockedRetryMs };
      }
      const pass = await runDispatchPass({
        db: database.db,
        pool: parsed.pool,
        invoker: deps.invoker,
        options: deps.options,
        mode: 'deleting',
        connectedForMs: database.connectivity.connectedForMs(),
      });
      await releaseClaims(database.db, { poolUid: meta.uid });
      log.info('pool finalized', { terminated: pass.terminated.length, releasedTasks: pass.releasedTasks, failedTasks: pass.failedTasks });
    } else {
      // A spec that does not parse was never dispatched from.
      log.warn('pool with an invalid spec deleted', { problems: parsed.problems.join('; ') });
    }
    await deps.kube.setFinalizers(
      meta.namespace,
      meta.name,
      meta.finalizers.filter((f) => f !== FINALIZER),
      meta.resourceVersion,
    );
    await this.forgetStatus(key);
    deps.routes.forget(key);
    this.forgetPoolState(meta.uid);
    this.uidByKey.delete(key);
    await deps.metrics.forgetPool(meta.namespace, meta.name);
    return {};
  }
}

export function splitKey(key: string): [string, string] {
  const slash = key.indexOf('/');
  return [key.slice(0, slash), key.slice(slash + 1)];
}
