// A LambdaTaskPool as `status` shows it: what the pool asks for and what the controller last wrote in its
// status. Pure: it reads an object as the API server returned it, and trusts nothing it did not check.
import { parseMeta, parseStatus } from '../api/parse.ts';
import type { Condition, InvocationState, StateCounts, TaskState } from '../api/types.ts';

export interface PoolSummary {
  namespace: string;
  name: string;
  queue: string | null;
  function: string | null;
  suspend: boolean;
  maxConcurrency: number | null;
  tasksPerInvocation: number | null;
  createdAt: string | null;
  generation: number;
  observedGeneration: number | null;
  /** Ready's status (True, False or Unknown when the controller has not written it yet). */
  ready: Condition['status'];
  reason: string;
  backlog: number | null;
  invocations: StateCounts<InvocationState> | null;
  tasks: StateCounts<TaskState> | null;
  lastDispatchTime: string | null;
  conditions: Condition[];
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

export function summarizePool(obj: unknown): PoolSummary {
  const meta = parseMeta(obj);
  const root = isObj(obj) ? obj : {};
  const spec = isObj(root.spec) ? root.spec : {};
  const status = parseStatus(root.status);
  const metadata = isObj(root.metadata) ? root.metadata : {};
  const fn = isObj(spec.function) ? spec.function : {};
  const conditions = status.conditions ?? [];
  const ready = conditions.find((c) => c.type === 'Ready');
  return {
    namespace: meta.namespace,
    name: meta.name,
    queue: typeof spec.queue === 'string' ? spec.queue : null,
    function: typeof fn.name === 'string' ? fn.name + (typeof fn.qualifier === 'string' ? `:${fn.qualifier}` : '') : null,
    suspend: spec.suspend === true,
    maxConcurrency: typeof spec.maxConcurrency === 'number' ? spec.maxConcurrency : null,
    tasksPerInvocation: typeof spec.tasksPerInvocation === 'number' ? spec.tasksPerInvocation : null,
    createdAt: timestampOf(metadata.creationTimestamp),
    generation: meta.generation,
    observedGeneration: status.observedGeneration ?? null,
    ready: ready?.status ?? 'Unknown',
    reason: ready?.reason ?? (conditions.length === 0 ? 'NotReconciled' : ''),
    backlog: status.backlog ?? null,
    invocations: status.invocations ?? null,
    tasks: status.tasks ?? null,
    lastDispatchTime: status.lastDispatchTime ?? null,
    conditions,
  };
}

function timestampOf(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (value instanceof Date && !Number.isNaN(value.getTime())) return value.toISOString();
  return null;
}

/** Invocations accepted or about to be, not started yet: created + pending. */
export function queuedInvocations(p: PoolSummary): number | null {
  return p.invocations ? p.invocations.created + p.invocations.pending : null;
}

/** Invocations a worker has started and not finished: ready + running. */
export function startedInvocations(p: PoolSummary): number | null {
  return p.invocations ? p.invocations.ready + p.invocations.running : null;
}
