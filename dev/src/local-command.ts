// `lambda-task-pool local up`: the whole system on this machine, in the foreground, until Ctrl-C.
import { parseArgs } from 'node:util';
import { createLogger } from '../../src/ops/logger.ts';
import { startLocalStack } from './stack.ts';

const USAGE =
  'usage: lambda-task-pool local up --state-dir DIR [--function NAME=PATH[#export]]... [--lambda-config FILE] [--no-controller] [--postgres-engine auto|debian|embedded]';

function fail(message: string): never {
  process.stderr.write(`lambda-task-pool: ${message}\n`);
  process.exit(2);
}

export async function runLocalCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub !== 'up') fail(USAGE);
  const { values } = parseArgs({
    args: rest,
    options: {
      'state-dir': { type: 'string' },
      function: { type: 'string', multiple: true },
      'lambda-config': { type: 'string' },
      'no-controller': { type: 'boolean' },
      'postgres-engine': { type: 'string' },
    },
  });
  const stateDir = values['state-dir'] ?? fail('--state-dir is required');
  const engine = values['postgres-engine'];
  if (engine !== undefined && engine !== 'auto' && engine !== 'debian' && engine !== 'embedded')
    fail('--postgres-engine must be auto, debian or embedded');
  const logger = createLogger();
  const stack = await startLocalStack({
    stateDir,
    functions: values.function,
    lambdaConfigFile: values['lambda-config'],
    controller: !values['no-controller'],
    postgresEngine: engine,
    logger,
  });
  console.log(
    `local stack ready: kube-apiserver ${stack.controlPlane.version} at ${stack.controlPlane.server}, postgres ${stack.postgres.version} (${stack.postgres.engine}), lambda runtime at ${stack.lambda.endpoint}${stack.controller ? `, controller metrics on 127.0.0.1:${stack.controller.healthPort}` : ', no controller'}`,
  );
  console.log(`  source ${stack.envPath}    # KUBECONFIG, DATABASE_URL, AWS_ENDPOINT_URL_LAMBDA, ...`);
  console.log('  kubectl apply -f examples/pool.yaml && kubectl get ltp');
  console.log('Press Ctrl-C to stop everything.');
  await untilSignal();
  console.log('stopping the local stack');
  await stack.stop();
  console.log('local stack stopped');
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
