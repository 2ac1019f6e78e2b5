// Wires the controller together: pool informers feed a work queue of keys, the reconciler converges each
// key, database notifications wake the right pool, and (with leader election) only the leader dispatches.
import os from 'node:os';
import { createInvoker } from '../lambda/invoker.ts';
import { startHealthServer, type HealthServer } from '../ops/health.ts';
import type { Logger } from '../ops/logger.ts';
import { Metrics } from '../ops/metrics.ts';
import { DatabaseRegistry } from './databases.ts';
import { describeError } from '../ops/describe-error.ts';
import { EventRecorder } from './events.ts';
import { KubeApi, loadKubeConfig, watchFailureHint, type PoolInformer, type PoolObject } from './kube.ts';
import { LeaderElector } from './leader-election.ts';
import { PoolReconciler } from './reconciler.ts';
import { PassBatcher } from './pass-batcher.ts';
import { FunctionGuard } from './function-guard.ts';
import { NotificationRoutes } from './routes.ts';
import { WorkQueue } from './work-queue.ts';
import { StrandedSweeper } from './stranded-sweep.ts';
import { restartOnFailure } from './watch-restart.ts';
import { INVOCATIONS_CHANNEL } from '../store/notifications.ts';
import { RetentionSweeper } from './retention-sweep.ts';
import { parsePool } from '../api/parse.ts';
import { checkPoolSpec, OPEN_POLICY, policyRestricts, type TenancyPolicy } from '../api/tenancy.ts';
import { DEFAULT_PLAN_LIMITS } from '../planner/pool-plan.ts';

export interface ControllerConfig {
  kubeconfig?: string;
  databaseUrl?: string;
  lambdaEndpoint?: string;
  region: string;
  /** Static AWS credentials (the local stack only); otherwise the SDK's default provider chain. */
  lambdaCredentials?: { accessKeyId: string; secretAccessKey: string };
  namespaces: string[];
  allowedDefaultDbNamespaces: string[];
  /** Which functions and queues each namespace's pools may use, and the IAM role that invokes them. */
  tenancy: TenancyPolicy;
  /** When not empty, Secrets are read only in these namespaces (a pool elsewhere gets SecretNotAllowed). */
  secretNamespaces: string[];
  metricsHost: string;
  metricsPort: number;
  leaderElect: boolean;
  leaseNamespace: string;
  leaseName: string;
  identity: string;
  workers: number;
  invokeParallelism: number;
  /** Rows a large dispatch pass commits first, invoking them while it inserts the rest (DispatchPassOptions.firstRows); 0: all at once. */
  firstRows: number;
  resyncMs: number;
  reinvokeGraceMs: number;
  rejectionBackoffMs: number;
  blockedRetryMs: number;
  /** How often every database is swept for invocations and leases of pools that no longer serve it. */
  strandedSweepMs: number;
  /** Finished tasks and invocations older than this are deleted (a pool may override it); 0 keeps them. */
  retentionSeconds: number;
  /** How often retention runs. */
  retentionSweepMs: number;
  /** How often each function's configuration is read again (FunctionReady). */
  functionCheckMs: number;
  /** STS endpoint override (the local runtime), for namespace roles. */
  stsEndpoint?: string;
  logger: Logger;
}

export const CONTROLLER_DEFAULTS = {
  region: 'us-east-1',
  metricsHost: '',
  metricsPort: 8080,
  leaseName: 'lambda-task-pool-controller',
  // Passes of many pools at once. The database halves of the passes that are ready together run as one
  // transaction per database (PASS_BATCH pools at most; a burst's first LEAD_BATCH in one of their own beside
  // it), and the invokes of all pools share invokeParallelism.
  workers: 256,
  invokeParallelism: 32,
  // A pass of more than twice this many new rows commits this many first and inserts the rest while they
  // are invoked (first-rows.ts): four rounds of the invoke slots, about 40 ms of invokes here, where the
  // other 872 rows of a 1,000-row pass take 6 to 9 ms to insert.
  firstRows: 128,
  // Every pass is driven by what changed (notifications, watch events) or by its own next deadline; this
  // is only the longest an idle pool goes unlooked-at.
  resyncMs: 600_000,
  reinvokeGraceMs: 10_000,
  rejectionBackoffMs: 60_000,
  blockedRetryMs: 15_000,
  strandedSweepMs: 30_000,
  retentionSeconds: 7 * 24 * 3600,
  tenancy: OPEN_POLICY,
  secretNamespaces: [] as string[],
  retentionSweepMs: 10 * 60_000,
  functionCheckMs: 5 * 60_000,
} as const;

