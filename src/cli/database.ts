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

/** A connection failure names the database (host:port/name, never the URL); any other error passes as it is. */
export function unreachable(error: unknown, target: DatabaseTarget): unknown {
  if (!isDatabaseUnavailable(error)) return error;
  const reason = error instanceof Error ? error.message : String(error);
  return new Error(`cannot reach the database at ${target.display}: ${reason}`, { cause: error });
}
