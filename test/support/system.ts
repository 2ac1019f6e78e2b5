// The system under test for end-to-end suites: the shared kube-apiserver, a fresh database, the local
// Lambda runtime running the e2e worker, and (optionally) the controller in this process.
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startController, CONTROLLER_DEFAULTS, type ControllerConfig, type RunningController } from '../../src/controller/controller.ts';
import { startLambdaRuntime, type AsyncSettings, type LambdaRuntime } from '../../dev/src/lambda-runtime/index.ts';
import { freePort } from '../../dev/src/ports.ts';
import { createLogger, type Logger } from '../../src/ops/logger.ts';
import { freshDatabase, type TestDatabase } from './postgres.ts';
import { kubectl, sharedControlPlane } from './kube.ts';

export const E2E_WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'functions', 'e2e-worker.ts');

export interface SystemOptions {
  namespaces: string[];
  functionName?: string;
  async?: Partial<AsyncSettings>;
  controller?: boolean;
  controllerOverrides?: Partial<ControllerConfig>;
}

export interface TestSystem {
  database: TestDatabase;
  lambda: LambdaRuntime;
  controller?: RunningController;
  logger: Logger;
  controllerConfig: ControllerConfig;
  stop(): Promise<void>;
}

/** Logs of the system go to a file, not the test output; set LTP_TEST_LOG=1 to see them on stderr. */
async function testLogger(): Promise<{ logger: Logger; file: string }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ltp-e2e-log-'));
  const file = path.join(dir, 'system.log');
  await writeFile(file, '');
  const { createWriteStream } = await import('node:fs');
  const stream = process.env.LTP_TEST_LOG ? process.stderr : createWriteStream(file, { flags: 'a' });
  return { logger: createLogger({ stream, level: 'debug' }), file };
}

export async function startSystem(options: SystemOptions): Promise<TestSystem> {
  const cp = await sharedControlPlane();
  const database = await freshDatabase('e2e');
  await database.db.query(
    'CREATE TABLE public.executions (task_id bigint NOT NULL, invocation_id bigint NOT NULL, at timestamptz NOT NULL DEFAULT now())',
  );
  const { logger } = await testLogger();
  const lambda = await startLambdaRuntime({
    seed: 7,
    concurrencyLimit: 100,
    logger: logger.child({ component: 'lambda-runtime' }),
    functions: [
      {
        name: options.functionName ?? 'e2e-worker',
        handler: E2E_WORKER,
        timeoutSeconds: 60,
        environment: { DATABASE_URL: database.url, LTP_LOG_LEVEL: 'warn' },
        async: { startDelayMs: { min: 1_000, max: 3_000 }, retryDelaysMs: [1_000, 2_000], ...options.async },
      },
    ],
  });
  for (const ns of options.namespaces) await kubectl(['create', 'namespace', ns]);
  const controllerConfig: ControllerConfig = {
    ...CONTROLLER_DEFAULTS,
    kubeconfig: cp.kubeconfigPath,
    databaseUrl: database.url,
    lambdaEndpoint: lambda.endpoint,
    stsEndpoint: lambda.endpoint,
    region: 'us-east-1',
    lambdaCredentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    namespaces: options.namespaces,
    allowedDefaultDbNamespaces: [],
    metricsHost: '127.0.0.1',
    metricsPort: await freePort(),
    leaderElect: false,
    leaseNamespace: options.namespaces[0] ?? 'default',
    leaseName: CONTROLLER_DEFAULTS.leaseName,
    identity: 'e2e',
    workers: 4,
    invokeParallelism: 16,
    resyncMs: 5_000,
    reinvokeGraceMs: 3_000,
    rejectionBackoffMs: 30_000,
    blockedRetryMs: 2_000,
    strandedSweepMs: 2_000,
    logger: logger.child({ component: 'controller' }),
    ...options.controllerOverrides,
  };
  const controller = options.controller === false ? undefined : await startController(controllerConfig);
  const system: TestSystem = {
    database,
    lambda,
    controller,
    logger,
    controllerConfig,
    async stop() {
      // A test may have replaced the controller (a restart): stop whichever runs now.
      await system.controller?.stop();
      for (const ns of options.namespaces) await kubectl(['delete', 'namespace', ns, '--wait=false']);
      await lambda.stop();
      await database.close();
    },
  };
  return system;
}

export interface PoolManifest {
  namespace: string;
  name: string;
  functionName?: string;
  queue: string;
  maxConcurrency?: number;
  tasksPerInvocation?: number;
  suspend?: boolean;
  extraSpec?: Record<string, unknown>;
}

export async function applyPool(p: PoolManifest): Promise<void> {
  const manifest = {
    apiVersion: 'lambda.taskpool.io/v1alpha1',
    kind: 'LambdaTaskPool',
    metadata: { name: p.name, namespace: p.namespace },
    spec: {
      function: { name: p.functionName ?? 'e2e-worker' },
      queue: p.queue,
      maxConcurrency: p.maxConcurrency ?? 10,
      tasksPerInvocation: p.tasksPerInvocation ?? 3,
      suspend: p.suspend ?? false,
      ...p.extraSpec,
    },
  };
  const result = await kubectl(['apply', '-f', '-'], { input: JSON.stringify(manifest) });
  if (result.code !== 0) throw new Error(`kubectl apply failed: ${result.stderr}`);
}

export interface PoolView {
  /** Absent until the controller first writes it (condition() allows for that). */
  status: {
    backlog?: number;
    invocations?: Record<string, number>;
    tasks?: Record<string, number>;
    conditions?: Array<{ type: string; status: string; reason: string; message: string }>;
    observedGeneration?: number;
  };
  metadata: { finalizers?: string[]; generation?: number };
}

export async function getPool(namespace: string, name: string): Promise<PoolView | undefined> {
  const result = await kubectl(['get', 'ltp', name, '-n', namespace, '-o', 'json']);
  if (result.code !== 0) return undefined;
  return JSON.parse(result.stdout) as PoolView;
}

export function condition(pool: PoolView | undefined, type: string) {
  // A pool the controller has not written yet has no status at all.
  const status = pool?.status as PoolView['status'] | undefined;
  return status?.conditions?.find((c) => c.type === type);
}

/** Polls until the check returns a value, or fails with what it saw last. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  timeoutMs = 60_000,
  everyMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
      last = value;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${String(last)})`);
}

/** The most invocations that were live (created, pending, ready or running) at the same moment, from their timestamps. */
export async function maxConcurrentLive(db: TestDatabase['db'], poolUidLike = '%'): Promise<number> {
  const result = await db.query<{ n: number }>(
    `WITH spans AS (
       SELECT created_at AS t, 1 AS d FROM ltp.invocations WHERE pool_uid LIKE $1
       UNION ALL
       SELECT finished_at, -1 FROM ltp.invocations WHERE pool_uid LIKE $1 AND finished_at IS NOT NULL)
     SELECT COALESCE(max(live), 0)::int AS n FROM (
       SELECT sum(d) OVER (ORDER BY t, d ROWS UNBOUNDED PRECEDING) AS live FROM spans) s`,
    [poolUidLike],
  );
  return result.rows[0]?.n ?? 0;
}