/** How long a stopping controller goes on writing status, and then sending Events, before it lets go. */
const STOP_FLUSH_MS = 3_000;

/** The most pools whose database work one transaction does (pass-batcher.ts). */
const PASS_BATCH = 256;

/**
 * When more passes than this are ready at once after a quiet spell (a burst across many pools), these go
 * first, in a transaction of their own beside the rest's (pass-batcher.ts, coalescer.ts): their rows are being
 * invoked while the rest are decided. In the benchmark's timeline of three 100-pool bursts, the rest's first
 * rows were committed before the lead's 80 rows had all been answered in each. docs/architecture.md §5 has
 * what it measured.
 */
const LEAD_BATCH = 8;

/** How long invocation state changes of one pool are folded into one pass. */
const INVOCATION_FOLD_MS = 100;

/** Restarts of a failed pool watch: jittered, and never more than about 3 s apart, so work resumes soon after the API server is back. */
const WATCH_RESTART = { initialMs: 200, maxMs: 3_200 };

export interface RunningController {
  healthPort: number;
  metrics: Metrics;
  isLeader(): boolean;
  stop(): Promise<void>;
}

const keyOf = (obj: PoolObject) => `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
/** What a reconcile depends on besides status: our own status writes don't wake the pool again. */
const signatureOf = (obj: PoolObject) =>
  JSON.stringify([obj.metadata?.generation, obj.metadata?.deletionTimestamp, obj.metadata?.finalizers]);

export async function startController(config: ControllerConfig): Promise<RunningController> {
  const log = config.logger;
  const kube = new KubeApi(loadKubeConfig(config.kubeconfig));
  const metrics = new Metrics();
  const routes = new NotificationRoutes();
  // Ready means every informer has listed its pools and none is failing now: an identity without RBAC, a
  // missing CRD or an unreachable API server must not read as a working controller (rollouts and
  // `helm install --wait` go by readiness).
  const listed = new Set<number>();
  const failing = new Set<PoolInformer>();
  const informers: PoolInformer[] = kube.poolInformers(config.namespaces, (i) => listed.add(i));
  const signatures = new Map<string, string>();
  let dispatching = !config.leaderElect;
  let stopped = false;

  const cache = {
    get: (namespace: string, name: string) => {
      for (const informer of informers) {
        const obj = informer.get(name, namespace);
        if (obj) return obj;
      }
      return undefined;
    },
    knownUids: () => new Set(informers.flatMap((i) => i.list().map((o) => o.metadata?.uid ?? ''))),
    allKeys: () => informers.flatMap((i) => i.list().map(keyOf)),
  };

  // Assigned once, below; the callbacks wired before that reach it through the variable.
  // eslint-disable-next-line prefer-const
  let queue: WorkQueue | undefined;
  const enqueue = (key: string) => queue?.add(key);

  // eslint-disable-next-line prefer-const
  let sweeper: StrandedSweeper | undefined;
  const databases = new DatabaseRegistry({
    kube,
    defaultUrl: config.databaseUrl,
    allowedDefaultNamespaces: config.allowedDefaultDbNamespaces,
    secretNamespaces: config.secretNamespaces,
    logger: log,
    // New work wakes its pool at once; invocation state changes are folded for a moment, so a burst of
    // them (pending, ready, running, succeeded) costs one pass, not one each.
    onNotify: (database, channel, payload) => {
      for (const key of routes.keysFor(database, channel, payload)) {
        if (channel === INVOCATIONS_CHANNEL) queue?.addAfter(key, INVOCATION_FOLD_MS);
        else enqueue(key);
      }
    },
    // Notifications sent while the listener was down are lost: look at every pool of that database.
    onListenerReconnected: (database) => routes.keysOfDatabase(database).forEach(enqueue),
    onDraining: () => sweeper?.poke(),
  });
  const retention = new RetentionSweeper({
    databases,
    defaultSeconds: config.retentionSeconds,
    intervalMs: config.retentionSweepMs,
    active: () => dispatching,
    logger: log,
    pools: (databaseIdentity) =>
      informers
        .flatMap((i) => i.list())
        .flatMap((obj) => {
          const parsed = parsePool(obj);
          if (!parsed.ok || databases.lastResolved(parsed.meta.uid)?.identity !== databaseIdentity) return [];
          const { queue, retentionSeconds } = parsed.pool.spec;
          const queueAllowed = checkPoolSpec(config.tenancy, parsed.pool).allowed;
          return [{ uid: parsed.meta.uid, queue, queueAllowed, ...(retentionSeconds !== undefined ? { retentionSeconds } : {}) }];
        }),
    onDeleted: (table, rows) => metrics.retentionDeleted.inc({ table }, rows),
  });
  sweeper = new StrandedSweeper({
    databases,
    knownUid: (uid) => cache.knownUids().has(uid),
    isGone: (pool) => kube.poolGone(pool),
    active: () => dispatching,
    logger: log,
    intervalMs: config.strandedSweepMs,
  });
  const invoker = createInvoker({
    defaultRegion: config.region,
    endpoint: config.lambdaEndpoint,
    ...(config.stsEndpoint ? { stsEndpoint: config.stsEndpoint } : {}),
    parallelism: config.invokeParallelism,
    ...(config.lambdaCredentials ? { credentials: config.lambdaCredentials } : {}),
  });
  // Status writes and events yield to dispatch: to passes waiting for a worker and to invokes under way.
  const dispatchBusy = () => (queue?.length ?? 0) > 0 || invoker.inFlight() > 0;
  const events = new EventRecorder(kube.core, kube.options, log, undefined, undefined, dispatchBusy);
  // A changed function configuration is written into the status of every pool that invokes it.
  const guard = new FunctionGuard(invoker, log, {
    intervalMs: config.functionCheckMs,
    onChange: (target) =>
      cache.allKeys().forEach((key) => {
        const [namespace = '', name = ''] = key.split('/');
        const obj = cache.get(namespace, name);
        const parsed = obj ? parsePool(obj) : undefined;
        if (parsed?.ok && parsed.pool.spec.function.name === target.name) enqueue(key);
      }),
  });
  const passOptions = {
    reinvokeGraceMs: config.reinvokeGraceMs,
    rejectionBackoffMs: config.rejectionBackoffMs,
    limits: { ...DEFAULT_PLAN_LIMITS, resyncMs: config.resyncMs },
    firstRows: config.firstRows,
  };
  const passes = new PassBatcher({ invoker, options: passOptions, maxBatch: PASS_BATCH, leadBatch: LEAD_BATCH });
  const reconciler = new PoolReconciler({
    guard,
    kube,
    cache,
    databases,
    invoker,
    passes,
    events,
    metrics,
    logger: log,
    routes,
    sweeper,
    dispatchBusy,
    policy: config.tenancy,
    options: {
      ...passOptions,
      blockedRetryMs: config.blockedRetryMs,
      troubleWindowSeconds: 600,
      defaultRetentionSeconds: config.retentionSeconds,
    },
  });

  queue = new WorkQueue(
    async (key) => {
      const end = metrics.reconcileDuration.startTimer();
      try {
        const result = await reconciler.reconcile(key);
        end({ outcome: 'success' });
        return result;
      } catch (error) {
        end({ outcome: 'error' });
        throw error;
      }
    },
    { workers: config.workers },
    (key, error, retryInMs) => log.warn('reconcile failed; retrying', { key, retryInMs, error: describeError(error) }),
  );

  // A candidate collects keys from the start but works on none until it leads.
  if (config.leaderElect) queue.pause();

  for (const informer of informers) {
    const onChange = (obj: PoolObject) => {
      if (obj.metadata?.uid) reconciler.observed(obj.metadata.uid, obj.status);
      const key = keyOf(obj);
      const signature = signatureOf(obj);
      if (signatures.get(key) === signature) return;
      signatures.set(key, signature);
      enqueue(key);
    };
    informer.on('add', onChange);
    informer.on('update', onChange);
    informer.on('delete', (obj) => {
      signatures.delete(keyOf(obj));
      enqueue(keyOf(obj));
    });
    // A failed watch (the API server went away) restarts with jittered backoff, and so does a failed restart
    // (watch-restart.ts). Once it lists again, every pool is looked at at once: the level-based reconcile
    // catches up with whatever changed.
    restartOnFailure(informer, {
      backoff: WATCH_RESTART,
      stopped: () => stopped,
      onFailing: (error, retryInMs) => {
        failing.add(informer);
        const hint = watchFailureHint(error);
        log.warn('pool watch failed; restarting', { retryInMs, error: describeError(error), ...(hint ? { hint } : {}) });
      },
      onRestored: () => {
        failing.delete(informer);
        log.info('pool watch restored');
        queue?.retryAllNow();
        cache.allKeys().forEach(enqueue);
      },
      onCallbackError: (error) => log.error('pool watch restart handling failed', { error: describeError(error) }),
    });
  }
  await Promise.all(informers.map((i) => i.start()));

  // A safety net only: each pool already comes back at its own deadline, at the latest after resyncMs.
  const resync = setInterval(() => cache.allKeys().forEach(enqueue), config.resyncMs);
  resync.unref();

  let elector: LeaderElector | undefined;
  if (config.leaderElect) {
    elector = new LeaderElector({
      coordination: kube.coordination,
      requestOptions: kube.options,
      namespace: config.leaseNamespace,
      name: config.leaseName,
      identity: config.identity,
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      logger: log,
      onStartedLeading: () => {
        metrics.isLeader.set(1);
        dispatching = true;
        queue?.resume();
        cache.allKeys().forEach(enqueue);
      },
      // Losing the Lease (the API server is unreachable, say) pauses dispatching; the replica stays a
      // candidate and resumes as soon as it holds the Lease again. It never exits, so it never crash-loops.
      onStoppedLeading: () => {
        metrics.isLeader.set(0);
        dispatching = false;
        queue?.pause();
      },
    });
    elector.start();
  } else {
    metrics.isLeader.set(1);
    cache.allKeys().forEach(enqueue);
  }
  databases.openDefault();
  sweeper.start();
  retention.start();

  let health: HealthServer | undefined;
  try {
    health = await startHealthServer({
      host: config.metricsHost,
      port: config.metricsPort,
      metrics,
      healthy: () => !stopped,
      ready: () => !stopped && listed.size === informers.length && failing.size === 0,
    });
  } catch (error) {
    stopped = true;
    await Promise.all(informers.map((i) => i.stop()));
    throw new Error(`could not serve metrics and health on ${config.metricsHost}:${config.metricsPort}: ${String(error)}`, {
      cause: error,
    });
  }
  if (!policyRestricts(config.tenancy)) {
    log.warn('no tenancy policy: any pool may invoke any function this controller can reach and claim any queue of the default database');
  }
  log.info('controller started', {
    namespaces: config.namespaces.length > 0 ? config.namespaces : 'all',
    leaderElection: config.leaderElect,
    metricsPort: health.port,
    identity: config.identity,
  });

  return {
    healthPort: health.port,
    metrics,
    isLeader: () => dispatching,
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(resync);
      await sweeper?.stop();
      await retention.stop();
      queue?.stop();
      await queue?.idle();
      await reconciler.close(STOP_FLUSH_MS);
      await events.flush(STOP_FLUSH_MS);
      await elector?.stop();
      await Promise.all(informers.map((i) => i.stop()));
      await databases.closeAll();
      await kube.close();
      invoker.close();
      await health?.close();
      log.info('controller stopped');
    },
  };
}

export function defaultIdentity(): string {
  return `${os.hostname()}-${process.pid}`;
}
