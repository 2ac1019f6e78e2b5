// npm run bench:strategies (issue 11): one workload, dispatched by the product's ledger and by three other
// strategies, side by side in one run on the real local stack: Postgres, kube-apiserver, the local Lambda
// runtime reached by the AWS SDK over HTTP, and the controller as its own process for `ledger`.
//
// Each dispatcher of a profile has its own worker function, queue and journal; the benchmark dispatchers
// keep their rows in a database of their own, so the controller never sees them. By default the four run
// one after another (STRATEGIES_CONCURRENT=1 runs them at the same time: on a 2-core machine the three that
// overshoot then start hundreds of function processes at once and starve everything else, the ledger and
// Postgres included). Every figure comes from the workers' own journal; the rows and the runtime's counters
// are kept beside them as a cross-check.
//
// Writes bench/results/strategies.json, docs/strategies.svg and the table in docs/strategies.md.
// Knobs: STRATEGIES_SEED, STRATEGIES_TICK_MS (2000), STRATEGIES_LAG_MS (60000), STRATEGIES_PROFILES (d5,d30),
// STRATEGIES_CONCURRENT, STRATEGIES_LAMBDA_CONCURRENCY (60).
import { mkdir, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { GROUP, PLURAL, VERSION } from '../../src/api/types.ts';
import { loadKubeConfig } from '../../src/controller/kube.ts';
import { createInvoker, type Invoker } from '../../src/lambda/invoker.ts';
import { silentLogger } from '../../src/ops/logger.ts';
import { createDb, type Db } from '../../src/store/db.ts';
import { migrate } from '../../src/store/migrate.ts';
import { startLocalStack, type LocalStack } from '../../dev/src/stack.ts';
import { startControllerProcess } from '../../test/support/controller-process.ts';
import { chartSpec, renderSvg } from './chart.ts';
import { DISPATCHERS, isBenchDispatcher, type Dispatcher } from './dispatchers.ts';
import { readJournal } from './journal.ts';
import { perfectScore } from './perfect.ts';
import { markdownTables, replaceTable, type StrategiesReport, type StrategyRun } from './report.ts';
import { deliveries, overlapSeries, runFigures } from './stats.ts';
import { runTickDispatcher, type TickDispatcherReport } from './tick-dispatcher.ts';
import { burstPlan, idealMakespan, PROFILES, type Profile } from './workload.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.join(here, '..', '..');
const WORKER = path.join(here, 'worker.ts');
const NAMESPACE = 'strategies';
const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const SEED = env('STRATEGIES_SEED', 11);
const TICK_MS = env('STRATEGIES_TICK_MS', 2_000);
const LAG_MS = env('STRATEGIES_LAG_MS', 60_000);
const SERIAL = process.env.STRATEGIES_CONCURRENT !== '1';
/**
 * The runtime's account concurrency: what the machine can host as processes at once. Above it, events wait
 * in the runtime's queue as throttled async events do in Lambda. It is far above the cap; the report says
 * whether a lane ever reached it (then that lane's peak is this limit, not its own).
 */
const LAMBDA_CONCURRENCY = env('STRATEGIES_LAMBDA_CONCURRENCY', 60);
const ONLY = (process.env.STRATEGIES_PROFILES ?? '').split(',').filter((p) => p !== '');
/** Give up on one group of runs after this long. */
const DEADLINE_MS = env('STRATEGIES_DEADLINE_MS', 20 * 60_000);

const log = (line: string) => process.stderr.write(`strategies: ${line}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs: number, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`strategy benchmark: ${what} did not happen within ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}

interface Lane {
  profile: Profile;
  dispatcher: Dispatcher;
  /** Function name, queue name and (for ledger) pool name. */
  name: string;
  db: Db;
  journal: string;
}

interface Setup {
  stack: LocalStack;
  ledgerDb: Db;
  benchDb: Db;
  benchUrl: string;
  invoker: Invoker;
  stateDir: string;
}

async function count(db: Db, sql: string, values: unknown[]): Promise<number> {
  return (await db.query<{ n: number }>(sql, values)).rows[0]?.n ?? 0;
}

/** Registers the lane's function: the journaling worker, the profile's start delays and duplicates, no async retries. */
function registerFunction(setup: Setup, lane: Lane): void {
  setup.stack.lambda.register({
    name: lane.name,
    handler: `${WORKER}#handler`,
    timeoutSeconds: 120,
    environment: {
      DATABASE_URL: lane.dispatcher === 'ledger' ? setup.stack.databaseUrl : setup.benchUrl,
      JOURNAL_FILE: lane.journal,
      LTP_LOG_LEVEL: 'error',
    },
    async: { startDelayMs: lane.profile.startDelayMs, duplicateRate: lane.profile.duplicateRate, maximumRetryAttempts: 0 },
  });
}

async function applyLedgerPool(setup: Setup, lane: Lane): Promise<void> {
  const api = loadKubeConfig(setup.stack.kubeconfigPath).makeApiClient(CustomObjectsApi);
  await api.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    plural: PLURAL,
    namespace: NAMESPACE,
    body: {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'LambdaTaskPool',
      metadata: { name: lane.name },
      spec: {
        function: { name: lane.name },
        queue: lane.name,
        maxConcurrency: lane.profile.cap,
        tasksPerInvocation: lane.profile.tasksPerInvocation,
      },
    },
  });
  await waitFor(
    `pool ${lane.name} Ready`,
    async () => {
      const pool = (await api.getNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        plural: PLURAL,
        namespace: NAMESPACE,
        name: lane.name,
      })) as {
        status?: { conditions?: Array<{ type: string; status: string }> };
      };
      return pool.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
    },
    60_000,
  );
}

