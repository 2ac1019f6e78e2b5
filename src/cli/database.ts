// A short-lived connection pool for one command, closed whatever happens.
import type { Command } from 'commander';
import { createDb, type Db } from '../store/db.ts';
import { databaseFrom } from './options.ts';

export async function withDatabase<T>(command: Command, work: (db: Db) => Promise<T>): Promise<T> {
  const db = createDb(databaseFrom(command), { max: 2, applicationName: `lambda-task-pool-${command.name()}` });
  try {
    return await work(db);
  } finally {
    await db.end();
  }
}
