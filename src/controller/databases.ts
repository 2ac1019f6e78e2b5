// Which database a pool uses, and one connection pool per database. A pool without a Secret reference
// uses the controller's default database, if its namespace is allowed to. A database is migrated on
// first use and LISTENed on, so inserts and invocation changes wake the right pool.
import { Reason } from '../api/conditions.ts';
import type { Pool } from '../api/types.ts';
import type { Logger } from '../ops/logger.ts';
import { parseDatabaseUrl, DatabaseUrlError, type DatabaseTarget } from '../store/database-url.ts';
import { createDb, type Db } from '../store/db.ts';
import { DbClock } from '../store/db-clock.ts';
import { migrate } from '../store/migrate.ts';
import { NotificationListener, type Channel } from '../store/notifications.ts';
import { apiStatus, type KubeApi } from './kube.ts';
import { describeError } from '../ops/describe-error.ts';
import { Connectivity } from './connectivity.ts';

/**
 * How long after a database is first opened passes wait for it to be connected to and migrated. After that
 * they do not wait at all: one that does not answer, or whose owner holds the migration lock, is reported
 * and looked at again later, and never holds a worker that other pools need.
 */
const PREPARE_GRACE_MS = 10_000;

const delay = <T>(ms: number, value: T) =>
  new Promise<T>((resolve) => {
    setTimeout(() => resolve(value), ms).unref();
  });

export interface Database {
  /** An opaque key for this database's connections (one per URL: a rotated password is a new key). */
  key: string;
  display: string;
  /**
   * The server and database the URL names, without user or password (host:port/database): the same after a
   * credential rotation, so a pool whose Secret changed only its password has not moved.
   */
  identity: string;
  db: Db;
  connectivity: Connectivity;
  /** The database's clock, read by the connectivity probe: rows' invoked_at are written on it (db-clock.ts). */
  clock: DbClock;
}

/** The connectivity probe: it also reads the database's clock, with when it was sent and answered here. */
export function clockProbe(db: Db, clock: DbClock): () => Promise<void> {
  return async () => {
    const sentAt = performance.now();
    const result = await db.query<{ ms: number }>('SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS ms');
    clock.record({ sentAt, answeredAt: performance.now(), databaseMs: Number(result.rows[0]?.ms) });
  };
}

export type DatabaseResolution = { ok: true; database: Database } | { ok: false; reason: Reason; message: string };

export interface DatabaseRegistryOptions {
  kube: KubeApi;
  defaultUrl?: string;
  /** Namespaces whose pools may use the default database; empty means every namespace. */
  allowedDefaultNamespaces: readonly string[];
  /** Namespaces whose Secrets may be read; empty means every namespace the controller watches. */
  secretNamespaces?: readonly string[];
  onNotify(databaseKey: string, channel: Channel, payload: string): void;
  /** The listener connected again after losing its connection: notifications may have been missed. */
  onListenerReconnected?(databaseKey: string): void;
  /** A database lost its last pool: the stranded sweep should look at it soon. */
  onDraining?(): void;
  logger: Logger;
  poolSize?: number;
  /**
   * How long the stranded sweep may keep failing on a draining database (its server gone, its old password
   * refused) before it is closed anyway, what pools left live in it not ended (default 10 minutes).
   */
  drainGiveUpMs?: number;
}

/** How long a draining database may stay unreachable to the stranded sweep before it is closed anyway. */
const DRAIN_GIVE_UP_MS = 10 * 60_000;

interface Entry {
  database: Database;
  listener: NotificationListener;
  migrated: Promise<void>;
  /** When this entry was created: passes wait for its migration only during PREPARE_GRACE_MS from then. */
  openedAt: number;
  ready: boolean;
  /** No pool uses it any more: it closes once the sweeper has ended what pools left live in it. */
  draining: boolean;
  /** While draining: when the stranded sweep first failed on it since it last succeeded. */
  drainFailingSince?: number;
}

