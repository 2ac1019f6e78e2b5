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
    help: 'Created tasks waiting in the pool queue.',
    labelNames: ['namespace', 'pool'] as const,
    registers: [this.registry],
  });
  readonly wasted = new Gauge({
    name: 'ltp_invocations_wasted',
    help: 'Invocations of a pool that succeeded having leased no task (as counted in Postgres).',
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
  readonly isLeader = new Gauge({
    name: 'ltp_leader',
    help: '1 while this replica holds the leader lease and dispatches.',
    registers: [this.registry],
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  forgetPool(namespace: string, pool: string): void {
    for (const metric of [this.liveInvocations, this.backlog, this.wasted, this.taskWait]) {
      metric.remove({ namespace, pool });
    }
  }
}
