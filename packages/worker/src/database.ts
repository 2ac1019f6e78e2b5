// The worker's connections. The database URL may be a string or a provider, so that a worker can read it
// from AWS Secrets Manager or build an RDS IAM authentication token: the provider is asked again for every
// new connection, and only its password may change from one answer to the next. Connections are reused
// across warm invocations of the same function instance.
import pg from 'pg';

export type DatabaseUrlSource = string | (() => string | Promise<string>);

export class WorkerConfigError extends Error {
  override name = 'WorkerConfigError';
}

// bigint ids arrive as strings by default; every id here fits a JS number.
pg.types.setTypeParser(pg.types.builtins.INT8, (value: string) => Number(value));

const pools = new Map<string | (() => string | Promise<string>), pg.Pool>();

/** Host, port and database of a URL, safe to show: never the password. */
function describe(url: URL): string {
  return `${url.hostname}:${url.port || '5432'}${url.pathname}`;
}

function parse(raw: string, source: string): URL {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new WorkerConfigError(`${source} is not a URL: expected postgres://user:password@host:5432/database`);
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new WorkerConfigError(`${source} must be a postgres:// URL (got ${url.protocol}//${url.hostname})`);
  }
  if (!url.hostname || url.pathname.length <= 1) {
    throw new WorkerConfigError(`${source} must name a host and a database (got ${describe(url)})`);
  }
  return url;
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
} as const;

export async function workerPool(source: DatabaseUrlSource | undefined): Promise<pg.Pool> {
  const from = source ?? process.env.DATABASE_URL;
  if (from === undefined || from === '') {
    throw new WorkerConfigError(
      'the worker has no database: set DATABASE_URL in the function environment, or pass databaseUrl to taskWorker',
    );
  }
  const existing = pools.get(from);
  if (existing) return existing;
  let pool: pg.Pool;
  if (typeof from === 'string') {
    parse(from, 'the worker database URL (DATABASE_URL)');
    pool = new pg.Pool({ connectionString: from, ...POOL_OPTIONS });
  } else {
    const first = parse(await from(), 'the URL the databaseUrl provider returned');
    pool = new pg.Pool({
      host: first.hostname,
      port: Number(first.port || 5432),
      database: decodeURIComponent(first.pathname.slice(1)),
      user: decodeURIComponent(first.username),
      // Asked for every new connection: a fresh secret or IAM token each time.
      password: async () => decodeURIComponent(parse(await from(), 'the URL the databaseUrl provider returned').password),
      ssl:
        first.searchParams.get('sslmode') === 'require' || first.searchParams.get('sslmode') === 'verify-full'
          ? { rejectUnauthorized: first.searchParams.get('sslmode') === 'verify-full' }
          : undefined,
      ...POOL_OPTIONS,
    });
  }
  // An idle client that loses its server emits 'error' on the pool; without a listener that kills the process.
  pool.on('error', () => undefined);
  pools.set(from, pool);
  return pool;
}

/** Closes the pooled connections (for tests and graceful shutdowns; Lambda never needs it). */
export async function closeWorkerConnections(): Promise<void> {
  const all = [...pools.values()];
  pools.clear();
  await Promise.all(all.map((p) => p.end()));
}
