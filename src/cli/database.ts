// A short-lived connection pool for one command, closed whatever happens.
import type { Command } from 'commander';
import type { DatabaseTarget } from '../store/database-url.ts';
import { createDb, isDatabaseUnavailable, type Db } from '../store/db.ts';
import { databaseFrom } from './options.ts';

export async function withDatabase<T>(command: Command, work: (db: Db) => Promise<T>): Promise<T> {
  const target = databaseFrom(command);
  const db = createDb(target, { max: 2, applicationName: `lambda-task-pool-${command.name()}` });
  try {
    return await work(db);
  } catch (error) {
    throw unreachable(error, target);
  } finally {
    await db.end();
  }
}

/** pg's own errors for a connection that got no answer in time (they carry no code). */
const CONNECT_TIMEOUTS = ['Connection terminated due to connection timeout', 'timeout exceeded when trying to connect'];

/**
 * A connection failure names the database (host:port/name, never the URL), and a database without the
 * schema says to migrate it; any other error passes as it is.
 */
export function unreachable(error: unknown, target: DatabaseTarget): unknown {
  const code = typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
  const reason = error instanceof Error ? error.message : String(error);
  // undefined_table, invalid_schema_name: nothing of ltp.* is there yet.
  if ((code === '42P01' || code === '3F000') && /"ltp[."]/.test(reason)) {
    return new Error(
      `the database at ${target.display} has no LambdaTaskPool tables (${reason}): run \`lambda-task-pool migrate\` first (the controller also migrates the databases it uses)`,
      { cause: error },
    );
  }
  // node-postgres reads sslcert, sslkey and sslrootcert when it connects: a bare ENOENT named no URL.
  const syscall = typeof error === 'object' && error !== null && 'syscall' in error ? error.syscall : undefined;
  const file = typeof error === 'object' && error !== null && 'path' in error ? error.path : undefined;
  if (syscall === 'open' && typeof file === 'string') {
    return new Error(`cannot read ${file}, which the database URL names (sslcert, sslkey or sslrootcert): ${String(code)}`, {
      cause: error,
    });
  }
  // A statement that waited out its time met a database that answers: it is busy, or a row is held.
  if (code === '57014' || code === '55P03') {
    return new Error(
      `the database at ${target.display} cancelled the command's statement (${reason}): ${code === '55P03' ? 'it waited too long for a row another session holds' : 'it ran past the 30 s statement timeout, or an administrator cancelled it'}; try again, or with less at once`,
      { cause: error },
    );
  }
  if (!isDatabaseUnavailable(error) && !CONNECT_TIMEOUTS.some((t) => reason.includes(t))) return error;
  return new Error(`cannot reach the database at ${target.display}: ${reason}`, { cause: error });
}
