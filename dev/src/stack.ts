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
import {
  loadLambdaConfig,
  parseFunctionFlag,
  startLambdaRuntime,
  type FunctionRegistration,
  type LambdaRuntime,
} from './lambda-runtime/index.ts';
import { freePort } from './ports.ts';
import { startPostgres, type PostgresEngine, type PostgresServer } from './postgres.ts';

export interface LocalStackOptions {
  stateDir: string;
  /** `NAME=PATH[#export]` flags. */
  functions?: string[];
  lambdaConfigFile?: string;
  controller?: boolean;
  postgresEngine?: PostgresEngine;
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
    await rm(pgDir, { recursive: true, force: true });
    // Both start at once; each registers its stop as soon as it runs, so a failure of one stops the other.
    const [pgStarted, cpStarted] = await Promise.allSettled([
      startPostgres({ engine: options.postgresEngine, dataDir: pgDir, database: 'ltp' }).then((pg) => {
        stops.push(async () => {
          await pg.stop();
          await rm(pgDir, { recursive: true, force: true });
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
    log.info('postgres started', { engine: postgres.engine, version: postgres.version, port: postgres.port });
    log.info('kube-apiserver started', { version: controlPlane.version, server: controlPlane.server });

    await migrate(postgres.url);
    const kc = loadKubeConfig(controlPlane.kubeconfigPath);
    await installCrd(kc);

    const functions = await lambdaFunctions(options, postgres.url);
    const lambda = await startLambdaRuntime({
      functions: functions.registrations,
      seed: functions.seed,
      concurrencyLimit: functions.concurrencyLimit,
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
    return { stateDir, kubeconfigPath, envPath, databaseUrl: postgres.url, lambda, controlPlane, postgres, controller, env, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function lambdaFunctions(options: LocalStackOptions, databaseUrl: string) {
  const file = options.lambdaConfigFile ?? (options.functions && options.functions.length > 0 ? undefined : DEFAULT_LAMBDA_CONFIG);
  const config = file ? await loadLambdaConfig(file) : { functions: [] };
  const byName = new Map<string, FunctionRegistration>(config.functions.map((f) => [f.name, f]));
  for (const flag of options.functions ?? []) {
    const { name, handler } = parseFunctionFlag(flag);
    byName.set(name, { ...(byName.get(name) ?? {}), name, handler: path.resolve(handler) });
  }
  const registrations = [...byName.values()].map((f) => ({
    ...f,
    environment: { DATABASE_URL: databaseUrl, ...(f.environment ?? {}) },
  }));
  return {
    registrations,
    ...('seed' in config && config.seed !== undefined ? { seed: config.seed } : {}),
    ...('concurrencyLimit' in config && config.concurrencyLimit !== undefined ? { concurrencyLimit: config.concurrencyLimit } : {}),
  };
}

function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}