/** Starts `n` warm processes of a function (as a busy function has), then empties its journal. */
async function warm(setup: Setup, lane: Lane, n: number): Promise<void> {
  const client = new LambdaClient({
    endpoint: setup.stack.lambda.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
    maxAttempts: 1,
  });
  try {
    // An invocation id with no row: the worker skips it and touches nothing.
    await Promise.all(
      Array.from({ length: n }, () =>
        client.send(new InvokeCommand({ FunctionName: lane.name, Payload: JSON.stringify({ invocationId: '999999999999' }) })),
      ),
    );
  } finally {
    client.destroy();
  }
  await truncate(lane.journal).catch(() => undefined);
}

/** Inserts the profile's bursts into the lane's queue on schedule, as a producer's plain INSERTs. */
function produce(lane: Lane, t0: number): { first: Promise<void>; all: Promise<void> } {
  const insert = async (taskMs: number[], atMs: number) => {
    await sleep(Math.max(0, t0 + atMs - Date.now()));
    await lane.db.query(`INSERT INTO ltp.tasks (queue, payload) SELECT $1, jsonb_build_object('ms', ms) FROM unnest($2::int[]) AS ms`, [
      lane.name,
      taskMs,
    ]);
  };
  const [head, ...rest] = burstPlan(lane.profile, SEED);
  const first = head ? insert(head.taskMs, head.atMs) : Promise.resolve();
  const all = (async () => {
    await first;
    for (const burst of rest) await insert(burst.taskMs, burst.atMs);
  })();
  return { first, all };
}

/** Every task done, then nothing of the lane left in flight: no live row, nothing queued or running in Lambda. */
async function settle(setup: Setup, lane: Lane, produced: Promise<void>, deadline: number): Promise<void> {
  await produced;
  const left = () => count(lane.db, `SELECT count(*)::int AS n FROM ltp.tasks WHERE queue = $1 AND status <> 'done'`, [lane.name]);
  await waitFor(`${lane.name}: every task done`, async () => (await left()) === 0, deadline - Date.now(), 200);
  await waitFor(
    `${lane.name}: nothing in flight`,
    async () => {
      const live = await count(
        lane.db,
        `SELECT count(*)::int AS n FROM ltp.invocations WHERE queue = $1 AND status IN ('created', 'pending', 'ready', 'running')`,
        [lane.name],
      );
      const lambda = setup.stack.lambda.stats(lane.name);
      return live === 0 && lambda.queued === 0 && lambda.running === 0;
    },
    Math.max(60_000, deadline - Date.now()),
    500,
  );
}

async function runLane(setup: Setup, lane: Lane, t0: number): Promise<TickDispatcherReport | undefined> {
  const deadline = t0 + DEADLINE_MS;
  const produced = produce(lane, t0);
  const dispatcher = lane.dispatcher;
  if (!isBenchDispatcher(dispatcher)) {
    await settle(setup, lane, produced.all, deadline);
    return undefined;
  }
  let producing = true;
  void produced.all.finally(() => (producing = false));
  // The first tick comes right after the first burst, as the ledger's first pass does.
  await produced.first;
  const ticks = runTickDispatcher({
    dispatcher,
    db: lane.db,
    invoker: setup.invoker,
    queue: lane.name,
    functionName: lane.name,
    cap: lane.profile.cap,
    tasksPerInvocation: lane.profile.tasksPerInvocation,
    tickMs: TICK_MS,
    lagMs: LAG_MS,
    log,
    finished: async () =>
      !producing &&
      (await count(lane.db, `SELECT count(*)::int AS n FROM ltp.tasks WHERE queue = $1 AND status <> 'done'`, [lane.name])) === 0,
  });
  const [report] = await Promise.all([ticks, settle(setup, lane, produced.all, deadline)]);
  return report;
}

