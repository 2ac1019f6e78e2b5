// Parses a LambdaTaskPool as it arrives from the API server. The CRD schema already validates it; this
// re-checks what a schema cannot guarantee (objects stored before a schema change, defaults not applied)
// and turns an unknown object into a typed Pool, or a list of problems for an InvalidSpec condition.
import {
  FUNCTION_NAME_PATTERN,
  QUALIFIER_PATTERN,
  QUEUE_PATTERN,
  REGION_PATTERN,
  SECRET_KEY_PATTERN,
  SECRET_NAME_PATTERN,
  INVOCATION_STATES,
  RETENTION_BOUNDS,
  RETRY_BOUNDS,
  SPEC_BOUNDS,
  SPEC_DEFAULTS,
  TASK_STATES,
  type Condition,
  type Pool,
  type PoolMeta,
  type PoolSpec,
  type PoolStatus,
  type StateCounts,
} from './types.ts';

export type ParseResult = { ok: true; meta: PoolMeta; pool: Pool } | { ok: false; meta: PoolMeta; status: PoolStatus; problems: string[] };

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

export class NotAPoolError extends Error {
  override name = 'NotAPoolError';
}

export function parseMeta(obj: unknown): PoolMeta {
  if (!isObj(obj) || !isObj(obj.metadata)) throw new NotAPoolError('object has no metadata');
  const m = obj.metadata;
  const namespace = str(m.namespace);
  const name = str(m.name);
  const uid = str(m.uid);
  if (!namespace || !name || !uid) throw new NotAPoolError('object metadata lacks namespace, name or uid');
  return {
    namespace,
    name,
    uid,
    generation: typeof m.generation === 'number' ? m.generation : 0,
    resourceVersion: str(m.resourceVersion),
    deletionTimestamp: str(m.deletionTimestamp),
    finalizers: Array.isArray(m.finalizers) ? m.finalizers.filter((f): f is string => typeof f === 'string') : [],
  };
}

export function parsePool(obj: unknown): ParseResult {
  const meta = parseMeta(obj);
  const root = isObj(obj) ? obj : {};
  const status = parseStatus(root.status);
  const problems: string[] = [];
  const spec = isObj(root.spec) ? root.spec : undefined;
  if (!spec) return { ok: false, meta, status, problems: ['spec is missing'] };

  const fn = isObj(spec.function) ? spec.function : undefined;
  const fnName = str(fn?.name);
  if (!fnName) problems.push('spec.function.name is required');
  else if (!FUNCTION_NAME_PATTERN.test(fnName)) problems.push(`spec.function.name "${fnName.slice(0, 80)}" is not a function name or ARN`);
  const qualifier = str(fn?.qualifier);
  if (qualifier !== undefined && !QUALIFIER_PATTERN.test(qualifier))
    problems.push('spec.function.qualifier must be $LATEST, a version or an alias');
  const region = str(fn?.region);
  if (region !== undefined && !REGION_PATTERN.test(region))
    problems.push(`spec.function.region "${region.slice(0, 40)}" is not an AWS region`);
  const asyncConfig = str(fn?.asyncConfig);
  if (asyncConfig !== undefined && asyncConfig !== 'Managed' && asyncConfig !== 'Unmanaged')
    problems.push(`spec.function.asyncConfig must be Managed or Unmanaged (got "${asyncConfig.slice(0, 40)}")`);

  const queue = str(spec.queue);
  if (!queue) problems.push('spec.queue is required');
  else if (!QUEUE_PATTERN.test(queue))
    problems.push('spec.queue must be 1-128 letters, digits or . _ : / - and start with a letter or digit');

  const int = (key: keyof typeof SPEC_BOUNDS): number => {
    const value = spec[key] ?? SPEC_DEFAULTS[key];
    const { min, max } = SPEC_BOUNDS[key];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      problems.push(`spec.${key} must be an integer from ${min} to ${max}`);
      return SPEC_DEFAULTS[key];
    }
    return value;
  };
  const maxConcurrency = int('maxConcurrency');
  const tasksPerInvocation = int('tasksPerInvocation');
  const startTimeoutSeconds = int('startTimeoutSeconds');
  const heartbeatTimeoutSeconds = int('heartbeatTimeoutSeconds');
  const maxTaskAttempts = int('maxTaskAttempts');

  const retryRaw = spec.retry ?? {};
  let retry: PoolSpec['retry'] = { ...SPEC_DEFAULTS.retry };
  if (!isObj(retryRaw)) problems.push('spec.retry must be an object');
  else {
    const seconds = (key: keyof typeof RETRY_BOUNDS): number => {
      const value = retryRaw[key] ?? SPEC_DEFAULTS.retry[key];
      const { min, max } = RETRY_BOUNDS[key];
      if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
        problems.push(`spec.retry.${key} must be an integer from ${min} to ${max}`);
        return SPEC_DEFAULTS.retry[key];
      }
      return value;
    };
    retry = { initialDelaySeconds: seconds('initialDelaySeconds'), maxDelaySeconds: seconds('maxDelaySeconds') };
    if (retry.maxDelaySeconds < retry.initialDelaySeconds)
      problems.push('spec.retry.maxDelaySeconds must not be below spec.retry.initialDelaySeconds');
  }

  let retentionSeconds: number | undefined;
  if (spec.retentionSeconds !== undefined) {
    const value = spec.retentionSeconds;
    if (
      typeof value !== 'number' ||
      !Number.isInteger(value) ||
      value < RETENTION_BOUNDS.min ||
      value > RETENTION_BOUNDS.max ||
      (value > 0 && value < 60)
    ) {
      problems.push(`spec.retentionSeconds must be 0 (keep for ever) or an integer from 60 to ${RETENTION_BOUNDS.max}`);
    } else retentionSeconds = value;
  }

  const suspendRaw = spec.suspend ?? SPEC_DEFAULTS.suspend;
  if (typeof suspendRaw !== 'boolean') problems.push('spec.suspend must be true or false');
  const suspend = suspendRaw === true;

  let database: PoolSpec['database'];
  if (spec.database !== undefined) {
    const ref = isObj(spec.database) && isObj(spec.database.secretRef) ? spec.database.secretRef : undefined;
    const name = str(ref?.name);
    const key = str(ref?.key) ?? SPEC_DEFAULTS.secretKey;
    if (!name || !SECRET_NAME_PATTERN.test(name)) problems.push('spec.database.secretRef.name must name a Secret in the pool namespace');
    else if (!SECRET_KEY_PATTERN.test(key)) problems.push('spec.database.secretRef.key is not a valid Secret key');
    else database = { secretRef: { name, key } };
  }

  if (problems.length > 0 || !fnName || !queue) return { ok: false, meta, status, problems };
  return {
    ok: true,
    meta,
    pool: {
      meta,
      status,
      spec: {
        function: {
          name: fnName,
          ...(qualifier ? { qualifier } : {}),
          ...(region ? { region } : {}),
          ...(asyncConfig === 'Managed' ? { asyncConfig: 'Managed' as const } : {}),
        },
        queue,
        maxConcurrency,
        tasksPerInvocation,
        startTimeoutSeconds,
        heartbeatTimeoutSeconds,
        maxTaskAttempts,
        retry,
        ...(retentionSeconds !== undefined ? { retentionSeconds } : {}),
        ...(database ? { database } : {}),
        suspend,
      },
    },
  };
}

