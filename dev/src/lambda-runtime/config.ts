// Function configuration of the local Lambda runtime: types, defaults, validation and the YAML file format.
// Everything that enters from outside (a YAML file, a CLI flag, a register() call) passes through the same
// parsers, so an unknown key or an out-of-range value is always an error that names the key.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';

/** A fixed number of milliseconds, or a uniform random choice between min and max. */
export type DelaySpec = number | { min: number; max: number };

export interface AsyncSettings {
  /** Delay between accepting an event and its first delivery. */
  startDelayMs: DelaySpec;
  /** Retries after a function error, a timeout or a crash (AWS: 0 to 2, default 2). */
  maximumRetryAttempts: 0 | 1 | 2;
  /** Delay before the first and the second retry (AWS: about 1 and 2 minutes). */
  retryDelaysMs: [number, number];
  /** Events not delivered this long after acceptance are dropped (AWS: 60 to 21600; locally any value above 0). */
  maximumEventAgeSeconds: number;
  /** Probability that an accepted event is delivered a second time. */
  duplicateRate: number;
  /** Probability that an accepted event is never delivered. */
  dropRate: number;
  /** Probability that an Invoke call is answered 429 TooManyRequestsException. */
  throttleRate: number;
  /** Probability that a delivery's process is killed (SIGKILL) mid-run. */
  crashRate: number;
  /** When, after a delivery starts, an injected crash kills its process. */
  crashAfterMs: DelaySpec;
}

export const FUNCTION_STATES = ['Active', 'Pending', 'Failed'] as const;
export type FunctionState = (typeof FUNCTION_STATES)[number];

export interface LambdaFunctionConfig {
  name: string;
  /** Absolute module path and export name: "/abs/path/module.ts#handler". */
  handler: string;
  timeoutSeconds: number;
  memoryMb: number;
  reservedConcurrency?: number;
  environment: Record<string, string>;
  state: FunctionState;
  async: AsyncSettings;
}

/** What a caller gives to register a function: a name, a handler, and any settings to override. */
export interface FunctionRegistration {
  name: string;
  /** "path/to/module.ts#exportName"; the export defaults to "handler"; relative paths resolve from the cwd. */
  handler: string;
  timeoutSeconds?: number;
  memoryMb?: number;
  reservedConcurrency?: number;
  environment?: Record<string, string>;
  state?: FunctionState;
  async?: Partial<AsyncSettings>;
}

/** Settings applied to every function of a config file before its own settings. */
export type FunctionDefaults = Omit<FunctionRegistration, 'name' | 'handler'>;

/** A parsed config file: everything startLambdaRuntime needs besides a logger and a port. */
export interface LambdaConfigFile {
  seed?: number;
  concurrencyLimit?: number;
  region?: string;
  accountId?: string;
  functions: LambdaFunctionConfig[];
}

export const DEFAULT_ASYNC_SETTINGS: AsyncSettings = {
  startDelayMs: 0,
  maximumRetryAttempts: 2,
  retryDelaysMs: [60_000, 120_000],
  maximumEventAgeSeconds: 21_600,
  duplicateRate: 0,
  dropRate: 0,
  throttleRate: 0,
  crashRate: 0,
  crashAfterMs: { min: 50, max: 500 },
};

export const DEFAULT_TIMEOUT_SECONDS = 900;
export const DEFAULT_MEMORY_MB = 128;
/** Longest delay any setting accepts: the longest event age AWS allows. */
const MAX_DELAY_MS = 21_600_000;

/** Environment variables the runtime sets itself; AWS rejects them in a function's environment too. */
export const RESERVED_ENVIRONMENT_KEYS = [
  '_HANDLER',
  'AWS_REGION',
  'AWS_DEFAULT_REGION',
  'AWS_EXECUTION_ENV',
  'AWS_LAMBDA_FUNCTION_NAME',
  'AWS_LAMBDA_FUNCTION_VERSION',
  'AWS_LAMBDA_FUNCTION_MEMORY_SIZE',
  'AWS_LAMBDA_LOG_GROUP_NAME',
  'AWS_LAMBDA_LOG_STREAM_NAME',
  'AWS_LAMBDA_INITIALIZATION_TYPE',
  'LAMBDA_TASK_ROOT',
  'LAMBDA_RUNTIME_DIR',
] as const;

