// The local Lambda runtime: an HTTP server on loopback that the unmodified @aws-sdk/client-lambda talks to,
// running handlers in real Node processes with Lambda's asynchronous-invocation semantics and switchable
// faults. See docs/lambda-runtime.md.
import { randomInt } from 'node:crypto';
import { createLogger, type Logger } from '../../../src/ops/logger.ts';
import { type FunctionRegistration, type LambdaFunctionConfig, LambdaConfigError } from './config.ts';
import type { LogLine } from './log-sink.ts';
import { DEFAULT_CONCURRENCY_LIMIT, LambdaEngine } from './runtime.ts';
import { startServer } from './server.ts';
import { LocalIdentity } from './identity.ts';
import type { EventRecord, RuntimeStats } from './stats.ts';

export {
  type AsyncSettings,
  DEFAULT_ASYNC_SETTINGS,
  type DelaySpec,
  type FunctionDefaults,
  type FunctionRegistration,
  type FunctionState,
  type LambdaConfigFile,
  LambdaConfigError,
  type LambdaFunctionConfig,
  loadLambdaConfig,
  parseFunctionFlag,
  parseLambdaConfig,
} from './config.ts';
export { type LambdaErrorType, THROTTLE_REASONS, type ThrottleReason } from './errors.ts';
export { resolveFunctionTarget, functionArn, type FunctionTarget } from './function-name.ts';
export type { LambdaContext } from './function-host.ts';
export type { LogLine } from './log-sink.ts';
export type { AssumedRole, LocalIdentity, SignedCall } from './identity.ts';
export type { DeliveryOutcome, DeliveryRecord, DropReason, EventRecord, RuntimeStats } from './stats.ts';

export interface RuntimeOptions {
  /** Where to listen (default 127.0.0.1). */
  host?: string;
  /** Port to listen on (default 0: any free port). */
  port?: number;
  /** Functions to register at start: a name and a handler, plus any settings to override. */
  functions?: FunctionRegistration[];
  /** Seed of every random fault decision (default: a random seed, logged and kept in `seed`). */
  seed?: number;
  logger?: Logger;
  region?: string;
  accountId?: string;
  /** Runtime-wide limit of concurrent executions, like an account's concurrency (default 10). */
  concurrencyLimit?: number;
}

export interface LambdaRuntime {
  /** http://127.0.0.1:PORT, for the SDK's `endpoint` or AWS_ENDPOINT_URL_LAMBDA. */
  readonly endpoint: string;
  readonly seed: number;
  readonly region: string;
  readonly accountId: string;
  /** Registers a function, or replaces the config of a registered one (its idle processes are recycled). */
  register(fn: FunctionRegistration): LambdaFunctionConfig;
  /** Removes a function: queued events are dropped (reason `deleted`), its processes killed. */
  unregister(name: string): void;
  /** Counters of one function, or of the whole runtime. */
  stats(name?: string): RuntimeStats;
  /** Event invocations one function has accepted: a counter, cheap to poll (stats() also walks the function's queue). */
  acceptedCount(name: string): number;
  /** Every accepted Event invocation and its deliveries, oldest first. */
  events(name?: string): EventRecord[];
  /** The last lines the function's processes wrote to stdout and stderr. */
  logs(name: string): LogLine[];
  /** Process ids of the function processes alive now. */
  pids(name?: string): number[];
  /**
   * Who may call what: STS AssumeRole, the key that signed each call (`signedCalls()`), actions to deny
   * (`deny(['lambda:GetFunctionConcurrency'])`), functions a role may invoke, and the lifetime of assumed keys.
   */
  readonly identity: LocalIdentity;
  /** Resolves when no event is queued, waiting for a retry, or running; rejects after timeoutMs. */
  idle(timeoutMs?: number): Promise<void>;
  /** Closes the server, kills every process and clears every timer. Safe to call twice. */
  stop(): Promise<void>;
}

function checkOption(ok: boolean, key: string, problem: string): void {
  if (!ok) throw new LambdaConfigError(key, problem);
}

export async function startLambdaRuntime(options: RuntimeOptions = {}): Promise<LambdaRuntime> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 0;
  const region = options.region ?? 'us-east-1';
  const accountId = options.accountId ?? '123456789012';
  const concurrencyLimit = options.concurrencyLimit ?? DEFAULT_CONCURRENCY_LIMIT;
  const seed = options.seed ?? randomInt(0, 2 ** 32 - 1);
  checkOption(Number.isInteger(port) && port >= 0 && port <= 65_535, 'port', `must be an integer from 0 to 65535 (got ${port})`);
  checkOption(Number.isInteger(seed) && seed >= 0 && seed < 2 ** 32, 'seed', `must be an integer from 0 to 4294967295 (got ${seed})`);
  checkOption(
    Number.isInteger(concurrencyLimit) && concurrencyLimit >= 1,
    'concurrencyLimit',
    `must be a positive integer (got ${concurrencyLimit})`,
  );
  checkOption(/^\d{12}$/.test(accountId), 'accountId', `must be 12 digits (got ${accountId})`);
  checkOption(/^[a-z]{2}(-[a-z]+)+-\d$/.test(region), 'region', `must be a region name such as us-east-1 (got ${region})`);
  const logger = options.logger ?? createLogger({ component: 'lambda-runtime' });

  const engine = new LambdaEngine({ scope: { region, accountId }, seed, logger, concurrencyLimit });
  for (const fn of options.functions ?? []) engine.register(fn);
  const identity = new LocalIdentity(accountId);
  const server = await startServer(engine, { host, port, logger, identity });
  logger.info('lambda runtime started', { endpoint: server.endpoint, seed, functions: engine.names() });

  let stopping: Promise<void> | undefined;
  return {
    endpoint: server.endpoint,
    seed,
    region,
    accountId,
    identity,
    register: (fn) => engine.register(fn),
    unregister: (name) => engine.unregister(name),
    stats: (name) => engine.stats(name),
    acceptedCount: (name) => engine.acceptedCount(name),
    events: (name) => engine.events(name),
    logs: (name) => engine.logs(name),
    pids: (name) => engine.pids(name),
    idle: (timeoutMs) => engine.idle(timeoutMs),
    stop: () => {
      stopping ??= Promise.all([server.close(), engine.stop()]).then(() => {
        logger.info('lambda runtime stopped', { endpoint: server.endpoint });
      });
      return stopping;
    },
  };
}
