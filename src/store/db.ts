// Connection pools and transactions over node-postgres. Every statement in src/store is parameterised.
import pg from 'pg';
import { parseDatabaseUrl, type DatabaseTarget } from './database-url.ts';

export type Db = pg.Pool;
export type DbClient = pg.PoolClient;
export type Queryable = Pick<pg.Pool, 'query'> | Pick<pg.PoolClient, 'query'>;

// bigint ids and counts arrive as strings by default; every count and id here fits a JS number.
pg.types.setTypeParser(pg.types.builtins.INT8, (value: string) => Number(value));

export interface PoolOptions {
  max?: number;
  applicationName?: string;
  connectionTimeoutMs?: number;
  /** Server-side limit on one statement (default 30 s), so a lost peer cannot hold a caller forever. */
  statementTimeoutMs?: number;
  /** Server-side limit on waiting for a lock, advisory locks included (default 15 s). */
  lockTimeoutMs?: number;
}

export function createDb(target: DatabaseTarget | string, options: PoolOptions = {}): Db {
  const { url } = typeof target === 'string' ? parseDatabaseUrl(target) : target;
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    application_name: options.applicationName ?? 'lambda-task-pool',
    connectionTimeoutMillis: options.connectionTimeoutMs ?? 10_000,
    idleTimeoutMillis: 30_000,
    statement_timeout: options.statementTimeoutMs ?? 30_000,
    lock_timeout: options.lockTimeoutMs ?? 15_000,
    query_timeout: (options.statementTimeoutMs ?? 30_000) + 5_000,
    keepAlive: true,
  });
  // An idle client that loses its server emits 'error' on the pool; without a listener that kills the process.
  pool.on('error', () => undefined);
  return pool;
}

/**
 * Runs `fn` in a transaction (`begin` may add SET LOCAL statements to the BEGIN, sent in the same round trip:
 * see PASS_BEGIN), then the follow-up `fn` may return (`afterCommit`), on the same connection once the
 * transaction has committed: the caller has the transaction's value at once and learns the follow-up's end
 * from the follow-up itself. The connection goes back to the pool when the follow-up ends. If the transaction or the follow-up
 * fails, the connection is closed instead of reused: a session-level lock taken in a transaction outlives its
 * rollback, and only the end of the session surely ends it.
 */
export async function withTransactionThen<T>(
  db: Db,
  fn: (client: DbClient) => Promise<{ value: T; afterCommit?: (client: DbClient) => Promise<void> }>,
  begin = 'BEGIN',
): Promise<T> {
  const client = await db.connect();
  let out: Awaited<ReturnType<typeof fn>>;
  try {
    await client.query(begin);
    out = await fn(client);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    client.release(error instanceof Error ? error : true);
    throw error;
  }
  const followUp = out.afterCommit;
  if (!followUp) client.release();
  else
    void followUp(client).then(
      () => client.release(),
      (error: unknown) => client.release(error instanceof Error ? error : true),
    );
  return out.value;
}

/** Runs `fn` in a transaction: withTransactionThen with no follow-up. */
export function withTransaction<T>(db: Db, fn: (client: DbClient) => Promise<T>, begin = 'BEGIN'): Promise<T> {
  return withTransactionThen(db, async (client) => ({ value: await fn(client) }), begin);
}

/** A 64-bit advisory lock key derived in Postgres from a text key, so every client derives the same one. */
export async function advisoryXactLock(client: DbClient, key: string): Promise<void> {
  await client.query({ name: 'ltp_advisory_xact_lock', text: 'SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', values: [key] });
}

/**
 * Takes each key's transaction-level advisory lock that is free right now, without waiting; says which it
 * got, in the order of `keys`. A batch never waits on a lock another session holds, so it cannot deadlock.
 */
export async function tryAdvisoryXactLocks(client: DbClient, keys: readonly string[]): Promise<boolean[]> {
  if (keys.length === 0) return [];
  const result = await client.query<{ n: number; got: boolean }>({
    name: 'ltp_try_advisory_xact_locks',
    text: `SELECT u.n::int AS n, pg_try_advisory_xact_lock(hashtextextended(u.k, 0)) AS got
             FROM unnest($1::text[]) WITH ORDINALITY AS u(k, n)`,
    values: [keys],
  });
  const got = keys.map(() => false);
  for (const row of result.rows) got[row.n - 1] = row.got;
  return got;
}

/**
 * Takes each key's session-level advisory lock, waiting for it. A session that already holds a key's
 * transaction-level lock gets it at once, and keeps it past its commit until advisoryUnlocks (or its end).
 */
export async function advisoryLocks(client: DbClient, keys: readonly string[]): Promise<void> {
  if (keys.length === 0) return;
  await client.query({
    name: 'ltp_advisory_locks',
    text: 'SELECT pg_advisory_lock(hashtextextended(k, 0)) FROM unnest($1::text[]) AS k',
    values: [keys],
  });
}

/** Gives back session-level advisory locks taken with advisoryLocks; throws if one was not held. */
export async function advisoryUnlocks(client: DbClient, keys: readonly string[]): Promise<void> {
  if (keys.length === 0) return;
  const result = await client.query<{ released: number }>({
    name: 'ltp_advisory_unlocks',
    text: 'SELECT count(*) FILTER (WHERE pg_advisory_unlock(hashtextextended(k, 0)))::int AS released FROM unnest($1::text[]) AS k',
    values: [keys],
  });
  const released = result.rows[0]?.released ?? 0;
  if (released !== keys.length) throw new Error(`released ${released} of ${keys.length} session advisory locks`);
}

const UNAVAILABLE_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'ETIMEDOUT', 'EHOSTUNREACH', 'EPIPE', 'EAI_AGAIN']);

/**
 * Whether an error means the database could not be reached or could not serve us now (by its SQLSTATE
 * or socket error code): connection exceptions (08), insufficient resources (53), operator intervention
 * (57P), a statement or lock timeout (57014, 55P03), and any failed connect() (a Unix socket whose server is
 * not up yet, such as a proxy beside the controller, fails with ENOENT).
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  const code = typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
  if (typeof code !== 'string') return false;
  if ((error as { syscall?: unknown }).syscall === 'connect') return true;
  return /^(08|53|57P)/.test(code) || code === '57014' || code === '55P03' || UNAVAILABLE_ERRNOS.has(code);
}

/**
 * Whether an error says the connection to the database is lost or cannot be made: isDatabaseUnavailable
 * less the timeouts (57014, 55P03). A statement that waited out its lock or statement timeout met a healthy
 * database and one session holding a row: that is the pool's own trouble, not the database's. Counting it
 * as lost paused the orphaning of every pool on the database, so any worker login that held an invocation
 * row in an open transaction stopped the recovery of every other team's dead invocations there.
 */
export function isConnectionLost(error: unknown): boolean {
  const code = typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
  return isDatabaseUnavailable(error) && code !== '57014' && code !== '55P03';
}

/** Whether a statement gave up waiting for a lock (55P03: its lock timeout, or NOWAIT). */
export function isLockTimeout(error: unknown): boolean {
  return typeof error === 'object' && error !== null && 'code' in error && error.code === '55P03';
}