/** The runtime's counters of a lane's function, less what the warm-up counted. */
type LambdaCounts = { accepted: number; duplicates: number; coldStarts: number };

function lambdaCounts(setup: Setup, lane: Lane): LambdaCounts {
  const stats = setup.stack.lambda.stats(lane.name);
  return { accepted: stats.accepted, duplicates: stats.duplicates, coldStarts: stats.coldStarts };
}

const loadAverage = () => os.loadavg().map((n) => Math.round(n * 100) / 100);

async function collect(
  setup: Setup,
  lane: Lane,
  tick: TickDispatcherReport | undefined,
  before: LambdaCounts,
  load: StrategyRun['load'],
): Promise<StrategyRun> {
  const lines = await readJournal(lane.journal);
  const tasks = (
    await lane.db.query<{ id: number; createdAt: number }>(
      `SELECT id::int AS id, (extract(epoch FROM created_at) * 1000)::float8 AS "createdAt" FROM ltp.tasks WHERE queue = $1`,
      [lane.name],
    )
  ).rows;
  const rows = await lane.db.query<{ status: string; n: number; unstarted: number }>(
    `SELECT status::text AS status, count(*)::int AS n, count(*) FILTER (WHERE tasks_started = 0)::int AS unstarted
       FROM ltp.invocations WHERE queue = $1 GROUP BY status`,
    [lane.name],
  );
  const invocations = rows.rows.reduce((sum, r) => sum + r.n, 0);
  // Every row is finished once the lane settled; the database's clock times both ends.
  const invocationSpans = (
    await lane.db.query<{ start: number; end: number }>(
      `SELECT (extract(epoch FROM created_at) * 1000)::float8 AS start, (extract(epoch FROM coalesce(finished_at, now())) * 1000)::float8 AS "end"
         FROM ltp.invocations WHERE queue = $1`,
      [lane.name],
    )
  ).rows;
  const ideal = idealMakespan(lane.profile);
  const figures = runFigures({ lines, tasks, invocations, invocationSpans, cap: lane.profile.cap, idealSeconds: ideal.seconds });
  const from = Math.min(...tasks.map((t) => t.createdAt));
  const claimed = deliveries(lines).filter((d) => d.claimed);
  const to = Math.max(from, ...claimed.map((d) => d.end));
  const lambda = lambdaCounts(setup, lane);
  return {
    profile: lane.profile.id,
    dispatcher: lane.dispatcher,
    figures,
    timeline: overlapSeries(claimed, { from, to, stepMs: 1_000 }),
    crossCheck: {
      lambdaAccepted: lambda.accepted - before.accepted,
      lambdaDuplicates: lambda.duplicates - before.duplicates,
      lambdaColdStarts: lambda.coldStarts - before.coldStarts,
      lambdaMaxConcurrent: setup.stack.lambda.stats(lane.name).maxConcurrent,
      rowsWithoutStartedTask: rows.rows.reduce((sum, r) => sum + r.unstarted, 0),
      rowsByStatus: Object.fromEntries(rows.rows.map((r) => [r.status, r.n])),
    },
    load,
    ...(tick ? { ticks: tick.ticks.length, rejected: tick.rejected } : {}),
  };
}

/** Runs lanes at the same moment (t0 shared) and returns their figures. */
async function runGroup(setup: Setup, lanes: Lane[]): Promise<StrategyRun[]> {
  log(`running ${lanes.map((l) => l.name).join(', ')}`);
  const before = lanes.map((lane) => lambdaCounts(setup, lane));
  const t0 = Date.now() + 500;
  const loadBefore = loadAverage();
  const reports = await Promise.all(lanes.map((lane) => runLane(setup, lane, t0)));
  const load = { before: loadBefore, after: loadAverage() };
  const runs: StrategyRun[] = [];
  for (const [i, lane] of lanes.entries()) {
    const run = await collect(setup, lane, reports[i], before[i] ?? { accepted: 0, duplicates: 0, coldStarts: 0 }, load);
    const f = run.figures;
    log(
      `${lane.name}: ${f.invocations} invocations, ${f.wasted} wasted, peak in flight ${f.peakInFlight}, running ${f.peakLive} (cap ${f.cap}), makespan ${f.makespanSeconds.toFixed(1)} s ` +
        `(ideal ${f.idealSeconds.toFixed(1)}), wait p50 ${f.waitP50Seconds.toFixed(1)} s p99 ${f.waitP99Seconds.toFixed(1)} s, ` +
        `load ${load.before.join('/')} -> ${load.after.join('/')}`,
    );
    runs.push(run);
  }
  return runs;
}

