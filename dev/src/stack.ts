// The whole system on one machine: a real Postgres, a real kube-apiserver with etcd, the CRD, the local
// Lambda runtime running worker functions, and the controller. The CLI's `local up` and the tests use it.
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startController, CONTROLLER_DEFAULTS, type RunningController } from '../../src/controller/controller.ts';
import { loadKubeConfig } from '../../src/controller/kube.ts';
import type { Logger } from '../../src/ops/logger.ts';
import { migrate } from '../../src/store/migrate.ts';
import { REPO_ROOT, ensureBinaries } from './binaries.ts';
import { startControlPlane, type ControlPlane } from './control-plane.ts';
import { installCrd } from './crd.ts';
import { startLambdaRuntime, type LambdaRuntime } from './lambda-runtime/index.ts';
import { localFunctions } from './local-functions.ts';
import { freePort } from './ports.ts';
import { startPostgres, type PostgresEngine, type PostgresServer } from './postgres.ts';

export interface LocalStackOptions {
  stateDir: string;
  /** `NAME=PATH[#export]` flags. */
  functions?: string[];
  lambdaConfigFile?: string;
  controller?: boolean;
  postgresEngine?: PostgresEngine;
  /** Keep the Postgres data (in STATE_DIR/postgres) across restarts; by default each start begins empty. */
  keepData?: boolean;
  logger: Logger;
  /** Overrides for the in-process controller (tests shorten its timers). */
  controllerOverrides?: Partial<Parameters<typeof startController>[0]>;
}

export interface LocalStack {
  stateDir: string;
  kubeconfigPath: string;
  envPath: string;
  databaseUrl: string;
  lambda: LambdaRuntime;
  controlPlane: ControlPlane;
  postgres: PostgresServer;
  controller?: RunningController;
  env: Record<string, string>;
  /** The functions registered in the local Lambda runtime. */
  functionNames: string[];
  /** Whether the Postgres data was kept from an earlier run (--keep-data), and where it lives. */
  keptData: boolean;
  postgresDataDir: string;
  stop(): Promise<void>;
}

export const DEFAULT_LAMBDA_CONFIG = path.join(REPO_ROOT, 'examples', 'lambda-config.yaml');

export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const log = options.logger;
  const stateDir = path.resolve(options.stateDir);
  await mkdir(stateDir, { recursive: true });
  // As root, Postgres runs as the `postgres` user, which must be able to reach its data directory inside.
  await chmod(stateDir, 0o755);
  const stops: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const step of stops.splice(0).reverse()) {
      await step().catch((error: unknown) => log.warn('stopping a local-stack part failed', { error: String(error) }));
    }
  };
  try {
    const binaries = await ensureBinaries((line) => log.info('control-plane build', { line }));
    const pgDir = path.join(stateDir, 'postgres');
    const keepData = options.keepData ?? false;
    if (!keepData) await rm(pgDir, { recursive: true, force: true });
    // Functions are read (and their config checked) before anything starts, so a bad file fails fast.
    const functions = await lambdaFunctions(options);
    // Both start at once; each registers its stop as soon as it runs, so a failure of one stops the other.
    const [pgStarted, cpStarted] = await Promise.allSettled([
      startPostgres({ engine: options.postgresEngine, dataDir: pgDir, database: 'ltp' }).then((pg) => {
        stops.push(async () => {
          await pg.stop();
          if (!keepData) await rm(pgDir, { recursive: true, force: true });
        });
        return pg;
      }),
      startControlPlane({ dir: path.join(stateDir, 'kube'), binaries }).then((cp) => {
        stops.push(cp.stop);
        return cp;
      }),
    ]);
    if (pgStarted.status === 'rejected') throw pgStarted.reason;
    if (cpStarted.status === 'rejected') throw cpStarted.reason;
    const postgres = pgStarted.value;
    const controlPlane = cpStarted.value;
    log.info('postgres started', { engine: postgres.engine, version: postgres.version, port: postgres.port, dataKept: keepData });
    log.info('kube-apiserver started', { version: controlPlane.version, server: controlPlane.server });

    await migrate(postgres.url);
    const kc = loadKubeConfig(controlPlane.kubeconfigPath);
    await installCrd(kc);

    const lambda = await startLambdaRuntime({
      functions: functions.functions.map((f) => ({ ...f, environment: { DATABASE_URL: postgres.url, ...f.environment } })),
      ...(functions.seed !== undefined ? { seed: functions.seed } : {}),
      ...(functions.concurrencyLimit !== undefined ? { concurrencyLimit: functions.concurrencyLimit } : {}),
      ...(functions.region !== undefined ? { region: functions.region } : {}),
      ...(functions.accountId !== undefined ? { accountId: functions.accountId } : {}),
      logger: log.child({ component: 'lambda-runtime' }),
    });
    stops.push(lambda.stop);

    const env: Record<string, string> = {
      KUBECONFIG: path.join(stateDir, 'kubeconfig'),
      DATABASE_URL: postgres.url,
      AWS_ENDPOINT_URL_LAMBDA: lambda.endpoint,
      AWS_REGION: lambda.region,
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
    };
    const kubeconfigPath = path.join(stateDir, 'kubeconfig');
    const envPath = path.join(stateDir, 'env');
    await writeFile(kubeconfigPath, controlPlane.kubeconfig, { mode: 0o600 });
    await writeFile(
      envPath,
      Object.entries(env)
        .map(([k, v]) => `export ${k}=${shellQuote(v)}`)
        .join('\n') + '\n',
      { mode: 0o600 },
    );
    stops.push(async () => {
      await rm(envPath, { force: true });
      await rm(kubeconfigPath, { force: true });
    });

    let controller: RunningController | undefined;
    if (options.controller ?? true) {
      controller = await startController({
        ...CONTROLLER_DEFAULTS,
        kubeconfig: kubeconfigPath,
        databaseUrl: postgres.url,
        lambdaEndpoint: lambda.endpoint,
        stsEndpoint: lambda.endpoint,
        region: lambda.region,
        lambdaCredentials: { accessKeyId: env.AWS_ACCESS_KEY_ID ?? 'local', secretAccessKey: env.AWS_SECRET_ACCESS_KEY ?? 'local' },
        namespaces: [],
        allowedDefaultDbNamespaces: [],
        metricsHost: '127.0.0.1',
        metricsPort: await freePort(),
        leaderElect: false,
        leaseNamespace: 'default',
        identity: 'local',
        logger: log.child({ component: 'controller' }),
        ...options.controllerOverrides,
      });
      const running = controller;
      stops.push(() => running.stop());
    }
    return {
      stateDir,
      kubeconfigPath,
      envPath,
      databaseUrl: postgres.url,
      lambda,
      controlPlane,
      postgres,
      controller,
      env,
      functionNames: functions.functions.map((f) => f.name),
      keptData: keepData,
      postgresDataDir: pgDir,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** The config file (examples/lambda-config.yaml when neither a file nor a --function is given) with the flags merged in. */
function lambdaFunctions(options: LocalStackOptions) {
  const flags = options.functions ?? [];
  const file = options.lambdaConfigFile ?? (flags.length > 0 ? undefined : DEFAULT_LAMBDA_CONFIG);
  return localFunctions({ file, flags, cwd: process.cwd() });
}

function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}
