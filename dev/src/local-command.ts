// `lambda-task-pool local up`: the whole system on this machine, in the foreground, until Ctrl-C. The CLI
// (src/cli/commands/local.ts) parses the flags and loads this module from the development tools.
import path from 'node:path';
import type { LocalUpOptions } from '../../src/cli/commands/local.ts';
import { createLogger } from '../../src/ops/logger.ts';
import { untilSignal } from '../../src/ops/signals.ts';
import { startLocalStack, type LocalStack } from './stack.ts';

/** The flags of `local up`, as the CLI parsed them (the CLI defines them). */
export type { LocalUpOptions };

export async function runLocalUp(options: LocalUpOptions): Promise<void> {
  const logger = createLogger();
  const stack = await startLocalStack({
    stateDir: options.stateDir,
    functions: options.function,
    lambdaConfigFile: options.lambdaConfig,
    controller: options.controller,
    postgresEngine: options.postgresEngine,
    keepData: options.keepData ?? false,
    logger,
  });
  console.log(readyMessage(stack, { cwd: process.cwd() }));
  await untilSignal();
  console.log('stopping the local stack');
  await stack.stop();
  console.log(options.keepData ? `local stack stopped; its Postgres data stays in ${stack.postgresDataDir}` : 'local stack stopped');
}

/** What `local up` prints once everything runs: where each part is, and the commands to run next. */
export function readyMessage(
  stack: Pick<
    LocalStack,
    'controlPlane' | 'postgres' | 'lambda' | 'controller' | 'envPath' | 'functionNames' | 'keptData' | 'postgresDataDir'
  >,
  where: { cwd: string },
): string {
  const env = path.relative(where.cwd, stack.envPath) || stack.envPath;
  const shownEnv = env.startsWith('..') ? stack.envPath : env;
  const fn = stack.functionNames[0];
  const lines = [
    `local stack ready: kube-apiserver ${stack.controlPlane.version} at ${stack.controlPlane.server}, ` +
      `postgres ${stack.postgres.version} (${stack.postgres.engine}), lambda runtime at ${stack.lambda.endpoint}` +
      (stack.controller ? `, controller metrics on 127.0.0.1:${stack.controller.healthPort}` : ', no controller'),
    `  functions: ${stack.functionNames.length > 0 ? stack.functionNames.join(', ') : 'none'}`,
    stack.keptData
      ? `  postgres data: ${stack.postgresDataDir} (kept: --keep-data; the cluster starts empty, so apply your pools again)`
      : '  postgres data: starts empty and is removed on stop (--keep-data keeps it)',
    '',
    'Next, in another shell:',
    `  source ${shownEnv}                 # KUBECONFIG, DATABASE_URL, AWS_ENDPOINT_URL_LAMBDA, AWS_REGION, ...`,
    '  kubectl apply -f examples/pool.yaml    # a pool for thumbnail-worker on queue thumbnails',
    `  npm run cli -- enqueue --queue thumbnails --count 30 --payload '{"ms":1500}'`,
    '  kubectl get ltp -w                     # or: npm run cli -- status',
    '  npm run cli -- tasks --queue thumbnails',
    ...(fn !== undefined && fn !== 'thumbnail-worker'
      ? [`  (your function ${fn}: point a pool at it with spec.function.name: ${fn})`]
      : []),
    ...(stack.controller ? [] : ['  npm run cli -- controller              # the controller, left out by --no-controller']),
    '',
    'Press Ctrl-C to stop everything.',
  ];
  return lines.join('\n');
}
