// `lambda-task-pool status [-n NS] [NAME]`: pools with their counts and conditions, as the controller last
// wrote them in each pool's status.
import { Option } from 'commander';
import { INVOCATION_STATES, TASK_STATES, type StateCounts } from '../../api/types.ts';
import { defineCommand } from '../command.ts';
import { poolReader } from '../kube.ts';
import { outputOption, type OutputFormat } from '../options.ts';
import { age, fields, json, table, timestamp } from '../output.ts';
import { queuedInvocations, startedInvocations, summarizePool, type PoolSummary } from '../pool-summary.ts';

interface StatusOptions {
  namespace?: string;
  allNamespaces?: boolean;
  kubeconfig?: string;
  context?: string;
  output: OutputFormat;
}

const count = (n: number | null | undefined) => (n === null || n === undefined ? '-' : String(n));

export default defineCommand({
  group: 'pools',
  register: (program) =>
    program
      .command('status')
      .summary('pools with their counts and conditions')
      .description(
        'Show LambdaTaskPools as the controller last reported them: backlog, invocations and tasks by state, and conditions. ' +
          'With NAME, one pool in detail. Reads the resources from the Kubernetes API (the status kubectl get ltp shows; QUEUED is created + pending, RUNNING is ready + running).',
      )
      .argument('[name]', 'one pool, shown in detail')
      .option('-n, --namespace <ns>', "the pools' namespace (default: the kubeconfig context's, else default)")
      .option('-A, --all-namespaces', 'pools of every namespace')
      .option('--kubeconfig <path>', 'kubeconfig to use (default: KUBECONFIG, else ~/.kube/config, else in-cluster)')
      .addOption(new Option('--context <name>', 'kubeconfig context to use (default: the current one)'))
      .addOption(outputOption())
      .action(async (name: string | undefined, options: StatusOptions) => {
        const reader = await poolReader({ kubeconfig: options.kubeconfig, context: options.context });
        const namespace = options.namespace ?? reader.defaultNamespace;
        if (name !== undefined) {
          const obj = await reader.get(namespace, name);
          if (obj === undefined)
            throw new Error(`no LambdaTaskPool ${namespace}/${name} (lambda-task-pool status -n ${namespace} lists them)`);
          const pool = summarizePool(obj);
          console.log(options.output === 'json' ? json(pool) : detail(pool));
          return;
        }
        const pools = (await reader.list(options.allNamespaces ? undefined : namespace))
          .map(summarizePool)
          .sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
        if (options.output === 'json') console.log(json(pools));
        else if (pools.length === 0)
          console.log(options.allNamespaces ? 'no LambdaTaskPools found' : `no LambdaTaskPools in namespace ${namespace}`);
        else console.log(list(pools, options.allNamespaces === true));
      }),
});

function list(pools: readonly PoolSummary[], withNamespace: boolean): string {
  return table(pools, [
    ...(withNamespace ? [{ header: 'namespace', value: (p: PoolSummary) => p.namespace }] : []),
    { header: 'name', value: (p) => p.name },
    { header: 'queue', value: (p) => p.queue ?? '-' },
    { header: 'ready', value: (p) => p.ready },
    { header: 'reason', value: (p) => p.reason || '-' },
    { header: 'backlog', value: (p) => count(p.backlog) },
    { header: 'queued', value: (p) => count(queuedInvocations(p)) },
    { header: 'running', value: (p) => count(startedInvocations(p)) },
    { header: 'done', value: (p) => count(p.tasks?.done) },
    { header: 'failed', value: (p) => count(p.tasks?.failed) },
    { header: 'cancelled', value: (p) => count(p.tasks?.cancelled) },
    { header: 'suspended', value: (p) => String(p.suspend) },
    { header: 'age', value: (p) => age(p.createdAt) || '-' },
  ]);
}

function counts<S extends string>(states: readonly S[], values: StateCounts<S> | null): string {
  return values ? states.map((s) => `${s} ${values[s]}`).join(', ') : 'not reported yet';
}

function detail(p: PoolSummary): string {
  const head = fields([
    ['Pool', `${p.namespace}/${p.name}`],
    ['Function', p.function ?? '-'],
    ['Queue', p.queue ?? '-'],
    ['Concurrency', `at most ${count(p.maxConcurrency)} live invocations, ${count(p.tasksPerInvocation)} tasks each`],
    ['Suspended', String(p.suspend)],
    ['Ready', `${p.ready}${p.reason ? ` (${p.reason})` : ''}`],
    ['Backlog', p.backlog === null ? 'not reported yet' : `${p.backlog} due tasks`],
    ['Invocations', counts(INVOCATION_STATES, p.invocations)],
    ['Tasks', counts(TASK_STATES, p.tasks)],
    ['Last dispatch', p.lastDispatchTime ? `${timestamp(p.lastDispatchTime)} (${age(p.lastDispatchTime)} ago)` : 'never'],
    [
      'Generation',
      `${p.generation} (status reflects ${p.observedGeneration ?? 'none yet'}${p.observedGeneration !== null && p.observedGeneration < p.generation ? ': the controller has not caught up' : ''})`,
    ],
  ]);
  const conditions =
    p.conditions.length === 0
      ? 'Conditions: none yet (is the controller running, and does it watch this namespace?)'
      : `Conditions:\n${table(p.conditions, [
          { header: 'type', value: (c) => c.type },
          { header: 'status', value: (c) => c.status },
          { header: 'reason', value: (c) => c.reason },
          { header: 'since', value: (c) => age(c.lastTransitionTime) || '-' },
          { header: 'message', value: (c) => c.message },
        ])
          .split('\n')
          .map((line) => `  ${line}`)
          .join('\n')}`;
  return `${head}\n${conditions}`;
}
