// The LambdaTaskPool custom resource (lambda.taskpool.io/v1alpha1), as the controller sees it after parsing.
// crds/lambdataskpools.yaml is the schema the API server enforces; parse.ts re-checks what a schema cannot.

export const GROUP = 'lambda.taskpool.io';
export const VERSION = 'v1alpha1';
export const KIND = 'LambdaTaskPool';
export const PLURAL = 'lambdataskpools';
export const FINALIZER = 'lambda.taskpool.io/finalizer';

export const INVOCATION_STATES = ['created', 'pending', 'ready', 'running', 'succeeded', 'failed', 'orphaned', 'terminated'] as const;
export type InvocationState = (typeof INVOCATION_STATES)[number];
export const LIVE_INVOCATION_STATES = ['created', 'pending', 'ready', 'running'] as const;
export type LiveInvocationState = (typeof LIVE_INVOCATION_STATES)[number];

export const TASK_STATES = ['created', 'leased', 'done', 'failed', 'cancelled'] as const;
export type TaskState = (typeof TASK_STATES)[number];
/** Task states no row ever leaves. */
export const FINISHED_TASK_STATES = ['done', 'failed', 'cancelled'] as const satisfies readonly TaskState[];

export interface FunctionRef {
  /** A function name, a partial ARN or a full ARN. */
  name: string;
  qualifier?: string;
  region?: string;
  /**
   * Managed: the controller sets the function's async invoke config (retries 0, event age equal to
   * startTimeoutSeconds). Unmanaged (the default): it only reports what it finds in FunctionReady.
   */
  asyncConfig?: 'Managed' | 'Unmanaged';
}

export interface SecretKeyRef {
  name: string;
  /** The key in the Secret whose value is the Postgres URL. Defaults to `url`. */
  key: string;
}

export interface PoolSpec {
  function: FunctionRef;
  queue: string;
  maxConcurrency: number;
  tasksPerInvocation: number;
  startTimeoutSeconds: number;
  heartbeatTimeoutSeconds: number;
  maxTaskAttempts: number;
  retry: RetryPolicy;
  /** Keep this queue's finished tasks and this pool's finished invocations (at least an hour) this long; 0 keeps them for ever. Default: the controller's. */
  retentionSeconds?: number;
  database?: { secretRef: SecretKeyRef };
  suspend: boolean;
}

/** How long a failed attempt waits before it is due again: exponential from initialDelaySeconds, jittered. */
export interface RetryPolicy {
  initialDelaySeconds: number;
  maxDelaySeconds: number;
}

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export type StateCounts<S extends string> = Record<S, number>;

export interface PoolStatus {
  observedGeneration?: number;
  backlog?: number;
  invocations?: StateCounts<InvocationState>;
  tasks?: StateCounts<TaskState>;
  lastDispatchTime?: string;
  /** Invocations a worker ran and finished (succeeded or failed) having started no task, since the pool began (ltp.pool_totals). */
  wastedInvocations?: number;
  /** The latest task that failed for good. */
  lastTaskError?: { taskId: number; attempts: number; message: string; time: string };
  /** The latest dispatch pass that changed something: what it saw, what it did and why (see `lambda-task-pool trace`). */
  lastDecision?: DecisionSummary;
  conditions?: Condition[];
}

export interface DecisionSummary {
  time: string;
  /** The decision's id in ltp.decisions (the trace joins invocations on it). */
  id: number;
  backlog: number;
  dispatched: number;
  orphaned: number;
  terminated: number;
  reason: string;
}

export interface PoolMeta {
  namespace: string;
  name: string;
  uid: string;
  generation: number;
  resourceVersion?: string;
  deletionTimestamp?: string;
  finalizers: string[];
}

/** A pool whose spec passed parse.ts: every field is present and within bounds. */
export interface Pool {
  meta: PoolMeta;
  spec: PoolSpec;
  status: PoolStatus;
}

export const SPEC_DEFAULTS = {
  maxConcurrency: 10,
  tasksPerInvocation: 1,
  startTimeoutSeconds: 900,
  heartbeatTimeoutSeconds: 120,
  maxTaskAttempts: 3,
  suspend: false,
  secretKey: 'url',
  retry: { initialDelaySeconds: 10, maxDelaySeconds: 600 },
} as const;

export const SPEC_BOUNDS = {
  maxConcurrency: { min: 1, max: 1000 },
  tasksPerInvocation: { min: 1, max: 100 },
  startTimeoutSeconds: { min: 10, max: 21600 },
  heartbeatTimeoutSeconds: { min: 5, max: 3600 },
  maxTaskAttempts: { min: 1, max: 100 },
} as const;

/** 0 keeps finished rows for ever; otherwise at least a minute, at most ten years. */
export const RETENTION_BOUNDS = { min: 0, max: 315_360_000 } as const;

export const RETRY_BOUNDS = {
  initialDelaySeconds: { min: 0, max: 3600 },
  maxDelaySeconds: { min: 0, max: 86400 },
} as const;

/** Queue names: letters, digits, `.`, `_`, `-`, `:` and `/`, 1 to 128 characters, starting with a letter or digit. */
export const QUEUE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/;
/** A function name (1-64 chars), a partial ARN (`123456789012:function:name`) or a full Lambda function ARN. */
export const FUNCTION_NAME_PATTERN =
  /^(arn:aws[a-zA-Z-]*:lambda:[a-z]{2}(-gov)?-[a-z]+-\d{1}:\d{12}:function:)?(\d{12}:function:)?[a-zA-Z0-9-_]{1,64}(:(\$LATEST|[a-zA-Z0-9-_]{1,128}))?$/;
export const QUALIFIER_PATTERN = /^(\$LATEST|[a-zA-Z0-9-_]{1,128})$/;
export const REGION_PATTERN = /^[a-z]{2}(-gov)?-[a-z]+-\d{1}$/;
export const SECRET_NAME_PATTERN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
export const SECRET_KEY_PATTERN = /^[-._a-zA-Z0-9]{1,253}$/;
