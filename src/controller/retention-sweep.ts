// The retention sweep (per database): finished tasks and invocations (and the decision trace) older than their retention age are
// deleted in small batches (src/store/retention.ts). A pool may keep its queue's tasks and its own
// invocations for longer or shorter (spec.retentionSeconds); 0 keeps them for ever. A queue's retention
// comes only from the pool that holds its claim (ltp.queue_claims, queueRetention below): a pool refused its
// queue (QueueConflict, or the tenancy policy) must not shorten how long another pool's finished tasks are
// kept. A pool's own invocations follow its own retention. Queues and pools another controller serves
// (another release or cluster on the same database) follow the retention that controller recorded on the
// claim; the rest take this controller's default.
import type { Logger } from '../ops/logger.ts';
import { describeError } from '../ops/describe-error.ts';
import {
  deleteExpiredInvocations,
  deleteExpiredTasks,
  knownQueuesAndPools,
  queueHolders,
  targetsWithExpiredRows,
  type QueueHolder,
  type RetentionTarget,
} from '../store/retention.ts';
import { deleteExpiredDecisions } from '../store/decisions.ts';
import type { DatabaseRegistry } from './databases.ts';
import { WASTE_LOOKBACK } from './pass-act.ts';

/** The least time a pool's finished invocations (and decisions) are kept, whatever its retention. */
export const INVOCATIONS_KEPT_AT_LEAST_SECONDS = WASTE_LOOKBACK.withinSeconds;

export interface ServedPool {
  uid: string;
  queue: string;
  retentionSeconds?: number;
  /** Whether the tenancy policy lets the pool use its queue (only then does it set the queue's retention). */
  queueAllowed: boolean;
}

export interface RetentionSweepDeps {
  databases: DatabaseRegistry;
  /**
   * The pools that use a database (by its identity, host:port/database: a pool whose Secret reaches it by
   * another URL or a rotated password is still one of them), with their own retention when they name one.
   */
  pools(databaseIdentity: string): ServedPool[];
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
      const served = this.deps.pools(database.identity);
      try {
        // Every queue and pool with finished rows here: those with totals, and those of the pools served here.
        const known = await knownQueuesAndPools(database.db);
        const queues = new Set([...known.queues, ...served.map((p) => p.queue)]);
        const pools = new Set([...known.pools, ...served.map((p) => p.uid)]);
        const holders = await queueHolders(database.db);
        const taskTargets = queueRetention([...queues], served, holders, this.deps.defaultSeconds).filter((t) => t.maxAgeSeconds > 0);
        // A pool's invocations stay at least as long as the recent window its passes read (the waste streak):
        // a shorter retention deleted the streak, and a wasting pool went back from one probe to full bursts.
        const poolTargets = poolRetention([...pools], served, holders, this.deps.defaultSeconds)
          .filter((t) => t.maxAgeSeconds > 0)
          .map((t) => ({ ...t, maxAgeSeconds: Math.max(t.maxAgeSeconds, INVOCATIONS_KEPT_AT_LEAST_SECONDS) }));
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
          await targetsWithExpiredRows(database.db, 'decisions', poolTargets),
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

/**
 * How long each queue's finished tasks are kept here. When this controller serves the pool that holds the
 * queue's claim: that pool's retention if the tenancy policy lets it use the queue, the default otherwise.
 * When another controller serves the holder: the retention it recorded on the claim, while the claim is fresh.
 * The default when no pool holds the queue, or its holder is gone (a stale claim). A pool that only names the
 * queue (refused it: QueueConflict, or the policy) never sets it.
 */
export function queueRetention(
  queues: readonly string[],
  served: ReadonlyArray<ServedPool>,
  holders: ReadonlyMap<string, QueueHolder>,
  defaultSeconds: number,
): RetentionTarget[] {
  const byUid = new Map(served.map((p) => [p.uid, p]));
  return queues.map((queue) => {
    const claim = holders.get(queue);
    const holder = byUid.get(claim?.uid ?? '');
    if (holder) {
      const own = holder.queue === queue && holder.queueAllowed ? holder.retentionSeconds : undefined;
      return { key: queue, maxAgeSeconds: own ?? defaultSeconds };
    }
    return { key: queue, maxAgeSeconds: claim?.retentionSeconds ?? defaultSeconds };
  });
}

/**
 * How long each pool's finished invocations (and its decision trace) are kept here: its own retention when
 * this controller serves it (the default when it names none); for a pool another controller serves, the
 * retention recorded on the fresh claim it holds; the default for the rest (pools gone, or holding no claim).
 */
export function poolRetention(
  pools: readonly string[],
  served: ReadonlyArray<ServedPool>,
  holders: ReadonlyMap<string, QueueHolder>,
  defaultSeconds: number,
): RetentionTarget[] {
  const byUid = new Map(served.map((p) => [p.uid, p]));
  const recorded = new Map(
    [...holders.values()].flatMap((h) => (h.retentionSeconds === undefined ? [] : [[h.uid, h.retentionSeconds] as const])),
  );
  return pools.map((uid) => {
    const mine = byUid.get(uid);
    const seconds = mine ? mine.retentionSeconds : recorded.get(uid);
    return { key: uid, maxAgeSeconds: seconds ?? defaultSeconds };
  });
}