const FUNCTION_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const EXPORT_NAME = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const ENV_KEY = /^[A-Za-z][A-Za-z0-9_]*$/;

/** A config value that is missing, of the wrong type, out of range or not known; the message names the key. */
export class LambdaConfigError extends Error {
  override readonly name = 'LambdaConfigError';
  readonly key: string;
  readonly problem: string;
  constructor(key: string, problem: string, source?: string) {
    const text = key ? `${key}: ${problem}` : problem;
    super(source ? `${source}: ${text}` : text);
    this.key = key;
    this.problem = problem;
  }
}

// ---- small type guards -------------------------------------------------------------------------

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'object') return 'an object';
  return String(value);
}

function join(prefix: string, key: string): string {
  return prefix ? `${prefix}.${key}` : key;
}

function rejectUnknownKeys(value: Record<string, unknown>, known: readonly string[], prefix: string): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      throw new LambdaConfigError(join(prefix, key), `unknown key (known keys: ${known.join(', ')})`);
    }
  }
}

function numberIn(value: unknown, key: string, range: { min: number; max: number; integer?: boolean; minExclusive?: boolean }): number {
  const kind = range.integer ? 'an integer' : 'a number';
  const low = range.minExclusive ? `above ${range.min}` : `from ${range.min}`;
  const problem = `must be ${kind} ${low} to ${range.max} (got ${describe(value)})`;
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new LambdaConfigError(key, problem);
  if (range.integer && !Number.isInteger(value)) throw new LambdaConfigError(key, problem);
  const tooLow = range.minExclusive ? value <= range.min : value < range.min;
  if (tooLow || value > range.max) throw new LambdaConfigError(key, problem);
  return value;
}

function rate(value: unknown, key: string): number {
  return numberIn(value, key, { min: 0, max: 1 });
}

function delaySpec(value: unknown, key: string): DelaySpec {
  if (isRecord(value)) {
    rejectUnknownKeys(value, ['min', 'max'], key);
    const min = numberIn(value.min, join(key, 'min'), { min: 0, max: MAX_DELAY_MS });
    const max = numberIn(value.max, join(key, 'max'), { min: 0, max: MAX_DELAY_MS });
    if (max < min) throw new LambdaConfigError(key, `max (${max}) must not be below min (${min})`);
    return { min, max };
  }
  if (typeof value !== 'number') {
    throw new LambdaConfigError(key, `must be milliseconds or {min, max} (got ${describe(value)})`);
  }
  return numberIn(value, key, { min: 0, max: MAX_DELAY_MS });
}

function retryAttempts(value: unknown, key: string): 0 | 1 | 2 {
  if (value === 0 || value === 1 || value === 2) return value;
  throw new LambdaConfigError(key, `must be 0, 1 or 2 (got ${describe(value)})`);
}

function retryDelays(value: unknown, key: string): [number, number] {
  if (!Array.isArray(value) || value.length !== 2) {
    throw new LambdaConfigError(key, `must be a list of two delays in milliseconds (got ${describe(value)})`);
  }
  const first = numberIn(value[0], `${key}[0]`, { min: 0, max: MAX_DELAY_MS });
  const second = numberIn(value[1], `${key}[1]`, { min: 0, max: MAX_DELAY_MS });
  return [first, second];
}

function functionState(value: unknown, key: string): FunctionState {
  const found = FUNCTION_STATES.find((state) => state === value);
  if (found === undefined) throw new LambdaConfigError(key, `must be one of ${FUNCTION_STATES.join(', ')} (got ${describe(value)})`);
  return found;
}

