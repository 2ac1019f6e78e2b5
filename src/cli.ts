#!/usr/bin/env node
// lambda-task-pool: one entry point for the controller, migrations, enqueueing and the local stack.
import { parseArgs } from 'node:util';
import { startController, CONTROLLER_DEFAULTS, defaultIdentity } from './controller/controller.ts';
import { createLogger } from './ops/logger.ts';
import { DatabaseUrlError, parseDatabaseUrl } from './store/database-url.ts';
import { createDb } from './store/db.ts';
import { migrate } from './store/migrate.ts';
import { enqueueTasks } from './store/task-store.ts';
import { QUEUE_PATTERN } from './api/types.ts';
import { DurationError, parseDurationSeconds } from './api/duration.ts';
import { OPEN_POLICY, parseTenancyPolicy, TenancyPolicyError, type TenancyPolicy } from './api/tenancy.ts';
import { readFileSync } from 'node:fs';

const USAGE = `lambda-task-pool: run AWS Lambda workers for a PostgreSQL task backlog, exactly.

Usage:
  lambda-task-pool controller [flags]     run the operator (in a cluster, or against any kubeconfig)
  lambda-task-pool migrate                apply the database migrations (idempotent)
  lambda-task-pool enqueue --queue Q [--count N] [--payload JSON] [--max-attempts N] [--delay-seconds N]
  lambda-task-pool local up --state-dir DIR [--function NAME=PATH[#export]]... [--lambda-config FILE] [--no-controller]
  lambda-task-pool version

The database URL comes from --database-url or DATABASE_URL. Run a command with --help for its flags.`;

const CONTROLLER_USAGE = `lambda-task-pool controller [flags]

  --kubeconfig PATH            kubeconfig to use (default: in-cluster, or KUBECONFIG / ~/.kube/config)
  --database-url URL           default database for pools without spec.database (env DATABASE_URL)
  --lambda-endpoint URL        Lambda endpoint override (env AWS_ENDPOINT_URL_LAMBDA)
  --region REGION              default AWS region (env AWS_REGION, default us-east-1)
  --namespaces A,B             watch only these namespaces (env WATCH_NAMESPACES; default all)
  --default-db-namespaces A,B  namespaces allowed to use the default database (env ALLOWED_DEFAULT_DB_NAMESPACES; default all)
  --metrics-addr HOST:PORT     serve /metrics, /healthz and /readyz here (default :8080)
  --leader-elect               use a Lease so only one replica dispatches
  --lease-namespace NS         namespace of the Lease (env POD_NAMESPACE, default default)
  --workers N                  pools reconciled at once (default 4)
  --tenancy-policy JSON|@FILE  which functions and queues each namespace may use, and the IAM role that invokes
                               them (env TENANCY_POLICY; default: no restriction). See the chart's values.yaml.
  --secret-namespaces A,B      read Secrets (spec.database.secretRef) only in these namespaces (env SECRET_NAMESPACES)
  --retention DURATION         delete finished tasks and invocations older than this, e.g. 7d or 36h; 0 keeps
                               them (env RETENTION; default 7d; a pool may set spec.retentionSeconds)`;

function list(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function fail(message: string): never {
  process.stderr.write(`lambda-task-pool: ${message}\n`);
  process.exit(2);
}

function positiveInt(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) fail(`${flag} must be a positive integer (got ${JSON.stringify(value)})`);
  return n;
}

function databaseUrlFrom(flag: string | undefined): string {
  const raw = flag ?? process.env.DATABASE_URL;
  try {
    return parseDatabaseUrl(raw, flag !== undefined ? '--database-url' : 'DATABASE_URL').url;
  } catch (error) {
    if (error instanceof DatabaseUrlError) fail(error.message);
    throw error;
  }
}

function tenancyFrom(text: string | undefined): TenancyPolicy {
  if (text === undefined || text.trim() === '') return OPEN_POLICY;
  try {
    return parseTenancyPolicy(text.startsWith('@') ? readFileSync(text.slice(1), 'utf8') : text);
  } catch (error) {
    if (error instanceof TenancyPolicyError) fail(`--tenancy-policy: ${error.message}`);
    if (error instanceof Error && 'code' in error) fail(`--tenancy-policy: cannot read ${text.slice(1)} (${String(error.code)})`);
    throw error;
  }
}

