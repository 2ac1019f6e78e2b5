// The stack every security suite shares, started once per test run: the shared kube-apiserver and Postgres,
// a fresh default database, the local Lambda runtime running the e2e worker under several function names,
// and the controller as its own process, as it runs in a cluster. The controller runs under a restrictive
// tenancy policy, taken from what `helm template` renders for tenancy values (so the chart's rendering and
// the controller's enforcement are tested together), and with a distinctive AWS secret access key in its
// environment, which no log line, Event, status or metric may ever show (no-secret-visible.test.ts).
//
// A healthy pool (namespace `healthy`, queue `healthy`) runs throughout: each group of hostile cases checks
// that it kept dispatching and finishing its tasks, exactly once each, while the group ran (HealthyProbe).
import { writeFile, mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadAllYaml } from '@kubernetes/client-node';
import { expect } from 'chai';
import pg from 'pg';
import { startLambdaRuntime, type FunctionRegistration, type LambdaRuntime } from '../../dev/src/lambda-runtime/index.ts';
import { parseTenancyPolicy, type TenancyPolicy } from '../../src/api/tenancy.ts';
import { createLogger } from '../../src/ops/logger.ts';
import { enqueueTasks } from '../../src/store/task-store.ts';
import { startControllerProcess, type ControllerProcess } from '../support/controller-process.ts';
import { helm, kubectl, sharedControlPlane } from '../support/kube.ts';
import { freshDatabase, sharedPostgres, type TestDatabase } from '../support/postgres.ts';
import { applyPool, condition, E2E_WORKER, eventually, getPool, type PoolManifest } from '../support/system.ts';
import { registerTeardown } from '../support/teardown.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CHART = path.join(ROOT, 'charts', 'lambda-task-pool');

/** The AWS secret access key in the controller's environment: it must never show anywhere. */
export const AWS_SECRET_KEY = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECURITYTESTKEY';
export const AWS_ACCESS_KEY = 'AKIASECURITYTEST0001';

const run = process.pid;
export const NS = {
  /** Team A: may invoke team-a-* and claim team-a/* and shared/* in the default database. */
  a: `sec-a-${run}`,
  /** Team B: may invoke team-b-* and *-team-b and claim team-b/* and shared/* in the default database. */
  b: `sec-b-${run}`,
  /** The healthy pool's namespace: sec-healthy, queues healthy and healthy-*. */
  healthy: `sec-h-${run}`,
  /** Watched, but not listed in the policy: tenancy.default (nothing at all) applies. */
  outsider: `sec-x-${run}`,
} as const;

export const HEALTHY = { namespace: NS.healthy, name: 'healthy', queue: 'healthy', functionName: 'sec-healthy' } as const;

/** The tenancy values given to the chart; the controller runs with what the chart renders from them. */
export function tenancyValues() {
  return {
    default: { functions: [] as string[], queues: [] as string[] },
    namespaces: {
      [NS.a]: { functions: ['team-a-*'], queues: ['team-a/*', 'shared/*'] },
      // A suffix pattern too: TEN-03 writes an ARN that ends the way it asks.
      [NS.b]: { functions: ['team-b-*', '*-team-b'], queues: ['team-b/*', 'shared/*'] },
      [NS.healthy]: { functions: ['sec-healthy'], queues: ['healthy', 'healthy-*'] },
    },
  };
}

export interface SecurityStack {
  kubeconfig: string;
  /** The controller's default database. */
  database: TestDatabase;
  /** The superuser URL of the shared Postgres server (another database of it: replace the path). */
  serverUrl: string;
  lambda: LambdaRuntime;
  controller: ControllerProcess;
  /** The TENANCY_POLICY value `helm template` rendered, as the controller received it. */
  renderedPolicy: string;
  policy: TenancyPolicy;
  /** Every line the controller process wrote, from its start. */
  controllerOutput(): string;
  metricsUrl: string;
}

let started: Promise<SecurityStack> | undefined;

export function securityStack(): Promise<SecurityStack> {
  started ??= start();
  return started;
}

/** The e2e worker under another function name, writing to the given database. */
export function workerFunction(name: string, databaseUrl: string, extra: Partial<FunctionRegistration> = {}): FunctionRegistration {
  return {
    name,
    handler: E2E_WORKER,
    timeoutSeconds: 60,
    environment: { DATABASE_URL: databaseUrl, LTP_LOG_LEVEL: 'info' },
    ...extra,
    async: { startDelayMs: { min: 50, max: 300 }, retryDelaysMs: [500, 1_000], ...extra.async },
  };
}