function environment(value: unknown, key: string): Record<string, string> {
  if (!isRecord(value)) throw new LambdaConfigError(key, `must be a map of variable names to values (got ${describe(value)})`);
  const result: Record<string, string> = {};
  for (const [name, raw] of Object.entries(value)) {
    const entryKey = join(key, name);
    if (!ENV_KEY.test(name)) throw new LambdaConfigError(entryKey, 'is not a valid environment variable name');
    if (RESERVED_ENVIRONMENT_KEYS.some((reserved) => reserved === name)) {
      throw new LambdaConfigError(entryKey, 'is reserved: the runtime sets it itself');
    }
    if (typeof raw === 'string') result[name] = raw;
    else if (typeof raw === 'number' || typeof raw === 'boolean') result[name] = String(raw);
    else throw new LambdaConfigError(entryKey, `must be a string (got ${describe(raw)})`);
  }
  return result;
}

// ---- settings ----------------------------------------------------------------------------------

const ASYNC_KEYS = [
  'startDelayMs',
  'maximumRetryAttempts',
  'retryDelaysMs',
  'maximumEventAgeSeconds',
  'duplicateRate',
  'dropRate',
  'throttleRate',
  'crashRate',
  'crashAfterMs',
] as const;

const SETTING_KEYS = ['timeoutSeconds', 'memoryMb', 'reservedConcurrency', 'environment', 'state', 'async'] as const;

/** Parses the `async` block of a function or of the defaults. */
export function parseAsyncSettings(value: unknown, key: string): Partial<AsyncSettings> {
  if (!isRecord(value)) throw new LambdaConfigError(key, `must be a map (got ${describe(value)})`);
  rejectUnknownKeys(value, ASYNC_KEYS, key);
  const result: Partial<AsyncSettings> = {};
  const at = (name: string): string => join(key, name);
  if (value.startDelayMs !== undefined) result.startDelayMs = delaySpec(value.startDelayMs, at('startDelayMs'));
  if (value.maximumRetryAttempts !== undefined) {
    result.maximumRetryAttempts = retryAttempts(value.maximumRetryAttempts, at('maximumRetryAttempts'));
  }
  if (value.retryDelaysMs !== undefined) result.retryDelaysMs = retryDelays(value.retryDelaysMs, at('retryDelaysMs'));
  if (value.maximumEventAgeSeconds !== undefined) {
    result.maximumEventAgeSeconds = numberIn(value.maximumEventAgeSeconds, at('maximumEventAgeSeconds'), {
      min: 0,
      max: 21_600,
      minExclusive: true,
    });
  }
  if (value.duplicateRate !== undefined) result.duplicateRate = rate(value.duplicateRate, at('duplicateRate'));
  if (value.dropRate !== undefined) result.dropRate = rate(value.dropRate, at('dropRate'));
  if (value.throttleRate !== undefined) result.throttleRate = rate(value.throttleRate, at('throttleRate'));
  if (value.crashRate !== undefined) result.crashRate = rate(value.crashRate, at('crashRate'));
  if (value.crashAfterMs !== undefined) result.crashAfterMs = delaySpec(value.crashAfterMs, at('crashAfterMs'));
  return result;
}

/** Parses every per-function setting except name and handler (used for `defaults` and for each function). */
export function parseFunctionDefaults(value: unknown, key: string, extraKeys: readonly string[] = []): FunctionDefaults {
  if (!isRecord(value)) throw new LambdaConfigError(key, `must be a map (got ${describe(value)})`);
  rejectUnknownKeys(value, [...extraKeys, ...SETTING_KEYS], key);
  const result: FunctionDefaults = {};
  const at = (name: string): string => join(key, name);
  if (value.timeoutSeconds !== undefined) {
    result.timeoutSeconds = numberIn(value.timeoutSeconds, at('timeoutSeconds'), { min: 1, max: 900, integer: true });
  }
  if (value.memoryMb !== undefined) {
    result.memoryMb = numberIn(value.memoryMb, at('memoryMb'), { min: 128, max: 10_240, integer: true });
  }
  if (value.reservedConcurrency !== undefined) {
    result.reservedConcurrency = numberIn(value.reservedConcurrency, at('reservedConcurrency'), {
      min: 0,
      max: 100_000,
      integer: true,
    });
  }
  if (value.environment !== undefined) result.environment = environment(value.environment, at('environment'));
  if (value.state !== undefined) result.state = functionState(value.state, at('state'));
  if (value.async !== undefined) result.async = parseAsyncSettings(value.async, at('async'));
  return result;
}