async function runController(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      kubeconfig: { type: 'string' },
      'database-url': { type: 'string' },
      'lambda-endpoint': { type: 'string' },
      region: { type: 'string' },
      namespaces: { type: 'string' },
      'default-db-namespaces': { type: 'string' },
      'metrics-addr': { type: 'string' },
      'leader-elect': { type: 'boolean' },
      'lease-namespace': { type: 'string' },
      workers: { type: 'string' },
      retention: { type: 'string' },
      'tenancy-policy': { type: 'string' },
      'secret-namespaces': { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) return void console.log(CONTROLLER_USAGE);
  const tenancy = tenancyFrom(values['tenancy-policy'] ?? process.env.TENANCY_POLICY);
  const retentionText = values.retention ?? process.env.RETENTION;
  let retentionSeconds: number = CONTROLLER_DEFAULTS.retentionSeconds;
  if (retentionText !== undefined) {
    try {
      retentionSeconds = parseDurationSeconds(retentionText, '--retention');
    } catch (error) {
      if (error instanceof DurationError) fail(error.message);
      throw error;
    }
  }
  const logger = createLogger({ component: 'controller' });
  const databaseUrl =
    values['database-url'] !== undefined || process.env.DATABASE_URL ? databaseUrlFrom(values['database-url']) : undefined;
  if (!databaseUrl) logger.warn('no default database: only pools with spec.database.secretRef can run');
  const [host, portText] = (values['metrics-addr'] ?? ':8080').split(/:(?=[^:]*$)/);
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65_535)
    fail(`--metrics-addr must be HOST:PORT or :PORT (got ${JSON.stringify(values['metrics-addr'])})`);
  const controller = await startController({
    ...CONTROLLER_DEFAULTS,
    kubeconfig: values.kubeconfig,
    databaseUrl,
    lambdaEndpoint: values['lambda-endpoint'] ?? process.env.AWS_ENDPOINT_URL_LAMBDA,
    region: values.region ?? process.env.AWS_REGION ?? CONTROLLER_DEFAULTS.region,
    namespaces: list(values.namespaces ?? process.env.WATCH_NAMESPACES),
    allowedDefaultDbNamespaces: list(values['default-db-namespaces'] ?? process.env.ALLOWED_DEFAULT_DB_NAMESPACES),
    metricsHost: host || '0.0.0.0',
    metricsPort: port,
    leaderElect: values['leader-elect'] ?? false,
    leaseNamespace: values['lease-namespace'] ?? process.env.POD_NAMESPACE ?? 'default',
    identity: process.env.POD_NAME ?? defaultIdentity(),
    workers: positiveInt(values.workers, '--workers', CONTROLLER_DEFAULTS.workers),
    retentionSeconds,
    tenancy,
    secretNamespaces: list(values['secret-namespaces'] ?? process.env.SECRET_NAMESPACES),
    logger,
  });
  await untilSignal();
  logger.info('shutting down');
  await controller.stop();
}

async function runMigrate(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { 'database-url': { type: 'string' } } });
  const url = databaseUrlFrom(values['database-url']);
  const result = await migrate(url);
  console.log(result.applied.length > 0 ? `applied: ${result.applied.join(', ')}` : 'the schema is up to date');
}

async function runEnqueue(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'database-url': { type: 'string' },
      queue: { type: 'string' },
      count: { type: 'string' },
      payload: { type: 'string' },
      'max-attempts': { type: 'string' },
      'delay-seconds': { type: 'string' },
    },
  });
  const queue = values.queue ?? fail('--queue is required');
  if (!QUEUE_PATTERN.test(queue)) fail('--queue must be 1-128 letters, digits or . _ : / - and start with a letter or digit');
  const count = positiveInt(values.count, '--count', 1);
  if (count > 1_000_000) fail('--count is limited to 1000000 per call');
  let payload: unknown = {};
  if (values.payload !== undefined) {
    try {
      payload = JSON.parse(values.payload);
    } catch {
      fail('--payload must be JSON, e.g. \'{"image":"cat.png"}\'');
    }
  }
  const maxAttempts = values['max-attempts'] === undefined ? undefined : positiveInt(values['max-attempts'], '--max-attempts', 1);
  const delaySeconds = values['delay-seconds'] === undefined ? 0 : positiveInt(values['delay-seconds'], '--delay-seconds', 0);
  const db = createDb(databaseUrlFrom(values['database-url']), { max: 1, applicationName: 'lambda-task-pool-enqueue' });
  try {
    let done = 0;
    while (done < count) {
      const batch = Math.min(10_000, count - done);
      await enqueueTasks(db, { queue, payloads: Array.from({ length: batch }, () => payload), maxAttempts, delayMs: delaySeconds * 1000 });
      done += batch;
    }
    console.log(`enqueued ${count} task${count === 1 ? '' : 's'} on queue ${queue}`);
  } finally {
    await db.end();
  }
}

/** The module of the development tools, loaded only for `local up` (it ships with the source repository only). */
const DEV_TOOLS = '@lambda-task-pool/dev-tools';

interface DevTools {
  runLocalCommand(argv: string[]): Promise<void>;
}

async function runLocal(argv: string[]): Promise<void> {
  // A variable specifier: the package compiles and installs without the development tools.
  const devTools = (await import(DEV_TOOLS).catch((error: unknown) => {
    if (error instanceof Error && 'code' in error && (error.code === 'ERR_MODULE_NOT_FOUND' || error.code === 'MODULE_NOT_FOUND')) {
      fail('local up needs the development tools, which come with the source repository only: clone it, then run npm ci && npm run local');
    }
    throw error;
  })) as DevTools;
  await devTools.runLocalCommand(argv);
}

function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(signal);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'controller':
      return runController(rest);
    case 'migrate':
      return runMigrate(rest);
    case 'enqueue':
      return runEnqueue(rest);
    case 'local':
      return runLocal(rest);
    case 'version':
      return void console.log('lambda-task-pool 0.1.0');
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      return void console.log(USAGE);
    default:
      fail(`unknown command "${command}"\n\n${USAGE}`);
  }
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`lambda-task-pool: ${message.replace(/postgres(ql)?:\/\/\S+/g, '<database url>')}\n`);
    process.exit(1);
  },
);
