// The worker's connections. The database URL may be a string or a provider, so that a worker can read it
// from AWS Secrets Manager or build an RDS IAM authentication token: the provider is asked again for every
// new connection, and only its password may change from one answer to the next. Connections are reused
// across warm invocations of the same function instance.
import pg from 'pg';
import { parse as parseConnectionString } from 'pg-connection-string';

export type DatabaseUrlSource = string | (() => string | Promise<string>);

export class WorkerConfigError extends Error {
  override name = 'WorkerConfigError';
}

// bigint ids arrive as strings by default; every id here fits a JS number. Set on the worker's own pools
// only: the process may hold the user's own `pg`, and its parsers are not ours to change.
const WORKER_TYPES = new pg.TypeOverrides();
WORKER_TYPES.setTypeParser(pg.types.builtins.INT8, 'text', (value: string) => Number(value));

interface Pooled {
  pool: pg.Pool;
  /** Date.now() when a connection was last given back: the pool has been idle since, if none is out. */
  releasedAt: number;
}

const pools = new Map<string | (() => string | Promise<string>), Pooled>();
/** Pools set aside (renewWorkerPool) whose connections have not all closed yet: closeWorkerConnections ends them too. */
const retired = new Set<pg.Pool>();

/**
 * Refuses, with a message that says what is wrong, a URL that could never reach a database. The message
 * names no part of the URL: in a malformed one (a password with an unencoded @ or #), what the parser took
 * for the host or the path may be a piece of the password, and this message ends up in CloudWatch.
 */
function checkUrl(raw: string, source: string): void {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new WorkerConfigError(`${source} is not a URL: expected postgres://user:password@host:5432/database`);
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new WorkerConfigError(`${source} must be a postgres:// or postgresql:// URL`);
  }
  // An @ after the host is a password's: postgres://app:pa@ss/word@host/db parses with "ss" for its host.
  if (!url.hostname || url.pathname.length <= 1 || url.pathname.includes('@')) {
    throw new WorkerConfigError(
      `${source} must name a host and a database: postgres://user:password@host:5432/database (percent-encode @, # and / in the password)`,
    );
  }
}

const POOL_OPTIONS = {
  max: 3,
  application_name: 'lambda-task-pool-worker',
  connectionTimeoutMillis: 10_000,
  idleTimeoutMillis: 30_000,
  statement_timeout: 30_000,
  lock_timeout: 15_000,
  query_timeout: 35_000,
  keepAlive: true,
  types: WORKER_TYPES,
} as const;

/**
 * The pool's settings for a URL. With a `password` function (a provider), the URL is read by the parser pg
 * itself uses for a connection string (pg-connection-string), and its settings override the options as
 * they do in pg: sslmode, sslrootcert and every other parameter mean the same on both paths.
 */
export function poolConfig(url: string, password?: () => Promise<string>): pg.PoolConfig {
  if (password === undefined) return { ...POOL_OPTIONS, connectionString: url };
  // pg takes every field this parser returns (lib/connection-parameters.js); its types are only narrower.
  const fromUrl = parseConnectionString(url) as pg.PoolConfig;
  return { ...POOL_OPTIONS, ...fromUrl, password };
}

export async function workerPool(source: DatabaseUrlSource | undefined, now: () => number = Date.now): Promise<pg.Pool> {
  const from = sourceOf(source);
  const existing = pools.get(from);
  if (existing && !frozenPastIdleTimeout(existing, now())) return existing.pool;
  // Lambda froze the environment with connections idle in the pool, for longer than the pool would have
  // kept them: their timers could not close them, and the network may have dropped them since without a
  // word (a NAT's idle timeout, a failover). A query on one would hang until its timeout: start afresh.
  if (existing) return replace(from, existing, now);
  return newPool(from, now);
}

/**
 * A query on the pool waited out its timeout: the network may have dropped every connection the pool holds
 * without a word (a failover), and a retry on the next idle one would wait as long. The pool is set aside
 * (unless that was done already) and the retry goes out on a new one. Returns the pool to use now.
 */
export function renewWorkerPool(source: DatabaseUrlSource | undefined, stale: pg.Pool, now: () => number = Date.now): pg.Pool {
  const from = sourceOf(source);
  const current = pools.get(from);
  if (current && current.pool !== stale) return current.pool;
  return replace(from, current ?? { pool: stale, releasedAt: now() }, now);
}

/**
 * A new pool in place of one set aside, with the same settings, made at once: a URL provider is not asked
 * here (it is asked for each new connection, within the connection timeout), so that a heartbeat never waits
 * on it, and two callers cannot each make a pool.
 */
function replace(from: string | (() => string | Promise<string>), stale: Pooled, now: () => number): pg.Pool {
  retire(from, stale);
  return track(from, new pg.Pool(stale.pool.options), now);
}