export interface HandlerSpec {
  modulePath: string;
  exportName: string;
}

/** Splits "path/to/module.ts#exportName" (export defaults to "handler") and resolves the path from baseDir. */
export function parseHandlerSpec(handler: string, baseDir: string = process.cwd(), key = 'handler'): HandlerSpec {
  const hash = handler.lastIndexOf('#');
  const file = hash === -1 ? handler : handler.slice(0, hash);
  const exportName = hash === -1 ? 'handler' : handler.slice(hash + 1);
  if (file.trim() === '')
    throw new LambdaConfigError(key, `needs a module path, as in "path/to/module.ts#handler" (got ${JSON.stringify(handler)})`);
  if (!EXPORT_NAME.test(exportName)) {
    throw new LambdaConfigError(key, `export name ${JSON.stringify(exportName)} is not a JavaScript identifier`);
  }
  return { modulePath: path.resolve(baseDir, file), exportName };
}

export function formatHandlerSpec(spec: HandlerSpec): string {
  return `${spec.modulePath}#${spec.exportName}`;
}

export function validateFunctionName(name: unknown, key = 'name'): string {
  if (typeof name !== 'string' || !FUNCTION_NAME.test(name)) {
    throw new LambdaConfigError(key, `function names are 1 to 64 letters, digits, '-' or '_' (got ${describe(name)})`);
  }
  return name;
}

function mergeSettings(base: FunctionDefaults, override: FunctionDefaults): FunctionDefaults {
  const merged: FunctionDefaults = { ...base, ...override };
  if (base.environment || override.environment) merged.environment = { ...base.environment, ...override.environment };
  if (base.async || override.async) merged.async = { ...base.async, ...override.async };
  return merged;
}

function complete(name: string, handler: string, settings: FunctionDefaults): LambdaFunctionConfig {
  const config: LambdaFunctionConfig = {
    name,
    handler,
    timeoutSeconds: settings.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS,
    memoryMb: settings.memoryMb ?? DEFAULT_MEMORY_MB,
    environment: settings.environment ?? {},
    state: settings.state ?? 'Active',
    async: { ...DEFAULT_ASYNC_SETTINGS, ...settings.async },
  };
  if (settings.reservedConcurrency !== undefined) config.reservedConcurrency = settings.reservedConcurrency;
  return config;
}

export interface ResolveOptions {
  defaults?: FunctionDefaults;
  /** Where relative handler paths start from (default: the current directory). */
  baseDir?: string;
  /** Prefix of key names in error messages. */
  keyPrefix?: string;
}

/**
 * Turns a registration (from code, or already-parsed YAML) into a complete, validated config.
 * Accepts `unknown` on purpose: the same checks run whatever the caller's types promised.
 */
export function resolveFunctionConfig(registration: unknown, options: ResolveOptions = {}): LambdaFunctionConfig {
  const prefix = options.keyPrefix ?? '';
  if (!isRecord(registration)) throw new LambdaConfigError(prefix, `a function must be a map (got ${describe(registration)})`);
  const name = validateFunctionName(registration.name, join(prefix, 'name'));
  if (typeof registration.handler !== 'string') {
    throw new LambdaConfigError(
      join(prefix, 'handler'),
      `is required: "path/to/module.ts#exportName" (got ${describe(registration.handler)})`,
    );
  }
  const spec = parseHandlerSpec(registration.handler, options.baseDir, join(prefix, 'handler'));
  const own = parseFunctionDefaults(registration, prefix, ['name', 'handler']);
  return complete(name, formatHandlerSpec(spec), mergeSettings(options.defaults ?? {}, own));
}

