// `lambda-task-pool controller`: the operator itself, in a cluster (the chart runs it) or against any kubeconfig.
import { InvalidArgumentError, Option, type Command } from 'commander';
import { readFileSync } from 'node:fs';
import { OPEN_POLICY, parseTenancyPolicy, TenancyPolicyError, type TenancyPolicy } from '../../api/tenancy.ts';
import { RETENTION_BOUNDS } from '../../api/types.ts';
import { untilSignal } from '../../ops/signals.ts';
import { UsageError, defineCommand } from '../command.ts';
import { commaList, databaseFrom, databaseUrlOption, durationSeconds, hasDatabase, nonNegativeInt, positiveInt } from '../options.ts';
import { missingKubeconfig } from '../../controller/kubeconfig.ts';

// The defaults shown in the help are the controller's own (CONTROLLER_DEFAULTS, checked by a unit test);
// the controller module is loaded only when the command runs, so that `--help` stays quick.
export const HELP_DEFAULTS = {
  leaseName: 'lambda-task-pool-controller',
  workers: 256,
  firstRows: 128,
  retention: '7d',
  region: 'us-east-1',
  functionCheck: '5m',
} as const;

interface ControllerOptions {
  kubeconfig?: string;
  lambdaEndpoint?: string;
  region?: string;
  namespaces?: string[];
  defaultDbNamespaces?: string[];
  metricsAddr: string;
  leaderElect?: boolean;
  leaseNamespace: string;
  leaseName?: string;
  workers?: number;
  firstRows?: number;
  tenancyPolicy?: string;
  secretNamespaces?: string[];
  retention?: number;
  functionCheckInterval?: number;
  stsEndpoint?: string;
}

export default defineCommand({
  group: 'run',
  register: (program) =>
    program
      .command('controller')
      .summary('run the operator')
      .description(
        'Run the operator: watch LambdaTaskPool resources, dispatch exactly as many Lambda invocations as each backlog needs, ' +
          'sweep lost ones and write status. Runs until SIGINT or SIGTERM.',
      )
      .option('--kubeconfig <path>', 'kubeconfig to use (default: KUBECONFIG, else ~/.kube/config, else in-cluster)')
      .addOption(databaseUrlOption('default database for pools without spec.database'))
      .addOption(new Option('--lambda-endpoint <url>', 'Lambda endpoint override').env('AWS_ENDPOINT_URL_LAMBDA'))
      .addOption(new Option('--region <region>', `default AWS region (default: ${HELP_DEFAULTS.region})`).env('AWS_REGION'))
      .addOption(
        new Option('--namespaces <a,b>', 'watch only these namespaces (default: all)').argParser(commaList).env('WATCH_NAMESPACES'),
      )
      .addOption(
        new Option('--default-db-namespaces <a,b>', 'namespaces allowed to use the default database (default: all)')
          .argParser(commaList)
          .env('ALLOWED_DEFAULT_DB_NAMESPACES'),
      )
      .option('--metrics-addr <host:port>', 'serve /metrics, /healthz and /readyz here', ':8080')
      .option('--leader-elect', 'use a Lease so that only one replica dispatches')
      .addOption(new Option('--lease-namespace <ns>', 'namespace of the Lease').env('POD_NAMESPACE').default('default'))
      .addOption(
        new Option(
          '--lease-name <name>',
          `name of the Lease: give each release in a namespace its own (default: ${HELP_DEFAULTS.leaseName})`,
        )
          .argParser(leaseName)
          .env('LEASE_NAME'),
      )
      .addOption(new Option('--workers <n>', `pools reconciled at once (default: ${HELP_DEFAULTS.workers})`).argParser(positiveInt(10_000)))
      .addOption(
        new Option(
          '--first-rows <n>',
          `a dispatch pass of more than twice this many new invocations commits this many first and invokes them while it inserts the rest; 0 inserts all before invoking (default: ${HELP_DEFAULTS.firstRows})`,
        )
          .argParser(nonNegativeInt(10_000))
          .env('FIRST_ROWS'),
      )
      .addOption(
        new Option(
          '--tenancy-policy <json|@file>',
          'which functions and queues each namespace may use, and the IAM role that invokes them (default: no restriction; see the chart values)',
        ).env('TENANCY_POLICY'),
      )
      .addOption(
        new Option('--secret-namespaces <a,b>', 'read Secrets (spec.database.secretRef) only in these namespaces')
          .argParser(commaList)
          .env('SECRET_NAMESPACES'),
      )
      .addOption(
        new Option(
          '--retention <duration>',
          `delete finished tasks and invocations older than this, e.g. 7d or 36h; 0 keeps them (default: ${HELP_DEFAULTS.retention}; a pool may set spec.retentionSeconds)`,
        )
          // A pool's spec.retentionSeconds has the same bound: a longer one overflowed now() - interval in the
          // retention sweep's SQL (timestamp out of range), and stopped the sweep of every controller on that database.
          .argParser(
            durationSeconds('--retention', { maxSeconds: RETENTION_BOUNDS.max, maxText: '3650d (10 years); 0 keeps them for ever' }),
          )
          .env('RETENTION'),
      )
      .addOption(
        new Option(
          '--function-check-interval <duration>',
          `how often each function's configuration, reserved concurrency and async settings are read for the FunctionReady condition (default: ${HELP_DEFAULTS.functionCheck})`,
        )
          .argParser(durationSeconds('--function-check-interval'))
          .env('FUNCTION_CHECK_INTERVAL'),
      )
      .addOption(new Option('--sts-endpoint <url>', 'STS endpoint override (for namespace roles)').env('AWS_ENDPOINT_URL_STS'))
      .action(async (options: ControllerOptions, command: Command) => {
        const tenancy = tenancyFrom(options.tenancyPolicy);
        const metrics = metricsAddress(options.metricsAddr);
        // Every flag is checked before anything is logged or started.
        const functionCheck = functionCheckMs(options.functionCheckInterval);
        const noKubeconfig = missingKubeconfig(options.kubeconfig);
        if (noKubeconfig) throw new UsageError(noKubeconfig);
        const databaseUrl = hasDatabase(command) ? databaseFrom(command).url : undefined;
        const [{ startController, CONTROLLER_DEFAULTS, defaultIdentity }, { createLogger }, { startMemoryRelease }] = await Promise.all([
          import('../../controller/controller.js'),
          import('../../ops/logger.js'),
          import('../../ops/memory-release.js'),
        ]);
        const logger = createLogger({ component: 'controller' });
        if (!databaseUrl) logger.warn('no default database: only pools with spec.database.secretRef can run');
        const controller = await startController({
          ...CONTROLLER_DEFAULTS,
          kubeconfig: options.kubeconfig,
          databaseUrl,
          lambdaEndpoint: options.lambdaEndpoint,
          region: options.region ?? CONTROLLER_DEFAULTS.region,
          namespaces: options.namespaces ?? [],
          allowedDefaultDbNamespaces: options.defaultDbNamespaces ?? [],
          metricsHost: metrics.host,
          metricsPort: metrics.port,
          leaderElect: options.leaderElect ?? false,
          leaseNamespace: options.leaseNamespace,
          leaseName: options.leaseName ?? CONTROLLER_DEFAULTS.leaseName,
          identity: process.env.POD_NAME ?? defaultIdentity(),
          workers: options.workers ?? CONTROLLER_DEFAULTS.workers,
          firstRows: options.firstRows ?? CONTROLLER_DEFAULTS.firstRows,
          retentionSeconds: options.retention ?? CONTROLLER_DEFAULTS.retentionSeconds,
          functionCheckMs: functionCheck ?? CONTROLLER_DEFAULTS.functionCheckMs,
          ...(options.stsEndpoint ? { stsEndpoint: options.stsEndpoint } : {}),
          tenancy,
          secretNamespaces: options.secretNamespaces ?? [],
          logger,
        });
        // A process-wide concern, so here and not in startController (tests run several controllers in one process).
        const memory = startMemoryRelease({
          logger,
          onRelease: (freedBytes) => {
            controller.metrics.memoryReleases.inc();
            controller.metrics.memoryReleasedBytes.inc(freedBytes);
          },
        });
        await untilSignal();
        logger.info('shutting down');
        memory.stop();
        await controller.stop();
      }),
});