export class DatabaseRegistry {
  private readonly entries = new Map<string, Entry>();
  /** The database each pool uid last resolved to: a deleted pool is finalized there even if its Secret is gone. */
  private readonly byPool = new Map<string, { database: Database; url: string }>();
  /** How many pools last resolved to each URL: whether one still uses it is one lookup, not a walk of every pool. */
  private readonly poolsByUrl = new Map<string, number>();
  private readonly defaultTarget: DatabaseTarget | undefined;
  private counter = 0;

  constructor(private readonly options: DatabaseRegistryOptions) {
    this.defaultTarget = options.defaultUrl ? parseDatabaseUrl(options.defaultUrl, 'the default database URL') : undefined;
  }

  async resolve(pool: Pool): Promise<DatabaseResolution> {
    const target = await this.targetFor(pool);
    if (!target.ok) return target;
    const entry = this.entryFor(target.target);
    // Once migrated, a database is resolved at once: no race and no timer on every pass.
    if (!entry.ready) {
      const waitMs = Math.max(0, entry.openedAt + PREPARE_GRACE_MS - Date.now());
      try {
        const prepared = await Promise.race([entry.migrated.then(() => true), delay(waitMs, false)]);
        if (!prepared) {
          return {
            ok: false,
            reason: Reason.DatabaseUnavailable,
            message: `database ${target.target.display} is unavailable: connecting to it and applying its migrations has not finished (is it reachable, and is its migration lock free?); retrying`,
          };
        }
      } catch (error) {
        return {
          ok: false,
          reason: Reason.DatabaseUnavailable,
          message: `database ${target.target.display} is unavailable: ${describeError(error)}`,
        };
      }
    }
    const previous = this.byPool.get(pool.meta.uid);
    this.setPool(pool.meta.uid, { database: entry.database, url: target.target.url });
    entry.draining = false;
    delete entry.drainFailingSince;
    if (previous && previous.url !== target.target.url) this.drainIfUnused(previous.url);
    return { ok: true, database: entry.database };
  }

  /**
   * Opens the default database up front (migrating it and listening), so that the stranded sweep covers it
   * even before, or without, any pool resolving to it. A failure is retried by the first pool that needs it.
   */
  openDefault(): void {
    if (!this.defaultTarget) return;
    this.entryFor(this.defaultTarget).migrated.catch((error: unknown) =>
      this.options.logger.warn('default database not ready yet', { database: this.defaultTarget?.display, error: describeError(error) }),
    );
  }

  lastResolved(uid: string): Database | undefined {
    return this.byPool.get(uid)?.database;
  }

  /** Every database ready for use (draining ones too), each with the uids of the pools that last resolved to it. */
  inUse(): Array<{ database: Database; poolUids: Set<string>; draining: boolean }> {
    const byKey = new Map<string, { database: Database; poolUids: Set<string>; draining: boolean }>();
    for (const entry of this.entries.values()) {
      if (entry.ready) byKey.set(entry.database.key, { database: entry.database, poolUids: new Set(), draining: entry.draining });
    }
    for (const [uid, { database }] of this.byPool) byKey.get(database.key)?.poolUids.add(uid);
    return [...byKey.values()];
  }

  /** The pool is gone: its database drains, then closes, once no other pool uses it. */
  forget(uid: string): void {
    const previous = this.byPool.get(uid);
    this.setPool(uid, undefined);
    if (previous) this.drainIfUnused(previous.url);
  }

  /** The database a pool last resolved to (undefined: none any more), with the count of pools per URL. */
  private setPool(uid: string, to: { database: Database; url: string } | undefined): void {
    const previous = this.byPool.get(uid);
    if (to) {
      this.byPool.set(uid, to);
      this.poolsByUrl.set(to.url, (this.poolsByUrl.get(to.url) ?? 0) + 1);
    } else {
      this.byPool.delete(uid);
    }
    if (!previous) return;
    const left = (this.poolsByUrl.get(previous.url) ?? 1) - 1;
    if (left > 0) this.poolsByUrl.set(previous.url, left);
    else this.poolsByUrl.delete(previous.url);
  }