/** pg's own error for a query that got no answer within its query_timeout (it carries no code). */
export function isQueryTimeout(error: unknown): boolean {
  return error instanceof Error && error.message === 'Query read timeout';
}

function sourceOf(source: DatabaseUrlSource | undefined): string | (() => string | Promise<string>) {
  const from = source ?? process.env.DATABASE_URL;
  if (from === undefined || from === '') {
    throw new WorkerConfigError(
      'the worker has no database: set DATABASE_URL in the function environment, or pass databaseUrl to taskWorker',
    );
  }
  return from;
}

/**
 * Sets a pool aside: it is handed out no more, and its idle connections close on their own timers. It is not
 * ended: a run that still holds it (handlers that run side by side outside Lambda) finishes its writes on it.
 */
function retire(from: string | (() => string | Promise<string>), pooled: Pooled): void {
  pools.delete(from);
  if (pooled.pool.totalCount === 0) return;
  retired.add(pooled.pool);
  pooled.pool.on('remove', () => {
    if (pooled.pool.totalCount === 0) retired.delete(pooled.pool);
  });
}

async function newPool(from: string | (() => string | Promise<string>), now: () => number): Promise<pg.Pool> {
  let pool: pg.Pool;
  if (typeof from === 'string') {
    checkUrl(from, 'the worker database URL (DATABASE_URL)');
    pool = new pg.Pool(poolConfig(from));
  } else {
    const provided = async (): Promise<string> => {
      const url = (await from()).trim();
      checkUrl(url, 'the URL the databaseUrl provider returned');
      return url;
    };
    // Asked for every new connection: a fresh secret or IAM token each time.
    const password = async () => parseConnectionString(await provided()).password ?? '';
    pool = new pg.Pool(poolConfig(await provided(), password));
  }
  return track(from, pool, now);
}

/** Hands the pool out from now on, and notes when it was last given a connection back. */
function track(from: string | (() => string | Promise<string>), pool: pg.Pool, now: () => number): pg.Pool {
  // An idle client that loses its server emits 'error' on the pool; without a listener that kills the process.
  pool.on('error', () => undefined);
  const pooled: Pooled = { pool, releasedAt: now() };
  pool.on('release', () => {
    pooled.releasedAt = now();
  });
  pools.set(from, pooled);
  return pool;
}

/** True when the pool's connections have all sat idle for longer than it keeps idle connections. */
function frozenPastIdleTimeout({ pool, releasedAt }: Pooled, now: number): boolean {
  return pool.totalCount > 0 && pool.idleCount === pool.totalCount && now - releasedAt > POOL_OPTIONS.idleTimeoutMillis;
}

const bounded = new WeakMap<pg.Pool, Map<number, Pick<pg.Pool, 'query'>>>();

/**
 * The pool, with each query given up after `ms` (the pool's own limit is 35 s): for calls that must not
 * hang on a connection the network dropped without a word, where a retry would go out on a fresh one (a
 * query that times out takes its connection out of the pool). One per pool and limit, so that what a
 * caller remembers of the object (say, a database that cannot take the claim token) stays remembered.
 */
export function withQueryTimeout(pool: pg.Pool, ms: number): Pick<pg.Pool, 'query'> {
  let byLimit = bounded.get(pool);
  if (!byLimit) bounded.set(pool, (byLimit = new Map()));
  let queryable = byLimit.get(ms);
  if (!queryable) {
    const limit = Math.max(1, Math.round(ms));
    queryable = {
      query: ((text: string, values?: unknown[]) =>
        pool.query({ text, values, query_timeout: limit } as pg.QueryConfig)) as pg.Pool['query'],
    };
    byLimit.set(ms, queryable);
  }
  return queryable;
}

/**
 * Runs `call` on the pool with each query given up after `ms`. A query that waits out its time sets the pool
 * aside (renewWorkerPool): every connection in it may be dead alike, and `renewed` is told the pool to use
 * from then on. The error is thrown all the same, for the caller's retry.
 */
export async function withinTime<T>(
  source: DatabaseUrlSource | undefined,
  pool: pg.Pool,
  ms: number,
  call: (queryable: Pick<pg.Pool, 'query'>) => Promise<T>,
  renewed: (pool: pg.Pool) => void,
): Promise<T> {
  try {
    return await call(withQueryTimeout(pool, ms));
  } catch (error) {
    if (isQueryTimeout(error)) renewed(renewWorkerPool(source, pool));
    throw error;
  }
}

/** Closes the pooled connections (for tests and graceful shutdowns; Lambda never needs it). */
export async function closeWorkerConnections(): Promise<void> {
  const all = [...[...pools.values()].map((p) => p.pool), ...retired];
  pools.clear();
  retired.clear();
  await Promise.all(all.filter((p) => !p.ended).map((p) => p.end()));
}
