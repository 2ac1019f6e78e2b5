// The fault soak (issue 7): the real local stack under every fault at once, judged only from outside.
//
//   - its own kube-apiserver + etcd, its own Postgres, the local Lambda runtime running the journaling
//     worker in real processes, and the controller as its own process with leader election;
//   - tasks produced in bursts into several pools while Lambda duplicates, drops, throttles and crashes;
//   - the controller SIGKILLed and restarted every few seconds; Postgres frozen (SIGSTOP) for longer than
//     the heartbeat timeout; one pool's workers cut off from Postgres alone through a TCP proxy for longer
//     than the heartbeat timeout; kube-apiserver frozen.
//
// The verdict counts violations from the workers' own journal, the runtime's record of killed processes
// and the rows' own timestamps: tasks not done, executions of one task overlapping in time, instants at
// which a pool had more live invocations than its cap, tasks failed although their handler never failed,
// and wasted invocations.
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startControlPlane } from '../../dev/src/control-plane.ts';
import { installCrd } from '../../dev/src/crd.ts';
import { startLambdaRuntime } from '../../dev/src/lambda-runtime/index.ts';
import { startPostgres } from '../../dev/src/postgres.ts';
import { startTcpProxy } from '../../dev/src/tcp-proxy.ts';
import { loadKubeConfig } from '../../src/controller/kube.ts';
import { createDb } from '../../src/store/db.ts';
import { migrate } from '../../src/store/migrate.ts';
import { startControllerProcess, type ControllerProcess } from '../../test/support/controller-process.ts';
import { executions, overlappingExecutions, readJournal, type Execution } from '../../test/support/journal.ts';

/** The controller's --first-rows in the soak (see startOne). */
const SOAK_FIRST_ROWS = 2;
const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const WORKER = path.join(here, '..', '..', 'test', 'fixtures', 'functions', 'file-journal-worker.ts');
const NS = 'soak';

export interface FaultWindow {
  atMs: number;
  forMs: number;
}

export interface SoakConfig {
  name: string;
  pools: number;
  tasksPerPool: number;
  maxConcurrency: number;
  tasksPerInvocation: number;
  heartbeatTimeoutSeconds: number;
  startTimeoutSeconds: number;
  taskMs: { min: number; max: number };
  /** Tasks are produced in bursts, every second, over this long. */
  produceOverMs: number;
  faults: {
    duplicateRate: number;
    dropRate: number;
    throttleRate: number;
    crashRate: number;
    controllerKillEveryMs: number;
    postgresFreeze: FaultWindow;
    /** The last pool's workers reach Postgres through a proxy that partitions them. */
    workerPartition: FaultWindow;
    apiServerFreeze: FaultWindow;
  };
  /** Give up waiting for the work after this long. */
  deadlineMs: number;
  /** Seeds the Lambda runtime's fault decisions; a random one when absent (it is in the report). */
  seed?: number;
}

export const FULL_SOAK: SoakConfig = {
  name: 'full',
  pools: 3,
  tasksPerPool: 1_000,
  maxConcurrency: 8,
  tasksPerInvocation: 3,
  heartbeatTimeoutSeconds: 8,
  startTimeoutSeconds: 30,
  taskMs: { min: 50, max: 400 },
  produceOverMs: 120_000,
  faults: {
    duplicateRate: 0.05,
    dropRate: 0.01,
    throttleRate: 0.05,
    crashRate: 0.02,
    controllerKillEveryMs: 20_000,
    postgresFreeze: { atMs: 15_000, forMs: 14_000 },
    workerPartition: { atMs: 45_000, forMs: 14_000 },
    apiServerFreeze: { atMs: 75_000, forMs: 60_000 },
  },
  deadlineMs: 900_000,
};

/** The soak inside `npm test`: every fault, less work and shorter windows (about 3 minutes). */
export const SMALL_SOAK: SoakConfig = {
  ...FULL_SOAK,
  name: 'small',
  tasksPerPool: 200,
  heartbeatTimeoutSeconds: 6,
  produceOverMs: 60_000,
  faults: {
    ...FULL_SOAK.faults,
    postgresFreeze: { atMs: 10_000, forMs: 10_000 },
    workerPartition: { atMs: 28_000, forMs: 10_000 },
    apiServerFreeze: { atMs: 45_000, forMs: 20_000 },
  },
  deadlineMs: 280_000,
};