  private usedByAPool(url: string): boolean {
    return this.poolsByUrl.has(url);
  }

  /**
   * A rotated Secret or a deleted pool must not leave a connection pool and a listener behind, nor live
   * invocations: the database drains first (the stranded sweep ends what is left), then closes.
   */
  private drainIfUnused(url: string): void {
    if (url === this.defaultTarget?.url || this.usedByAPool(url)) return;
    const entry = this.entries.get(url);
    if (!entry || entry.draining) return;
    entry.draining = true;
    // Only the credentials changed (a rotated password): the same database is open under the new ones, and
    // its stranded sweep covers every row of it. The old ones may already be refused: close them now.
    const successor = [...this.entries.values()].find(
      (e) => e !== entry && !e.draining && e.ready && e.database.identity === entry.database.identity,
    );
    if (successor) {
      this.close(url, entry, 'connections under the old credentials closed: the same database is in use under new ones').catch(
        (error: unknown) =>
          this.options.logger.warn("closing the old credentials' connections failed", {
            database: entry.database.display,
            error: describeError(error),
          }),
      );
      return;
    }
    this.options.logger.info('database no longer used by any pool; draining', { database: entry.database.display });
    this.options.onDraining?.();
  }

  /** The stranded sweep left nothing live of ours in a draining database: close its connections. */
  async closeDrained(key: string): Promise<void> {
    const found = this.drainingEntry(key);
    if (!found) return;
    await this.close(found.url, found.entry, 'database no longer used; connections closed');
  }

  /**
   * The stranded sweep failed on a draining database. Once it has failed for drainGiveUpMs without a success
   * in between, the database is closed anyway: its connection pool, listener and probe would otherwise retry
   * an address that may never answer again, for ever. Returns whether it was closed.
   */
  async drainFailed(key: string, error: unknown): Promise<boolean> {
    const found = this.drainingEntry(key);
    if (!found) return false;
    const { url, entry } = found;
    const now = Date.now();
    entry.drainFailingSince ??= now;
    if (now - entry.drainFailingSince < (this.options.drainGiveUpMs ?? DRAIN_GIVE_UP_MS)) return false;
    this.options.logger.warn(
      'draining database unreachable; closing it without ending what pools left live in it (a pool that uses it again sweeps it)',
      { database: entry.database.display, failingForMs: now - entry.drainFailingSince, error: describeError(error) },
    );
    await this.close(url, entry, 'database no longer used; connections closed');
    return true;
  }

  /** The stranded sweep succeeded on a draining database: its give-up clock starts again. */
  drainSucceeded(key: string): void {
    const found = this.drainingEntry(key);
    if (found) delete found.entry.drainFailingSince;
  }

  /** A draining entry by its key, if no pool uses its URL again. */
  private drainingEntry(key: string): { url: string; entry: Entry } | undefined {
    const found = [...this.entries].find(([, e]) => e.database.key === key && e.draining);
    if (!found) return undefined;
    const [url, entry] = found;
    if (this.usedByAPool(url)) return undefined;
    return { url, entry };
  }

  private async close(url: string, entry: Entry, message: string): Promise<void> {
    if (this.entries.get(url) !== entry) return;
    this.entries.delete(url);
    entry.database.connectivity.stop();
    await entry.listener.stop();
    await entry.database.db.end().catch(() => undefined);
    this.options.logger.info(message, { database: entry.database.display });
  }

  async closeAll(): Promise<void> {
    const entries = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(
      entries.map(async (e) => {
        e.database.connectivity.stop();
        await e.listener.stop();
        await e.database.db.end().catch(() => undefined);
      }),
    );
  }