async function setUp(): Promise<Setup> {
  const stateDir = await mkdtemp(path.join(os.tmpdir(), 'ltp-strategies-'));
  const lambdaConfig = path.join(stateDir, 'lambda.yaml');
  // The account's concurrency is far above every cap: the dispatchers alone decide how many run, up to what
  // the machine can host.
  await writeFile(lambdaConfig, `seed: ${SEED}\nconcurrencyLimit: ${LAMBDA_CONCURRENCY}\nfunctions: {}\n`);
  log('starting Postgres, kube-apiserver and the Lambda runtime');
  const stack = await startLocalStack({ stateDir, lambdaConfigFile: lambdaConfig, logger: silentLogger(), controller: false });
  const ledgerDb = createDb(stack.databaseUrl, { max: 8, applicationName: 'ltp-strategies' });
  await ledgerDb.query('CREATE DATABASE strategies');
  const bench = new URL(stack.databaseUrl);
  bench.pathname = '/strategies';
  const benchUrl = bench.toString();
  await migrate(benchUrl);
  const benchDb = createDb(benchUrl, { max: 8, applicationName: 'ltp-strategies' });
  const invoker = createInvoker({
    defaultRegion: 'us-east-1',
    endpoint: stack.lambda.endpoint,
    credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
  });
  await loadKubeConfig(stack.kubeconfigPath)
    .makeApiClient(CoreV1Api)
    .createNamespace({ body: { metadata: { name: NAMESPACE } } });
  return { stack, ledgerDb, benchDb, benchUrl, invoker, stateDir };
}

export async function runStrategies(): Promise<StrategiesReport> {
  const started = Date.now();
  const setup = await setUp();
  const controller = await startControllerProcess(
    {
      kubeconfig: setup.stack.kubeconfigPath,
      databaseUrl: setup.stack.databaseUrl,
      lambdaEndpoint: setup.stack.lambda.endpoint,
      namespaces: [NAMESPACE],
      logLevel: 'warn',
    },
    120_000,
  );
  try {
    const profiles = PROFILES.filter((p) => ONLY.length === 0 || ONLY.includes(p.id));
    const runs: StrategyRun[] = [];
    for (const profile of profiles) {
      const lanes: Lane[] = DISPATCHERS.map((dispatcher) => ({
        profile,
        dispatcher,
        name: `${dispatcher}-${profile.id}`,
        db: dispatcher === 'ledger' ? setup.ledgerDb : setup.benchDb,
        journal: path.join(setup.stateDir, `${dispatcher}-${profile.id}.jsonl`),
      }));
      for (const lane of lanes) registerFunction(setup, lane);
      const ledger = lanes.find((l) => l.dispatcher === 'ledger');
      if (ledger) await applyLedgerPool(setup, ledger);
      log(`profile ${profile.label}: ideal makespan ${idealMakespan(profile).seconds.toFixed(1)} s`);
      const groups = SERIAL ? lanes.map((lane) => [lane]) : [lanes];
      for (const group of groups) {
        // Warmed right before its run (idle processes expire). One function at a time: many cold starts at
        // once on a small machine would pass the init timeout.
        for (const lane of group) await warm(setup, lane, profile.cap);
        runs.push(...(await runGroup(setup, group)));
      }
    }
    return {
      at: new Date().toISOString(),
      machine: {
        cpus: os.cpus().length,
        model: os.cpus()[0]?.model,
        memoryGiB: Math.round(os.totalmem() / 2 ** 30),
        node: process.version,
      },
      lambdaConcurrencyLimit: LAMBDA_CONCURRENCY,
      seed: SEED,
      tickMs: TICK_MS,
      lagMs: LAG_MS,
      concurrent: !SERIAL,
      profiles: profiles.map((p) => ({ ...p, ideal: idealMakespan(p), perfect: perfectScore(p) })),
      runs,
      wallSeconds: Math.round((Date.now() - started) / 1000),
    };
  } finally {
    if (!controller.alive()) log(`the controller had exited: ${controller.output().slice(-2000)}`);
    await controller.stop();
    setup.invoker.close();
    await setup.benchDb.end();
    await setup.ledgerDb.end();
    await setup.stack.stop();
    await rm(setup.stateDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const report = await runStrategies();
  const results = path.join(REPO, 'bench', 'results', 'strategies.json');
  await mkdir(path.dirname(results), { recursive: true });
  await writeFile(results, JSON.stringify(report, null, 2) + '\n');
  const svg = path.join(REPO, 'docs', 'strategies.svg');
  await writeFile(svg, await renderSvg(chartSpec(report)));
  const doc = path.join(REPO, 'docs', 'strategies.md');
  const table = markdownTables(report);
  await writeFile(doc, replaceTable(await readFile(doc, 'utf8'), table));
  console.log(table);
  console.log(`written: ${[results, svg, doc].map((f) => path.relative(process.cwd(), f)).join(', ')}`);
}

await main();
process.exit(0);
