// Applies the TypeORM migrations. Idempotent, and safe when several processes run it at once: they
// queue on one advisory lock, and the later ones find nothing left to do. TypeORM is loaded only when
// there is something to apply: a controller started on an up-to-date database never loads it (about
// 7 MB of its memory).
import { parseDatabaseUrl } from './database-url.ts';
import { createDb } from './db.ts';
import { createRoles, refreshGrants, roleNames } from './roles.ts';
import { InitialSchema1764201600000 } from './migrations/1764201600000-initial-schema.ts';
import { FaultTolerance1764288000000 } from './migrations/1764288000000-fault-tolerance.ts';
import { BoundedHistory1764374400000 } from './migrations/1764374400000-bounded-history.ts';
import { WorkerFunctions1764460800000 } from './migrations/1764460800000-worker-functions.ts';
import { TaskReruns1764547200000 } from './migrations/1764547200000-task-reruns.ts';
import { DecisionTrace1764633600000 } from './migrations/1764633600000-decision-trace.ts';
import { RecentTroubleIndexes1764720000000 } from './migrations/1764720000000-recent-trouble-indexes.ts';
import { DecisiveWakeups1764806400000 } from './migrations/1764806400000-decisive-wakeups.ts';
import { PassPlanIndexes1764892800000 } from './migrations/1764892800000-pass-plan-indexes.ts';
import { OneLiveIndex1764979200000 } from './migrations/1764979200000-one-live-index.ts';
import { IdempotentWorkerWrites1765065600000 } from './migrations/1765065600000-idempotent-worker-writes.ts';
import { ClaimToken1765152000000 } from './migrations/1765152000000-claim-token.ts';
import { ClaimRetention1765238400000 } from './migrations/1765238400000-claim-retention.ts';

export const MIGRATIONS = [
  InitialSchema1764201600000,
  FaultTolerance1764288000000,
  BoundedHistory1764374400000,
  WorkerFunctions1764460800000,
  TaskReruns1764547200000,
  DecisionTrace1764633600000,
  RecentTroubleIndexes1764720000000,
  DecisiveWakeups1764806400000,
  PassPlanIndexes1764892800000,
  OneLiveIndex1764979200000,
  IdempotentWorkerWrites1765065600000,
  ClaimToken1765152000000,
  ClaimRetention1765238400000,
];
const MIGRATION_LOCK = 'lambda-task-pool:migrations';
/** A database that does not answer, or whose migration lock someone else holds, fails the migration in bounded time. */
const CONNECT_TIMEOUT_MS = 10_000;
const LOCK_TIMEOUT = '60s';
/**
 * How long a migration's DDL waits for a table's lock. Postgres queues every later statement on the table
 * behind a waiting ACCESS EXCLUSIVE request: one reporting session left idle in a transaction made an upgrade
 * wait for ever, and every producer's insert and worker call with it. A migration that cannot have its
 * tables this soon fails, changes nothing (each runs in its own transaction), and is tried again.
 */
export const DDL_LOCK_TIMEOUT_MS = 5_000;

export interface MigrationResult {
  applied: string[];
  /** Whether the producer, worker and controller roles exist (their grants were applied again). */
  roles: boolean;
}

export interface MigrateOptions {
  /** Create the producer, worker and controller roles and grant them. */
  createRoles?: boolean;
  /** Their names are PREFIX_producer, PREFIX_worker and PREFIX_controller (default ltp). */
  rolePrefix?: string;
}

export async function migrate(databaseUrl: string, options: MigrateOptions = {}): Promise<MigrationResult> {
  const { url } = parseDatabaseUrl(databaseUrl);
  // Up to date already: nothing to do, and no DDL a least-privilege controller role could not run.
  if (!options.createRoles && options.rolePrefix === undefined && (await upToDate(url))) return { applied: [], roles: false };
  const { DataSource } = await import('typeorm');
  const dataSource = new DataSource({
    type: 'postgres',
    url,
    schema: 'ltp',
    migrationsTableName: 'migrations',
    migrations: MIGRATIONS,
    migrationsTransactionMode: 'each',
    connectTimeoutMS: CONNECT_TIMEOUT_MS,
    extra: { max: 2, application_name: 'lambda-task-pool-migrate', keepAlive: true, lock_timeout: DDL_LOCK_TIMEOUT_MS },
    logging: false,
  });
  await dataSource.initialize();
  const lock = dataSource.createQueryRunner();
  try {
    await lock.connect();
    await lock.query(`SET lock_timeout = '${LOCK_TIMEOUT}'`);
    await lock.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [MIGRATION_LOCK]);
    try {
      // Created only when missing: CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the
      // schema is there, which a schema owner a DBA made (CREATE SCHEMA ltp AUTHORIZATION owner) may lack.
      await lock.query(CREATE_SCHEMA_IF_MISSING);
      const applied = await dataSource.runMigrations({ transaction: 'each' }).catch((error: unknown) => {
        throw lockTimedOut(error) ? new MigrationLockTimeout(error) : error;
      });
      const grant = applied.length > 0 || options.createRoles === true || options.rolePrefix !== undefined;
      return { applied: applied.map((m) => m.name), roles: grant ? await applyRoles(url, options) : false };
    } finally {
      await lock.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [MIGRATION_LOCK]);
    }
  } finally {
    await lock.release();
    await dataSource.destroy();
  }
}

/** The ltp schema, made only where there is none (the first migration says the same). */
export const CREATE_SCHEMA_IF_MISSING = `DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_namespace WHERE nspname = 'ltp') THEN CREATE SCHEMA ltp; END IF;
END $$`;

function lockTimedOut(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === '55P03';
}

/** A migration gave up waiting for a table another session holds: nothing of it was applied. */
export class MigrationLockTimeout extends Error {
  override name = 'MigrationLockTimeout';
  readonly code = '55P03';
  constructor(cause: unknown) {
    super(
      `a migration could not lock its tables within ${DDL_LOCK_TIMEOUT_MS / 1000} s and changed nothing, so as not to hold up every producer and worker behind it: a session holds them (a long transaction; see pg_stat_activity and pg_locks). End it, or run migrate again when it is over`,
      { cause },
    );
  }
}

/** Creates the roles when asked; grants again to the roles that exist, so new tables are covered. */
async function applyRoles(url: string, options: MigrateOptions): Promise<boolean> {
  const names = roleNames(options.rolePrefix);
  const db = createDb(url, { max: 1 });
  try {
    if (options.createRoles) await createRoles(db, names);
    return await refreshGrants(db, names);
  } finally {
    await db.end();
  }
}

/** Whether every migration is recorded as applied (read-only; false when the schema is not there yet). */
async function upToDate(url: string): Promise<boolean> {
  const db = createDb(url, { max: 1 });
  try {
    const result = await db.query<{ name: string }>(`SELECT name FROM ltp.migrations`);
    const done = new Set(result.rows.map((r) => r.name));
    return MIGRATIONS.every((m) => done.has(m.name));
  } catch {
    return false;
  } finally {
    await db.end();
  }
}
