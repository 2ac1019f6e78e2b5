// Prometheus metrics, served on /metrics by health.ts.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();
  readonly dispatched = new Counter({
    name: 'ltp_invocations_dispatched_total',
    help: 'Invoke calls made for invocation rows, by pool and result (accepted, throttled, rejected, transient).',
    labelNames: ['namespace', 'pool', 'result'] as const,
    registers: [this.registry],
  });
  readonly invokeErrors = new Counter({
    name: 'ltp_invoke_errors_total',
    help: 'Invoke calls that failed, by pool and error code.',
    labelNames: ['namespace', 'pool', 'code'] as const,
    registers: [this.registry],
  });
  readonly liveInvocations = new Gauge({
    name: 'ltp_invocations',
    help: 'Invocations of a pool by state, as counted in Postgres on the last reconcile.',
    labelNames: ['namespace', 'pool', 'state'] as const,
    registers: [this.registry],
  });
  readonly backlog = new Gauge({
    name: 'ltp_backlog_tasks',
    help: 'Due tasks waiting in the pool queue, counted up to maxConcurrency x tasksPerInvocation (a pass never counts more).',
    labelNames: ['namespace', 'pool'] as const,
    registers: [this.registry],
  });
  readonly wastedTotal = new Counter({
    name: 'ltp_invocations_wasted_total',
    help: 'Invocations a worker ran and finished (succeeded or failed) having started no task: billed for nothing.',
    labelNames: ['namespace', 'pool'] as const,
    registers: [this.registry],
  });
  readonly orphaned = new Counter({
    name: 'ltp_invocations_orphaned_total',
    help: 'Invocations ended as orphaned, by reason (StartTimeout: never started; HeartbeatLost; FunctionTimedOut).',
    labelNames: ['namespace', 'pool', 'reason'] as const,
    registers: [this.registry],
  });
  readonly tasksFinished = new Counter({
    name: 'ltp_tasks_finished_total',
    help: 'Tasks of the pool queue that finished, by result (done, failed).',
    labelNames: ['namespace', 'pool', 'result'] as const,
    registers: [this.registry],
  });
  readonly invocationDuration = new Histogram({
    name: 'ltp_invocation_duration_seconds',
    help: 'Run time of finished invocations, from the handler start to the end (orphaned: to the last heartbeat), by outcome.',
    labelNames: ['namespace', 'pool', 'outcome'] as const,
    // Lambda runs 900 s at most; the 3600 bucket is for memory. prom-client keeps each series' buckets in an
    // object keyed by the bounds, and V8 stores integer keys as array elements: up to 900 that is a dense
    // array of 901 slots, 7.6 kB per series (76 MB at 10,000 pools); a gap past 1,024 makes it a dictionary,
    // 0.7 kB per series (measured with 10,000 series).
    buckets: [0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 900, 3600],
    registers: [this.registry],
  });
  readonly gbSeconds = new Counter({
    name: 'ltp_invocation_gb_seconds_total',
    help: 'Estimated compute of finished invocations: run time times the function memory (GB), as Lambda bills it.',
    labelNames: ['namespace', 'pool'] as const,
    registers: [this.registry],
  });
  readonly poolReady = new Gauge({
    name: 'ltp_pool_ready',
    help: '1 when the pool is Ready (serving its queue), else 0.',
    labelNames: ['namespace', 'pool'] as const,
    registers: [this.registry],
  });
  readonly functionReady = new Gauge({
    name: 'ltp_function_ready',
    help: '1 when the pool function is configured so that the count stays exact (FunctionReady=True), 0 when not, absent when unknown.',
    labelNames: ['namespace', 'pool'] as const,
    registers: [this.registry],
  });
  readonly taskWait = new Histogram({
    name: 'ltp_task_wait_seconds',
    help: 'Time from a task being created to being leased.',
    labelNames: ['namespace', 'pool'] as const,
    buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
    registers: [this.registry],
  });
  readonly reconcileDuration = new Histogram({
    name: 'ltp_reconcile_duration_seconds',
    help: 'Duration of one pool reconcile pass, by outcome.',
    labelNames: ['outcome'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly retentionDeleted = new Counter({
    name: 'ltp_retention_deleted_rows_total',
    help: 'Finished rows deleted by retention, by table (tasks, invocations).',
    labelNames: ['table'] as const,
    registers: [this.registry],
  });
  readonly memoryReleases = new Counter({
    name: 'ltp_controller_memory_releases_total',
    help: 'Full garbage collections run to give memory back to the system once the controller went quiet after a busy spell.',
    registers: [this.registry],
  });
  readonly memoryReleasedBytes = new Counter({
    name: 'ltp_controller_memory_released_bytes_total',
    help: 'Resident memory those collections gave back.',
    registers: [this.registry],
  });
  readonly isLeader = new Gauge({
    name: 'ltp_leader',
    help: '1 while this replica holds the leader lease and dispatches.',
    registers: [this.registry],
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /** Drops every series of a pool that is gone. */
  async forgetPool(namespace: string, pool: string): Promise<void> {
    const labels = { namespace, pool };
    for (const metric of [this.backlog, this.wastedTotal, this.taskWait, this.gbSeconds, this.poolReady, this.functionReady]) {
      metric.remove(labels);
    }
    // Metrics with a further label: remove every series of the pool.
    for (const metric of [
      this.liveInvocations,
      this.orphaned,
      this.tasksFinished,
      this.invocationDuration,
      this.dispatched,
      this.invokeErrors,
    ]) {
      await removeMatching(metric, labels);
    }
  }
}

/** Removes every series of a metric whose labels include `labels` (histogram buckets share their series' labels but `le`). */
async function removeMatching(metric: Counter<string> | Gauge<string> | Histogram<string>, labels: Record<string, string>): Promise<void> {
  const { values } = await metric.get();
  const seen = new Set<string>();
  for (const value of values) {
    const { le: _le, ...own } = value.labels as Record<string, string>;
    if (!Object.entries(labels).every(([k, v]) => own[k] === v)) continue;
    const key = JSON.stringify(own);
    if (seen.has(key)) continue;
    seen.add(key);
    metric.remove(own);
  }
}
