// The stranded sweep (per database, not per pool): nothing may stay live, and no task may stay leased,
// under a pool that no longer serves that database. A pool deleted after its finalizer was removed by
// hand, or deleted while the controller was down, or moved to another database (its Secret changed),
// never gets the pass that would end its invocations there. Every interval, and soon after a database
// loses its last pool, this sweep:
//   - ends as terminated the live invocations of pools that are gone (the API server says so) or that
//     now resolve to another database, under the pool's advisory lock;
//   - gives back the tasks still leased by ended invocations, the whole database over (planRelease);
//   - closes a draining database once nothing of ours is left in it, or once it has failed for long enough.
// When in doubt (no access to a namespace, the API server down, a pool not resolved yet) it leaves rows alone.
import type { Logger } from '../ops/logger.ts';
import { describeError } from '../ops/describe-error.ts';
import { planRelease } from '../planner/release.ts';
import { advisoryXactLock, withTransaction, type Db } from '../store/db.ts';
import { liveOwners, terminatePoolInvocations, type PoolIdentity } from '../store/invocation-store.ts';
import { findStrandedLeases, releaseLeases } from '../store/task-store.ts';
import type { Database, DatabaseRegistry } from './databases.ts';

export interface StrandedSweepDeps {
  databases: DatabaseRegistry;
  /** Whether a pool with this uid is in the informer cache. */
  knownUid(uid: string): boolean;
  /** Whether the API server says the pool is gone (404, or the name now has another uid); undefined when unsure. */
  isGone(pool: PoolIdentity): Promise<boolean | undefined>;
  /** Only the replica that dispatches sweeps. */
  active(): boolean;
  logger: Logger;
  intervalMs: number;
  random?: () => number;
  onSwept?(report: StrandedSweepReport): void;
}

export interface StrandedSweepReport {
  database: string;
  terminated: Array<{ pool: PoolIdentity; reason: 'PoolGone' | 'PoolMoved'; ids: number[] }>;
  releasedTasks: number;
  failedTasks: number;
  heldTasks: number;
  closed: boolean;
}

/** Stranded leases released per database per run; the rest wait for the next run. */
const RELEASE_BATCH = 1_000;

export class StrandedSweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly deps: StrandedSweepDeps) {}

  start(): void {
    this.schedule(this.deps.intervalMs);
  }

  /** Runs soon (a database just lost its last pool). */
  poke(): void {
    this.schedule(500);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** One run over every database in use. Never throws: a database that fails is tried again next run. */
  async runOnce(): Promise<StrandedSweepReport[]> {
    const reports: StrandedSweepReport[] = [];
    if (!this.deps.active()) return reports;
    for (const { database, poolUids, draining } of this.deps.databases.inUse()) {
      try {
        reports.push(await this.sweepDatabase(database, poolUids, draining));
        if (draining) this.deps.databases.drainSucceeded(database.key);
      } catch (error) {
        this.deps.logger.warn('stranded sweep failed', { database: database.display, error: describeError(error) });
        // A draining database that keeps failing (its server gone, its old password refused) is let go in the end.
        if (draining) {
          await this.deps.databases
            .drainFailed(database.key, error)
            .catch((closeError: unknown) =>
              this.deps.logger.warn('closing a draining database failed', { database: database.display, error: describeError(closeError) }),
            );
        }
      }
    }
    return reports;
  }

  /**
   * Ends a pool's live invocations in a database right away, if the API server confirms the pool is gone
   * (its object was deleted without its finalizer running).
   */
  async sweepGonePool(database: Database, pool: PoolIdentity): Promise<number[]> {
    if ((await this.deps.isGone(pool)) !== true) return [];
    return this.terminate(database.db, pool, 'PoolGone');
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (this.running) return this.schedule(ms);
      this.running = this.runOnce()
        .then((reports) => reports.forEach((r) => this.deps.onSwept?.(r)))
        .finally(() => {
          this.running = undefined;
          this.schedule(this.deps.intervalMs);
        });
    }, ms);
    this.timer.unref?.();
  }

  private async sweepDatabase(database: Database, poolUids: ReadonlySet<string>, draining: boolean): Promise<StrandedSweepReport> {
    const { db, display } = database;
    const report: StrandedSweepReport = {
      database: display,
      terminated: [],
      releasedTasks: 0,
      failedTasks: 0,
      heldTasks: 0,
      closed: false,
    };
    for (const owner of await liveOwners(db)) {
      if (poolUids.has(owner.uid)) continue;
      let reason: 'PoolGone' | 'PoolMoved' | undefined;
      if (this.deps.knownUid(owner.uid)) {
        // Moved means another server or database: a new password for the same one (a new key) is not a move.
        const now = this.deps.databases.lastResolved(owner.uid);
        if (now && now.identity !== database.identity) reason = 'PoolMoved';
      } else if ((await this.deps.isGone(owner)) === true) {
        reason = 'PoolGone';
      }
      if (!reason) continue;
      const ids = await this.terminate(db, owner, reason);
      if (ids.length > 0) report.terminated.push({ pool: owner, reason, ids });
    }

    const stranded = await findStrandedLeases(db, { limit: RELEASE_BATCH });
    const nowMs = (await db.query<{ now: Date }>('SELECT now() AS now')).rows[0]?.now.getTime() ?? Date.now();
    const release = planRelease(stranded, { now: nowMs, random: this.deps.random });
    const released = await releaseLeases(db, { ...release, reason: 'released: its invocation ended before finishing it' });
    report.releasedTasks = released.created;
    report.failedTasks = released.failed;
    report.heldTasks = release.held.length;
    if (report.terminated.length > 0 || released.created + released.failed > 0) {
      this.deps.logger.info('stranded sweep', {
        database: display,
        terminated: report.terminated.map((t) => ({
          pool: `${t.pool.namespace}/${t.pool.name}`,
          reason: t.reason,
          invocations: t.ids.length,
        })),
        releasedTasks: report.releasedTasks,
        failedTasks: report.failedTasks,
        heldTasks: report.heldTasks,
      });
    }

    if (draining && release.held.length === 0 && stranded.length < RELEASE_BATCH) {
      const left = (await liveOwners(db)).filter((o) => !poolUids.has(o.uid) && !this.deps.knownUid(o.uid));
      if (left.length === 0 || (await Promise.all(left.map((o) => this.deps.isGone(o)))).every((g) => g === false)) {
        await this.deps.databases.closeDrained(database.key);
        report.closed = true;
      }
    }
    return report;
  }

  private async terminate(db: Db, pool: PoolIdentity, reason: 'PoolGone' | 'PoolMoved'): Promise<number[]> {
    const message =
      reason === 'PoolGone'
        ? `the pool ${pool.namespace}/${pool.name} no longer exists`
        : `the pool ${pool.namespace}/${pool.name} now uses another database`;
    return withTransaction(db, async (client) => {
      await advisoryXactLock(client, `lambda-task-pool:pool:${pool.uid}`);
      return terminatePoolInvocations(client, { poolUid: pool.uid, code: reason, message });
    });
  }
}