/** What `helm template` renders into the controller's TENANCY_POLICY for the given tenancy values. */
export async function renderTenancyPolicy(tenancy: unknown): Promise<{ env: string; notes?: string }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ltp-sec-values-'));
  const values = path.join(dir, 'values.json');
  await writeFile(values, JSON.stringify({ tenancy }));
  const rendered = await helm(['template', 'sec', CHART, '--namespace', 'ltp-system', '-f', values]);
  expect(rendered.code, `helm template failed: ${rendered.stderr}`).to.equal(0);
  const docs = loadAllYaml(rendered.stdout) as Array<{ kind?: string; spec?: unknown }>;
  const deployment = docs.find((d) => d?.kind === 'Deployment') as
    { spec: { template: { spec: { containers: Array<{ env?: Array<{ name: string; value?: string }> }> } } } } | undefined;
  const env = deployment?.spec.template.spec.containers[0]?.env?.find((e) => e.name === 'TENANCY_POLICY')?.value;
  if (env === undefined) throw new Error('helm template rendered no TENANCY_POLICY in the Deployment');
  return { env };
}

async function start(): Promise<SecurityStack> {
  const cp = await sharedControlPlane();
  const pgServer = await sharedPostgres();
  const database = await freshDatabase('sec');
  await database.db.query(
    'CREATE TABLE public.executions (task_id bigint NOT NULL, invocation_id bigint NOT NULL, at timestamptz NOT NULL DEFAULT now())',
  );
  const lambda = await startLambdaRuntime({
    seed: 11,
    concurrencyLimit: 50,
    logger: createLogger({ level: 'error', component: 'lambda-runtime' }),
    functions: [
      workerFunction(HEALTHY.functionName, database.url),
      workerFunction('team-a-worker', database.url),
      workerFunction('team-b-worker', database.url),
      // Registered, but no pool may invoke it under the policy: a refused pool must not reach it.
      workerFunction('team-a-billing', database.url),
      // A target for forged events: no pool uses it, so every event it sees is one of ours.
      workerFunction('sec-forge-target', database.url, { async: { maximumRetryAttempts: 0 } }),
      // Starts 8 s after the invoke: its rows stay pending long enough to forge deliveries for them.
      workerFunction('team-b-slow', database.url, { async: { startDelayMs: 8_000 } }),
    ],
  });
  for (const ns of Object.values(NS)) {
    const created = await kubectl(['create', 'namespace', ns]);
    if (created.code !== 0 && !created.stderr.includes('AlreadyExists')) throw new Error(`create namespace ${ns}: ${created.stderr}`);
  }

  const { env: renderedPolicy } = await renderTenancyPolicy(tenancyValues());
  const policyDir = await mkdtemp(path.join(os.tmpdir(), 'ltp-sec-policy-'));
  const policyFile = path.join(policyDir, 'tenancy.json');
  await writeFile(policyFile, renderedPolicy);

  const output: string[] = [];
  const controller = await startControllerProcess({
    kubeconfig: cp.kubeconfigPath,
    databaseUrl: database.url,
    lambdaEndpoint: lambda.endpoint,
    namespaces: Object.values(NS),
    logLevel: 'debug',
    onOutput: (chunk) => output.push(chunk),
    extraArgs: ['--tenancy-policy', `@${policyFile}`],
    env: { AWS_ACCESS_KEY_ID: AWS_ACCESS_KEY, AWS_SECRET_ACCESS_KEY: AWS_SECRET_KEY },
  });
  const stack: SecurityStack = {
    kubeconfig: cp.kubeconfigPath,
    database,
    serverUrl: pgServer.url,
    lambda,
    controller,
    renderedPolicy,
    policy: parseTenancyPolicy(renderedPolicy),
    controllerOutput: () => output.join(''),
    metricsUrl: `http://127.0.0.1:${controller.port}/metrics`,
  };
  registerTeardown(async () => {
    await controller.stop();
    // Pools keep their finalizer once the controller is gone: drop them so the namespaces can go.
    for (const ns of Object.values(NS)) {
      const pools = await kubectl(['get', 'ltp', '-n', ns, '-o', 'name']);
      for (const name of pools.stdout.split('\n').filter(Boolean)) {
        await kubectl(['patch', name, '-n', ns, '--type=merge', '-p', '{"metadata":{"finalizers":[]}}']);
      }
      await kubectl(['delete', 'namespace', ns, '--wait=false']);
    }
    await lambda.stop();
    await database.close();
  });

  await applyPool({ ...HEALTHY, maxConcurrency: 4, tasksPerInvocation: 2 });
  await eventually('the healthy pool to be Ready', async () => condition(await getPool(NS.healthy, 'healthy'), 'Ready')?.status === 'True');
  return stack;
}

/** Applies a pool; a manifest the API server refuses throws with its message. */
export async function pool(p: PoolManifest): Promise<void> {
  await applyPool(p);
}

/** Waits for the pool's Ready condition to have this reason, and returns the condition. */
export async function readyReason(namespace: string, name: string, reason: string, timeoutMs = 45_000) {
  return eventually(
    `${namespace}/${name} Ready reason ${reason}`,
    async () => {
      const ready = condition(await getPool(namespace, name), 'Ready');
      return ready?.reason === reason ? ready : undefined;
    },
    timeoutMs,
  );
}

/** Deletes pools and waits until they are gone (their finalizer handled by the controller). */
export async function deletePools(namespace: string, names: string[]): Promise<void> {
  if (names.length === 0) return;
  const result = await kubectl(['delete', 'ltp', ...names, '-n', namespace, '--timeout=60s', '--ignore-not-found']);
  expect(result.code, result.stderr).to.equal(0);
}

