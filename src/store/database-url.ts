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

/**
 * Query parameters node-postgres would let override what the controller sets on every connection: its
 * timeouts (a hostile database could then hold a reconcile for ever) and the wire format (binary results, a
 * replication session). A URL that sets one is refused rather than silently obeyed.
 */
const CONTROLLED_PARAMETERS = [
  'statement_timeout',
  'lock_timeout',
  'query_timeout',
  'idle_in_transaction_session_timeout',
  'binary',
  'replication',
];
/** Query parameters that node-postgres reads as paths of files on the controller's own filesystem. */
const FILE_PARAMETERS = ['sslcert', 'sslkey', 'sslrootcert'];

export interface ParseOptions {
  /**
   * Whether the URL may name files of the controller's filesystem (sslcert, sslkey, sslrootcert). Yes for
   * the operator's own default URL (a CA bundle mounted in the pod); no for a URL from a pool's Secret, whose
   * author cannot put files there and could only probe or read the controller's.
   */
  allowLocalFiles?: boolean;
}

export function parseDatabaseUrl(raw: string | undefined, source = 'the database URL', options: ParseOptions = {}): DatabaseTarget {
  const value = (raw ?? '').trim();
  if (value === '') throw new DatabaseUrlError(`${source} is empty: set a postgres:// URL`);
  let url: URL;
  let hostless = false;
  try {
    url = new URL(value);
  } catch {
    // postgres://user:pw@/db?host=/var/run/postgresql (a Unix socket) is valid for libpq but not for URL.
    try {
      url = new URL(value.replace(/^(postgres(?:ql)?:\/\/[^/?#]*@)\//, '$1localhost/'));
      hostless = true;
    } catch {
      throw new DatabaseUrlError(
        `${source} is not a URL: expected postgres://USER:PASSWORD@HOST:PORT/DATABASE (PORT from 1 to 65535; percent-encode special characters such as / and @ in the password)`,
      );
    }
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new DatabaseUrlError(`${source} has scheme "${url.protocol.replace(/:$/, '')}": expected postgres or postgresql`);
  }
  // An @ that did not end the user and password: an unencoded / then ? or # in the password made the parser
  // take the password's pieces for the port, the database and the query, and the display showed them. What
  // is left of such a password after the ? or # holds "@HOST/DATABASE": in the fragment, in a parameter's
  // name, or, when no user was parsed, in a value. An @ in a value stays legal (user=svc@project.iam).
  const names = [...url.searchParams.keys()];
  const values = [...url.searchParams.values()];
  const noUser = url.username === '' && url.password === '';
  if (url.hash.includes('@') || names.some((n) => n.includes('@')) || (noUser && values.some((v) => /@[^/?#]*\//.test(v)))) {
    throw new DatabaseUrlError(`${source} is malformed: percent-encode special characters (such as /, ?, # and @) in the password`);
  }
  let database: string;
  try {
    database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  } catch {
    throw new DatabaseUrlError(`${source} has a malformed %-escape in its database name`);
  }
  // node-postgres takes the last of repeated parameters.
  const param = (name: string) => url.searchParams.getAll(name).at(-1);
  const socketHost = param('host');
  const hostname = hostless ? '' : url.hostname;
  if (hostname === '' && !socketHost) throw new DatabaseUrlError(`${source} names no host`);
  if (database === '') throw new DatabaseUrlError(`${source} names no database: add /DATABASE after the host`);
  if (database.includes('@')) {
    throw new DatabaseUrlError(`${source} is malformed: percent-encode special characters (such as / and @) in the password`);
  }
  const controlled = CONTROLLED_PARAMETERS.filter((p) => url.searchParams.has(p));
  if (controlled.length > 0) {
    throw new DatabaseUrlError(`${source} sets ${controlled.join(', ')}: the controller sets these itself; remove them from the URL`);
  }
  const files = FILE_PARAMETERS.filter((p) => url.searchParams.has(p));
  if (files.length > 0 && options.allowLocalFiles === false) {
    throw new DatabaseUrlError(`${source} sets ${files.join(', ')}: a Secret may not name files of the controller's filesystem`);
  }
  // node-postgres connects to the host= and port= parameters when they are given, whatever the authority says.
  const host = socketHost || hostname;
  const port = param('port') || url.port || '5432';
  // A port= that is not one made pg throw from inside its connect, and its pool's end() never settled: the CLI
  // exited 0 having done nothing, and a pool's Secret was retried as an unreachable database for ever.
  if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
    throw new DatabaseUrlError(`${source} has port=${JSON.stringify(port.slice(0, 20))}: expected a port from 1 to 65535`);
  }
  return { url: value, display: `${host}:${port}/${database}` };
}
