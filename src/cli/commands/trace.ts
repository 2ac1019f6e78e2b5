// `lambda-task-pool trace NAMESPACE/NAME`: the pool's dispatch decisions (what each pass saw, what it did and
// why), each with the invocations it started and how they ended. Answers "why 37 invocations at 10:02?".
import { Option, type Command } from 'commander';
import { KIND } from '../../api/types.ts';
import { UsageError, defineCommand } from '../command.ts';
import { withDatabase } from '../database.ts';
import { poolReader } from '../kube.ts';
import { databaseUrlOption, durationSeconds, outputOption, positiveInt, type OutputFormat } from '../options.ts';
import { json } from '../output.ts';

interface TraceOptions {
  namespace?: string;
  since: number;
  limit: number;
  kubeconfig?: string;
  context?: string;
  output: OutputFormat;
}

export default defineCommand({
  group: 'pools',
  register: (program) =>
    program
      .command('trace')
      .summary("a pool's dispatch decisions and what became of them")
      .description(
        'Print the decisions the controller recorded for a pool: every pass that changed something, with what it saw (backlog, ' +
          'queued, ready and running invocations), what it wanted and was allowed (want, headroom), what it did (dispatched, ' +
          'orphaned, terminated, invoked again) and why, and the invocations it started with how they ended. Decisions are ' +
          "kept as long as the pool's finished rows (the retention setting). The pool is read from the Kubernetes API (for its " +
          "uid); the decisions from the pool's database: the controller's default one, or, for a pool with spec.database, that " +
          "database's URL. Oldest first; times in UTC.",
      )
      .argument('<pool>', 'NAMESPACE/NAME, or NAME with -n')
      .option('-n, --namespace <ns>', "the pool's namespace when POOL has none (default: the kubeconfig context's, else default)")
      .addOption(
        new Option('--since <duration>', 'decisions of this last span, e.g. 10m, 2h, 7d')
          .argParser(durationSeconds('--since'))
          .default(3_600, '1h'),
      )
      .option('--limit <n>', 'print at most this many decisions (the latest of the span)', positiveInt(100_000), 200)
      .option('--kubeconfig <path>', 'kubeconfig to use (default: KUBECONFIG, else ~/.kube/config, else in-cluster)')
      .addOption(new Option('--context <name>', 'kubeconfig context to use (default: the current one)'))
      .addOption(databaseUrlOption("the pool's database"))
      .addOption(outputOption())
      .action(async (ref: string, options: TraceOptions, command: Command) => {
        const { loadTrace, formatTrace } = await import('../../trace/trace.js');
        const reader = await poolReader({ kubeconfig: options.kubeconfig, context: options.context });
        const { namespace, name } = poolRef(ref, options.namespace ?? reader.defaultNamespace);
        const pool = await reader.get(namespace, name);
        if (pool === undefined) throw new Error(`no ${KIND} ${namespace}/${name} (lambda-task-pool status -n ${namespace} lists them)`);
        const uid = uidOf(pool);
        const secret = ownDatabaseSecret(pool);
        if (secret !== undefined && command.getOptionValueSource('databaseUrl') === 'env') {
          console.error(
            `note: ${namespace}/${name} keeps its rows in the database of Secret ${secret}; DATABASE_URL must point there (or pass --database-url)`,
          );
        }
        const since = new Date(Date.now() - options.since * 1000);
        const entries = await withDatabase(command, (db) => loadTrace(db, { poolUid: uid, since, limit: options.limit }));
        if (options.output === 'json') console.log(json(entries));
        else process.stdout.write(formatTrace(entries));
      }),
});

/** NAMESPACE/NAME, or NAME in the given namespace. */
export function poolRef(ref: string, namespace: string): { namespace: string; name: string } {
  const parts = ref.split('/');
  const dns = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
  const [a, b] = parts;
  if (parts.length === 1 && a && dns.test(a)) return { namespace, name: a };
  if (parts.length === 2 && a && b && dns.test(a) && dns.test(b)) return { namespace: a, name: b };
  throw new UsageError(`${JSON.stringify(ref)} is not a pool: pass NAMESPACE/NAME, or NAME with -n NAMESPACE`);
}

function uidOf(pool: unknown): string {
  const meta = typeof pool === 'object' && pool !== null && 'metadata' in pool ? pool.metadata : undefined;
  const uid = typeof meta === 'object' && meta !== null && 'uid' in meta ? meta.uid : undefined;
  if (typeof uid !== 'string' || uid === '') throw new Error('the API server returned the pool without a uid');
  return uid;
}

function ownDatabaseSecret(pool: unknown): string | undefined {
  const spec = typeof pool === 'object' && pool !== null && 'spec' in pool ? pool.spec : undefined;
  const database = typeof spec === 'object' && spec !== null && 'database' in spec ? spec.database : undefined;
  const ref = typeof database === 'object' && database !== null && 'secretRef' in database ? database.secretRef : undefined;
  const secretName = typeof ref === 'object' && ref !== null && 'name' in ref ? ref.name : undefined;
  return typeof secretName === 'string' ? secretName : undefined;
}