export interface SoakReport {
  soak: string;
  seed: number;
  at: string;
  seconds: number;
  tasks: number;
  violations: {
    tasksNotDone: number;
    overlappingExecutions: number;
    instantsAboveCap: number;
    failedWithoutHandlerFailure: number;
    wastedInvocations: number;
  };
  observed: Record<string, number | string>;
}

export async function runSoak(config: SoakConfig, log: (line: string) => void = () => undefined): Promise<SoakReport> {
  const started = Date.now();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ltp-soak-'));
  // Postgres runs as its own user when we are root: it must be able to reach its data directory.
  await chmod(dir, 0o755);
  const cleanups: Array<() => Promise<void>> = [];
  const cleanup = async () => {
    for (const c of cleanups.reverse()) await c().catch((e: unknown) => log(`cleanup: ${String(e)}`));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    log('starting kube-apiserver, Postgres and the Lambda runtime');
    const cp = await startControlPlane({ dir: path.join(dir, 'kube') });
    cleanups.push(() => cp.stop());
    await installCrd(loadKubeConfig(cp.kubeconfigPath));
    const kubectl = (args: string[]) => run(cp.binaries.kubectl, ['--kubeconfig', cp.kubeconfigPath, ...args]);
    await kubectl(['create', 'namespace', NS]);
    await mkdir(path.join(dir, 'pg'), { mode: 0o755 });
    const pg = await startPostgres({ dataDir: path.join(dir, 'pg'), database: 'soak' });
    cleanups.push(() => pg.stop());
    await migrate(pg.url);
    const db = createDb(pg.url, { max: 4, applicationName: 'ltp-soak' });
    cleanups.push(() => db.end());
    const pgUrl = new URL(pg.url);
    const proxy = await startTcpProxy({ host: pgUrl.hostname, port: Number(pgUrl.port) });
    cleanups.push(() => proxy.close());
    const proxiedUrl = new URL(pg.url);
    proxiedUrl.host = `${proxy.host}:${proxy.port}`;

    const pools = Array.from({ length: config.pools }, (_, i) => ({
      name: `soak-${i}`,
      journal: path.join(dir, `journal-${i}.jsonl`),
      databaseUrl: i === config.pools - 1 ? proxiedUrl.toString() : pg.url,
    }));
    const seed = config.seed ?? Math.floor(Math.random() * 2 ** 32);
    const lambda = await startLambdaRuntime({
      seed,
      concurrencyLimit: 64,
      functions: pools.map((p) => ({
        name: p.name,
        handler: WORKER,
        timeoutSeconds: 60,
        environment: { DATABASE_URL: p.databaseUrl, JOURNAL_FILE: p.journal, MIN_TIME_TO_START_TASK_MS: '1000', LTP_LOG_LEVEL: 'error' },
        async: {
          startDelayMs: { min: 200, max: 1_500 },
          maximumRetryAttempts: 2,
          retryDelaysMs: [1_000, 2_000],
          maximumEventAgeSeconds: 600,
          duplicateRate: config.faults.duplicateRate,
          dropRate: config.faults.dropRate,
          throttleRate: config.faults.throttleRate,
          crashRate: config.faults.crashRate,
          crashAfterMs: { min: 50, max: 1_500 },
        },
      })),
    });
    cleanups.push(() => lambda.stop());

    for (const p of pools) {
      const manifest = {
        apiVersion: 'lambda.taskpool.io/v1alpha1',
        kind: 'LambdaTaskPool',
        metadata: { name: p.name, namespace: NS },
        spec: {
          function: { name: p.name },
          queue: p.name,
          maxConcurrency: config.maxConcurrency,
          tasksPerInvocation: config.tasksPerInvocation,
          heartbeatTimeoutSeconds: config.heartbeatTimeoutSeconds,
          startTimeoutSeconds: config.startTimeoutSeconds,
          // Crashes and fences use attempts; the soak's handler itself never fails, so no task may end failed.
          maxTaskAttempts: 20,
          retry: { initialDelaySeconds: 1, maxDelaySeconds: 5 },
        },
      };
      const child = execFile(cp.binaries.kubectl, ['--kubeconfig', cp.kubeconfigPath, 'apply', '-f', '-']);
      child.stdin?.end(JSON.stringify(manifest));
      await new Promise((resolve) => child.on('exit', resolve));
    }

    // The controller, killed and restarted on a schedule. One identity, like a Pod's name across restarts.
    let controller: ControllerProcess | undefined;
    let kills = 0;
    const startOne = async () => {
      controller = await startControllerProcess(
        {
          kubeconfig: cp.kubeconfigPath,
          databaseUrl: pg.url,
          lambdaEndpoint: lambda.endpoint,
          namespaces: [NS],
          leaderElect: { leaseNamespace: NS, identity: 'soak-controller' },
          logLevel: 'warn',
          // A pass of more than 4 new rows commits 2 first and inserts the rest while they are invoked
          // (first-rows.ts; 128 by default, which a pool capped at 8 never reaches): the split, and the
          // session locks it holds until the rest is committed, under every fault here.
          extraArgs: ['--first-rows', String(SOAK_FIRST_ROWS)],
        },
        120_000,
      );
    };
    await startOne();
    cleanups.push(async () => controller?.stop());

    const t0 = Date.now();
    const at = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, t0 + ms - Date.now())));
    let stopFaults = false;
    const faults: Array<Promise<void>> = [];
    const windowed = (name: string, w: FaultWindow, on: () => void, off: () => void) =>
      faults.push(
        (async () => {
          await at(w.atMs);
          if (stopFaults) return;
          log(`fault: ${name} for ${w.forMs / 1000} s`);
          on();
          await at(w.atMs + w.forMs);
          off();
          log(`fault over: ${name}`);
        })(),
      );
    windowed(
      'Postgres frozen',
      config.faults.postgresFreeze,
      () => pg.freeze(),
      () => pg.thaw(),
    );
    windowed(
      `${pools.at(-1)?.name} workers cut off from Postgres`,
      config.faults.workerPartition,
      () => proxy.partition(),
      () => proxy.heal('resume'),
    );
    windowed(
      'kube-apiserver frozen',
      config.faults.apiServerFreeze,
      () => cp.freezeApiServer(),
      () => cp.thawApiServer(),
    );
    cleanups.push(async () => {
      pg.thaw();
      cp.thawApiServer();
      proxy.heal('reset');
    });

    const total = config.pools * config.tasksPerPool;
    const ticks = Math.max(1, Math.floor(config.produceOverMs / 1_000));
    const producer = (async () => {
      let produced = 0;
      for (let tick = 0; tick < ticks; tick += 1) {
        await at(tick * 1_000);
        const each = Math.floor((config.tasksPerPool * (tick + 1)) / ticks) - Math.floor((config.tasksPerPool * tick) / ticks);
        for (const p of pools) {
          await db
            .query(
              `INSERT INTO ltp.tasks (queue, payload)
             SELECT $1, jsonb_build_object('ms', $2 + floor(random() * $3)::int) FROM generate_series(1, $4)`,
              [p.name, config.taskMs.min, config.taskMs.max - config.taskMs.min, each],
            )
            .catch(async (error: unknown) => {
              // Postgres may be frozen: the producer waits like any producer would, then inserts.
              log(`producer: ${String(error)}`);
            });
        }
        produced += each * pools.length;
      }
      log(`produced ${produced} tasks`);
    })();

    const killer = (async () => {
      for (;;) {
        await new Promise((resolve) => setTimeout(resolve, config.faults.controllerKillEveryMs));
        if (stopFaults) return;
        await controller?.kill();
        kills += 1;
        log(`fault: controller SIGKILLed (${kills})`);
        await startOne().catch((error: unknown) => log(`controller restart failed: ${String(error)}`));
      }
    })();

    await producer;
    await Promise.all(faults);
    log('waiting for the work to finish');
    const deadline = t0 + config.deadlineMs;
    for (;;) {
      const left = (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ltp.tasks WHERE status <> 'done'`)).rows[0]?.n ?? 0;
      const live =
        (
          await db.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM ltp.invocations WHERE status IN ('created','pending','ready','running')`,
          )
        ).rows[0]?.n ?? 0;
      if ((left === 0 && live === 0) || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
    stopFaults = true;
    const seconds = Math.round((Date.now() - t0) / 100) / 10;
    await killer.catch(() => undefined);
    await controller?.stop();
    await new Promise((resolve) => setTimeout(resolve, 500));

    // The verdict, from outside.
    const journals = (await Promise.all(pools.map((p) => readJournal(p.journal)))).flat();
    const deliveries = pools.flatMap((p) => lambda.events(p.name).flatMap((e) => e.deliveries));
    const runs = executions(journals, deliveries);
    const overlaps = overlappingExecutions(runs);
    const threw = new Set(runs.filter((r) => r.outcome === 'threw').map((r) => r.task));
    const tasks = (await db.query<{ id: number; status: string }>(`SELECT id, status FROM ltp.tasks`)).rows;
    const aboveCap = await db.query<{ n: number; peak: number }>(
      `WITH spans AS (
         SELECT pool_name AS pool, created_at AS t, 1 AS d FROM ltp.invocations
         UNION ALL SELECT pool_name, finished_at, -1 FROM ltp.invocations WHERE finished_at IS NOT NULL),
       live AS (SELECT pool, sum(d) OVER (PARTITION BY pool ORDER BY t, d ROWS UNBOUNDED PRECEDING) AS n FROM spans)
       SELECT count(*) FILTER (WHERE n > $1)::int AS n, COALESCE(max(n), 0)::int AS peak FROM live`,
      [config.maxConcurrency],
    );
    const wasted = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ltp.invocations WHERE status IN ('succeeded', 'failed') AND ready_at IS NOT NULL AND tasks_started = 0`,
    );
    const byStatus = await db.query<{ status: string; n: number }>(
      `SELECT status::text || COALESCE('.' || error_code, '') AS status, count(*)::int AS n FROM ltp.invocations GROUP BY 1 ORDER BY 1`,
    );
    // Passes that started more than twice --first-rows rows, so committed their first rows before the rest
    // (their decisions), and those whose rows fall short of what they decided (the rest failed to go in).
    const split = await db.query<{ passes: number; short: number }>(
      `SELECT count(*)::int AS passes, count(*) FILTER (WHERE rows < decided)::int AS short
         FROM (SELECT (d.outcome->>'dispatched')::int AS decided,
                      (SELECT count(*) FROM ltp.invocations i WHERE i.decision_id = d.id) AS rows
                 FROM ltp.decisions d WHERE (d.outcome->>'dispatched')::int > $1) s`,
      [2 * SOAK_FIRST_ROWS],
    );
    const stats = pools.map((p) => lambda.stats(p.name));
    const sum = (pick: (s: (typeof stats)[number]) => number) => stats.reduce((a, s) => a + pick(s), 0);
    const perTask = new Map<number, Execution[]>();
    for (const r of runs) perTask.set(r.task, [...(perTask.get(r.task) ?? []), r]);

    return {
      soak: config.name,
      seed,
      at: new Date().toISOString(),
      seconds,
      tasks: total,
      violations: {
        tasksNotDone: tasks.filter((t) => t.status !== 'done').length + Math.max(0, total - tasks.length),
        overlappingExecutions: overlaps.length,
        instantsAboveCap: aboveCap.rows[0]?.n ?? 0,
        failedWithoutHandlerFailure: tasks.filter((t) => t.status === 'failed' && !threw.has(t.id)).length,
        wastedInvocations: wasted.rows[0]?.n ?? 0,
      },
      observed: {
        peakLiveInvocations: aboveCap.rows[0]?.peak ?? 0,
        cap: config.maxConcurrency,
        executions: runs.length,
        executionsAborted: runs.filter((r) => r.outcome === 'aborted').length,
        executionsKilled: runs.filter((r) => r.outcome === 'killed').length,
        tasksRunMoreThanOnce: [...perTask.values()].filter((l) => l.length > 1).length,
        tasksSucceededMoreThanOnce: [...perTask.values()].filter((l) => l.filter((r) => r.outcome === 'ok').length > 1).length,
        controllerKills: kills,
        passesSplit: split.rows[0]?.passes ?? 0,
        passesSplitShort: split.rows[0]?.short ?? 0,
        ...Object.fromEntries(byStatus.rows.map((r) => [`invocations.${r.status}`, r.n])),
        lambdaAccepted: sum((s) => s.accepted),
        lambdaThrottled: sum((s) => s.throttled),
        lambdaDuplicates: sum((s) => s.duplicates),
        lambdaDropped: sum((s) => s.dropped.random),
        lambdaCrashed: sum((s) => s.crashed),
        lambdaRetries: sum((s) => s.retries),
        wallSeconds: Math.round((Date.now() - started) / 1000),
      },
    };
  } finally {
    await cleanup();
  }
}