/** Parses a `--function NAME=PATH[#export]` flag. */
export function parseFunctionFlag(flag: string): { name: string; handler: string } {
  const equals = flag.indexOf('=');
  if (equals === -1) {
    throw new LambdaConfigError(
      '--function',
      `expected NAME=PATH[#export], as in worker=./worker.ts#handler (got ${JSON.stringify(flag)})`,
    );
  }
  const name = validateFunctionName(flag.slice(0, equals), '--function NAME');
  const handler = flag.slice(equals + 1);
  parseHandlerSpec(handler, process.cwd(), '--function PATH');
  return { name, handler };
}

const TOP_LEVEL_KEYS = ['seed', 'concurrencyLimit', 'region', 'accountId', 'defaults', 'functions'] as const;

/** Parses a config document (already read from YAML). Relative handler paths resolve from baseDir. */
export function parseLambdaConfig(document: unknown, baseDir: string): LambdaConfigFile {
  if (document === null || document === undefined) return { functions: [] };
  if (!isRecord(document)) throw new LambdaConfigError('', `the config file must be a map (got ${describe(document)})`);
  rejectUnknownKeys(document, TOP_LEVEL_KEYS, '');
  const result: LambdaConfigFile = { functions: [] };
  if (document.seed !== undefined) {
    result.seed = numberIn(document.seed, 'seed', { min: 0, max: 4_294_967_295, integer: true });
  }
  if (document.concurrencyLimit !== undefined) {
    result.concurrencyLimit = numberIn(document.concurrencyLimit, 'concurrencyLimit', { min: 1, max: 10_000, integer: true });
  }
  if (document.region !== undefined) {
    if (typeof document.region !== 'string' || !/^[a-z]{2}(-[a-z]+)+-\d$/.test(document.region)) {
      throw new LambdaConfigError('region', `must be a region name such as us-east-1 (got ${describe(document.region)})`);
    }
    result.region = document.region;
  }
  if (document.accountId !== undefined) {
    if (typeof document.accountId !== 'string' || !/^\d{12}$/.test(document.accountId)) {
      throw new LambdaConfigError('accountId', `must be 12 digits in quotes (got ${describe(document.accountId)})`);
    }
    result.accountId = document.accountId;
  }
  const defaults = document.defaults === undefined ? {} : parseFunctionDefaults(document.defaults, 'defaults');
  if (document.functions !== undefined) {
    if (!isRecord(document.functions)) {
      throw new LambdaConfigError('functions', `must be a map of function names to settings (got ${describe(document.functions)})`);
    }
    for (const [name, settings] of Object.entries(document.functions)) {
      const key = `functions.${name}`;
      validateFunctionName(name, key);
      if (!isRecord(settings)) throw new LambdaConfigError(key, `must be a map with at least a handler (got ${describe(settings)})`);
      if ('name' in settings) throw new LambdaConfigError(`${key}.name`, 'unknown key: the name is the key of the map');
      result.functions.push(resolveFunctionConfig({ ...settings, name }, { defaults, baseDir, keyPrefix: key }));
    }
  }
  return result;
}

/** Reads and validates a YAML config file. Handler paths in it are relative to the file's folder. */
export async function loadLambdaConfig(file: string): Promise<LambdaConfigFile> {
  const text = await readFile(file, 'utf8');
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new LambdaConfigError('', `not valid YAML: ${reason}`, file);
  }
  try {
    return parseLambdaConfig(document, path.dirname(path.resolve(file)));
  } catch (error) {
    if (error instanceof LambdaConfigError) throw new LambdaConfigError(error.key, error.problem, file);
    throw error;
  }
}