/** The status as last written (by this controller): known fields of the right types, the rest dropped. */
export function parseStatus(value: unknown): PoolStatus {
  if (!isObj(value)) return {};
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
  const counts = <S extends string>(v: unknown, keys: readonly S[]): StateCounts<S> | undefined => {
    if (!isObj(v)) return undefined;
    return Object.fromEntries(keys.map((k) => [k, num(v[k]) ?? 0])) as StateCounts<S>;
  };
  const conditions: Condition[] = Array.isArray(value.conditions)
    ? value.conditions.flatMap((c: unknown): Condition[] => {
        if (!isObj(c)) return [];
        const { type, status, reason, message, lastTransitionTime, observedGeneration } = c;
        if (typeof type !== 'string' || (status !== 'True' && status !== 'False' && status !== 'Unknown')) return [];
        return [
          {
            type,
            status,
            reason: str(reason) ?? '',
            message: str(message) ?? '',
            lastTransitionTime: str(lastTransitionTime) ?? '',
            ...(num(observedGeneration) !== undefined ? { observedGeneration: num(observedGeneration) } : {}),
          },
        ];
      })
    : [];
  const invocations = counts(value.invocations, INVOCATION_STATES);
  const tasks = counts(value.tasks, TASK_STATES);
  const observedGeneration = num(value.observedGeneration);
  const backlog = num(value.backlog);
  const lastDispatchTime = str(value.lastDispatchTime);
  const wastedInvocations = num(value.wastedInvocations);
  const lte = isObj(value.lastTaskError) ? value.lastTaskError : undefined;
  const lastTaskError =
    lte && num(lte.taskId) !== undefined && str(lte.message) !== undefined && str(lte.time) !== undefined
      ? { taskId: num(lte.taskId) ?? 0, attempts: num(lte.attempts) ?? 0, message: str(lte.message) ?? '', time: str(lte.time) ?? '' }
      : undefined;
  const ld = isObj(value.lastDecision) ? value.lastDecision : undefined;
  const lastDecision =
    ld && num(ld.id) !== undefined && str(ld.time) !== undefined
      ? {
          time: str(ld.time) ?? '',
          id: num(ld.id) ?? 0,
          backlog: num(ld.backlog) ?? 0,
          dispatched: num(ld.dispatched) ?? 0,
          orphaned: num(ld.orphaned) ?? 0,
          terminated: num(ld.terminated) ?? 0,
          reason: str(ld.reason) ?? '',
        }
      : undefined;
  return {
    ...(observedGeneration !== undefined ? { observedGeneration } : {}),
    ...(backlog !== undefined ? { backlog } : {}),
    ...(invocations ? { invocations } : {}),
    ...(tasks ? { tasks } : {}),
    ...(lastDispatchTime ? { lastDispatchTime } : {}),
    ...(wastedInvocations !== undefined ? { wastedInvocations } : {}),
    ...(lastTaskError ? { lastTaskError } : {}),
    ...(lastDecision ? { lastDecision } : {}),
    ...(Array.isArray(value.conditions) ? { conditions } : {}),
  };
}
