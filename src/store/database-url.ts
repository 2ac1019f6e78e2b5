// Database URLs come from flags, environment variables and Secrets. They carry passwords, so every
// message about one names the host and database only.

export class DatabaseUrlError extends Error {
  override name = 'DatabaseUrlError';
}

export interface DatabaseTarget {
  url: string;
  /** host:port/database, safe to log and to show in a condition. */
  display: string;
}

export function parseDatabaseUrl(raw: string | undefined, source = 'the database URL'): DatabaseTarget {
  const value = (raw ?? '').trim();
  if (value === '') throw new DatabaseUrlError(`${source} is empty: set a postgres:// URL`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new DatabaseUrlError(`${source} is not a URL: expected postgres://USER:PASSWORD@HOST:PORT/DATABASE`);
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new DatabaseUrlError(`${source} has scheme "${url.protocol.replace(/:$/, '')}": expected postgres or postgresql`);
  }
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  const socketHost = url.searchParams.get('host');
  if (url.hostname === '' && !socketHost) throw new DatabaseUrlError(`${source} names no host`);
  if (database === '') throw new DatabaseUrlError(`${source} names no database: add /DATABASE after the host`);
  const host = url.hostname || socketHost || '';
  return { url: value, display: `${host}:${url.port || '5432'}/${database}` };
}