/** The interval in ms; at least 10 s, so that a typo cannot turn the guard into a flood of Lambda API calls. */
function functionCheckMs(seconds: number | undefined): number | undefined {
  if (seconds === undefined) return undefined;
  if (seconds < 10) throw new UsageError('--function-check-interval must be at least 10s');
  return seconds * 1000;
}

function tenancyFrom(text: string | undefined): TenancyPolicy {
  if (text === undefined || text.trim() === '') return OPEN_POLICY;
  let source = text;
  if (text.startsWith('@')) {
    try {
      source = readFileSync(text.slice(1), 'utf8');
    } catch (error) {
      const code = error instanceof Error && 'code' in error ? String(error.code) : 'unreadable';
      throw new UsageError(`--tenancy-policy: cannot read ${text.slice(1)} (${code})`);
    }
  }
  try {
    return parseTenancyPolicy(source);
  } catch (error) {
    if (error instanceof TenancyPolicyError) throw new UsageError(`--tenancy-policy: ${error.message}`);
    throw error;
  }
}

/** A Lease name is a DNS subdomain; empty (an unset chart value) means the default. */
function leaseName(value: string): string | undefined {
  const name = value.trim();
  if (name === '') return undefined;
  if (!/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(name)) {
    throw new InvalidArgumentError('must be a DNS subdomain: lower-case letters, digits, - and ., at most 253');
  }
  return name;
}

function metricsAddress(text: string): { host: string; port: number } {
  const [host, portText] = text.split(/:(?=[^:]*$)/);
  const port = Number(portText);
  if (portText === undefined || portText === '' || !Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new UsageError(`--metrics-addr must be HOST:PORT or :PORT (got ${JSON.stringify(text)})`);
  }
  // No host: every address, IPv6 and IPv4 alike (kubelets probe a Pod's IPv6 address on IPv6-only clusters).
  return { host: host ?? '', port };
}
