// The retention sweep (per database): finished tasks and invocations (and the decision trace) older than their retention age are
// deleted in small batches (src/store/retention.ts). A pool may keep its queue's tasks and its own
// invocations for longer or shorter (spec.retentionSeconds); 0 keeps them for ever. Rows of queues and
// pools that no pool names here use the controller's default.
import type { Logger } from '../ops/logger.ts';
import { describeError } from '../ops/describe-error.ts';
import {
  deleteExpiredInvocations,
  deleteExpiredTasks,
  knownQueuesAndPools,
  targetsWithExpiredRows,
  type RetentionTarget,
} from '../store/retention.ts';
import { deleteExpiredDecisions } from '../store/decisions.ts';
import type { DatabaseRegistry } from './databases.ts';

export interface RetentionSweepDeps {
  databases: DatabaseRegistry;
  /** The pools that serve a database (by its key), with their own retention when they name one. */
  pools(databaseKey: string): Array<{ uid: string; queue: string; retentionSeconds?: number }>;
  defaultSeconds: number;
  intervalMs: number;
  /** Rows per DELETE. */
  batch?: number;
  /** Batches per queue or pool per run, so that one run stays short; the rest waits for the next run. */
  maxBatches?: number;
  active(): boolean;
  logger: Logger;
  onDeleted?(table: 'tasks' | 'invocations' | 'decisions', rows: number): void;
}

export interface RetentionReport {
  database: string;
  tasks: number;
  invocations: number;
  decisions: number;
}

export class RetentionSweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private stopped = false;

  constructor(private readonly deps: RetentionSweepDeps) {}

  start(): void {
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  async runOnce(): Promise<RetentionReport[]> {
    const reports: RetentionReport[] = [];
    if (!this.deps.active()) return reports;
    for (const { database } of this.deps.databases.inUse()) {
      const served = this.deps.pools(database.key);
      const byQueue = new Map(served.flatMap((p) => (p.retentionSeconds === undefined ? [] : [[p.queue, p.retentionSeconds] as const])));
      const byPool = new Map(served.flatMap((p) => (p.retentionSeconds === undefined ? [] : [[p.uid, p.retentionSeconds] as const])));
      try {
        // Every queue and pool with finished rows here: those with totals, and those of the pools served here.
        const known = await knownQueuesAndPools(database.db);
        const queues = new Set([...known.queues, ...served.map((p) => p.queue)]);
        const pools = new Set([...known.pools, ...served.map((p) => p.uid)]);
        const age = (key: string, own: Map<string, number>) => own.get(key) ?? this.deps.defaultSeconds;
        const taskTargets = [...queues].map((q) => ({ key: q, maxAgeSeconds: age(q, byQueue) })).filter((t) => t.maxAgeSeconds > 0);
        const poolTargets = [...pools].map((p) => ({ key: p, maxAgeSeconds: age(p, byPool) })).filter((t) => t.maxAgeSeconds > 0);
        const report: RetentionReport = { database: database.display, tasks: 0, invocations: 0, decisions: 0 };
        // Tasks first: an invocation goes only once no task points at it.
        report.tasks = await this.drain(
          await targetsWithExpiredRows(database.db, 'tasks', taskTargets),
          (t, batch) => deleteExpiredTasks(database.db, { queue: t.key, maxAgeSeconds: t.maxAgeSeconds, batch }),
          'tasks',
        );
        report.invocations = await this.drain(
          await targetsWithExpiredRows(database.db, 'invocations', poolTargets),
          (t, batch) => deleteExpiredInvocations(database.db, { poolUid: t.key, maxAgeSeconds: t.maxAgeSeconds, batch }),
          'invocations',
        );
        // The decision trace is kept as long as the invocations it explains.
        report.decisions = await this.drain(
          poolTargets,
          (t, batch) => deleteExpiredDecisions(database.db, { poolUid: t.key, maxAgeSeconds: t.maxAgeSeconds, batch }),
          'decisions',
        );
        if (report.tasks + report.invocations + report.decisions > 0)
          this.deps.logger.info('retention: finished rows deleted', { ...report });
        reports.push(report);
      } catch (error) {
        this.deps.logger.warn('retention sweep failed', { database: database.display, error: describeError(error) });
      }
    }
    return reports;
  }

  private async drain(
    targets: RetentionTarget[],
    deleteBatch: (t: RetentionTarget, batch: number) => Promise<number>,
    table: 'tasks' | 'invocations' | 'decisions',
  ): Promise<number> {
    const batch = this.deps.batch ?? 1_000;
    let total = 0;
    for (const target of targets) {
      for (let i = 0; i < (this.deps.maxBatches ?? 100); i += 1) {
        if (this.stopped) return total;
        const deleted = await deleteBatch(target, batch);
        total += deleted;
        if (deleted > 0) this.deps.onDeleted?.(table, deleted);
        if (deleted < batch) break;
      }
    }
    return total;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.runOnce().finally(() => {
        this.running = undefined;
        this.schedule();
      });
    }, this.deps.intervalMs);
    this.timer.unref?.();
  }
}