  private async targetFor(pool: Pool): Promise<{ ok: true; target: DatabaseTarget } | { ok: false; reason: Reason; message: string }> {
    const ref = pool.spec.database?.secretRef;
    const ns = pool.meta.namespace;
    if (!ref) {
      if (!this.defaultTarget) {
        return {
          ok: false,
          reason: Reason.NoDefaultDatabase,
          message: 'the controller has no default database: set spec.database.secretRef',
        };
      }
      const allowed = this.options.allowedDefaultNamespaces;
      if (allowed.length > 0 && !allowed.includes(ns)) {
        return {
          ok: false,
          reason: Reason.DefaultDatabaseNotAllowed,
          message: `namespace ${ns} may not use the default database: set spec.database.secretRef to a Secret in this namespace`,
        };
      }
      return { ok: true, target: this.defaultTarget };
    }
    const readable = this.options.secretNamespaces ?? [];
    if (readable.length > 0 && !readable.includes(ns)) {
      return {
        ok: false,
        reason: Reason.SecretNotAllowed,
        message: `this controller reads Secrets only in ${readable.join(', ')} (secrets.namespaces); a pool in ${ns} must use the default database`,
      };
    }
    let secret: Awaited<ReturnType<KubeApi['readSecretKey']>>;
    try {
      secret = await this.options.kube.readSecretKey(ns, ref.name, ref.key);
    } catch (error) {
      // Said in the pool's status, not only in a log line: the pool otherwise showed no condition at all.
      const status = apiStatus(error);
      if (status === 403) {
        return {
          ok: false,
          reason: Reason.SecretForbidden,
          message: `the controller may not read Secret ${ns}/${ref.name}: grant it get on secrets in ${ns} (the chart's secrets.namespaces)`,
        };
      }
      return { ok: false, reason: Reason.ReconcileError, message: `could not read Secret ${ns}/${ref.name}: ${describeError(error)}` };
    }
    if (!secret.found) return { ok: false, reason: Reason.SecretNotFound, message: `Secret ${ns}/${ref.name} was not found` };
    if (secret.value === undefined) {
      return { ok: false, reason: Reason.SecretInvalid, message: `Secret ${ns}/${ref.name} has no key "${ref.key}"` };
    }
    try {
      return {
        ok: true,
        target: parseDatabaseUrl(secret.value, `key "${ref.key}" of Secret ${ns}/${ref.name}`, { allowLocalFiles: false }),
      };
    } catch (error) {
      if (error instanceof DatabaseUrlError) return { ok: false, reason: Reason.SecretInvalid, message: error.message };
      throw error;
    }
  }

  private entryFor(target: DatabaseTarget): Entry {
    const existing = this.entries.get(target.url);
    if (existing) return existing;
    const key = `db${++this.counter}`;
    const db = createDb(target, { max: this.options.poolSize ?? 20, applicationName: 'lambda-task-pool-controller' });
    let connections = 0;
    const listener = new NotificationListener({
      url: target.url,
      onNotify: (channel, payload) => this.options.onNotify(key, channel, payload),
      onConnected: () => {
        connections += 1;
        if (connections > 1) this.options.onListenerReconnected?.(key);
      },
      onError: (error) =>
        this.options.logger.warn('database listener lost its connection; reconnecting', {
          database: target.display,
          error: describeError(error),
        }),
    });
    const clock = new DbClock();
    const connectivity = new Connectivity({
      probe: clockProbe(db, clock),
      onLost: (error) =>
        this.options.logger.warn('database unreachable; orphaning by heartbeat paused', {
          database: target.display,
          error: describeError(error),
        }),
      onRestored: (lostForMs) =>
        this.options.logger.info('database reachable', { database: target.display, afterMs: Math.round(lostForMs) }),
    });
    const migrated = migrate(target.url).then(() => {
      this.options.logger.info('database ready', { database: target.display });
      listener.start();
      connectivity.start();
      entry.ready = true;
    });
    const entry: Entry = {
      database: { key, display: target.display, identity: target.display, db, connectivity, clock },
      listener,
      migrated,
      openedAt: Date.now(),
      ready: false,
      draining: false,
    };
    this.entries.set(target.url, entry);
    // A database that could not be reached is forgotten, so the next pass tries again from scratch.
    migrated.catch(() => {
      connectivity.stop();
      if (this.entries.get(target.url) === entry) this.entries.delete(target.url);
      void db.end().catch(() => undefined);
    });
    return entry;
  }
}