/**
 * Cleans up after a group: deletes its pools, and drops the finalizer of any still there after 15 s. A pool
 * whose database cannot be reached keeps its finalizer until it can (its invocations there must be ended),
 * which for a hostile Secret is never: removing the finalizer is what its owner would do.
 */
export async function removePools(namespace: string, names: string[]): Promise<void> {
  if (names.length === 0) return;
  await kubectl(['delete', 'ltp', ...names, '-n', namespace, '--wait=false', '--ignore-not-found']);
  const deadline = Date.now() + 15_000;
  let left = names;
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500));
    const listed = await kubectl(['get', 'ltp', '-n', namespace, '-o', 'jsonpath={.items[*].metadata.name}']);
    const present = new Set(listed.stdout.split(/\s+/).filter(Boolean));
    left = left.filter((n) => present.has(n));
  }
  for (const name of left) {
    await kubectl(['patch', 'ltp', name, '-n', namespace, '--type=merge', '-p', '{"metadata":{"finalizers":[]}}']);
  }
}

/**
 * Watches the healthy pool through a group of hostile cases: a task is enqueued every half second while
 * the group runs; at the end every one of them must be done, each run exactly once, and the controller
 * must be alive and healthy.
 */
export class HealthyProbe {
  private readonly ids: number[] = [];
  private timer: NodeJS.Timeout | undefined;
  private failure: unknown;

  constructor(private readonly stack: SecurityStack) {}

  start(): this {
    const tick = () => {
      enqueueTasks(this.stack.database.db, { queue: HEALTHY.queue, payloads: [{ ms: 20 }] })
        .then((ids) => this.ids.push(...ids))
        .catch((error: unknown) => (this.failure = error))
        .finally(() => {
          if (this.timer) this.timer = setTimeout(tick, 500);
        });
    };
    this.timer = setTimeout(tick, 0);
    return this;
  }

  /** Stops enqueueing, then asserts that every task enqueued while the group ran was done exactly once. */
  async check(timeoutMs = 60_000): Promise<{ tasks: number }> {
    const timer = this.timer;
    this.timer = undefined;
    if (timer) clearTimeout(timer);
    // One more, after the group: the pool still serves.
    this.ids.push(...(await enqueueTasks(this.stack.database.db, { queue: HEALTHY.queue, payloads: [{ ms: 20 }] })));
    if (this.failure) throw new Error(`enqueueing for the healthy pool failed: ${String(this.failure)}`);
    const db = this.stack.database.db;
    const ids = [...this.ids];
    await eventually(
      `all ${ids.length} tasks of the healthy pool done`,
      async () => {
        const r = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ltp.tasks WHERE id = ANY($1) AND status = 'done'`, [ids]);
        return r.rows[0]?.n === ids.length;
      },
      timeoutMs,
      250,
    );
    const runs = await db.query<{ task_id: number; n: number }>(
      `SELECT task_id, count(*)::int AS n FROM public.executions WHERE task_id = ANY($1) GROUP BY task_id`,
      [ids],
    );
    expect(runs.rows.length, 'tasks of the healthy pool that ran').to.equal(ids.length);
    expect(
      runs.rows.filter((r) => r.n !== 1),
      'tasks of the healthy pool that ran more than once',
    ).to.deep.equal([]);
    expect(this.stack.controller.alive(), 'the controller process is alive').to.equal(true);
    const health = await fetch(`http://127.0.0.1:${this.stack.controller.port}/healthz`);
    expect(health.status, '/healthz').to.equal(200);
    return { tasks: ids.length };
  }
}

/** A new, empty database of the shared server, made by its superuser; returns its URL. */
export async function createDatabase(stack: SecurityStack, name: string): Promise<string> {
  const admin = new pg.Client({ connectionString: stack.serverUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  } finally {
    await admin.end();
  }
  return stack.serverUrl.replace(/\/[^/?]*(\?.*)?$/, `/${name}`);
}

/** Creates or replaces a Secret with these string values. */
export async function secret(name: string, data: Record<string, string>, namespace: string = NS.b): Promise<void> {
  const body = { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace }, stringData: data };
  const result = await kubectl(['apply', '-f', '-'], { input: JSON.stringify(body) });
  expect(result.code, result.stderr).to.equal(0);
}

/** The pool's uid. */
export async function poolUid(namespace: string, name: string): Promise<string> {
  const result = await kubectl(['get', 'ltp', name, '-n', namespace, '-o', 'jsonpath={.metadata.uid}']);
  expect(result.code, result.stderr).to.equal(0);
  return result.stdout.trim();
}

/** The pool's invocation rows, by uid. */
export async function invocationRowsOf(stack: SecurityStack, namespace: string, name: string): Promise<number> {
  const r = await stack.database.db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM ltp.invocations WHERE pool_namespace = $1 AND pool_name = $2`,
    [namespace, name],
  );
  return r.rows[0]?.n ?? 0;
}
