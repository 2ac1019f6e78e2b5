// One real Postgres server per test run, started on first use; each suite gets a fresh, migrated database.
import pg from 'pg';
import { startPostgres, type PostgresServer } from '../../dev/src/postgres.ts';
import { migrate } from '../../src/store/migrate.ts';
import { createDb, type Db } from '../../src/store/db.ts';
import { registerTeardown } from './teardown.ts';

let server: Promise<PostgresServer> | undefined;
let counter = 0;

export function sharedPostgres(): Promise<PostgresServer> {
  if (!server) {
    server = startPostgres({ database: 'postgres' }).catch((error: unknown) => {
      throw new Error(`the tests need a real Postgres server and none could be started: ${String(error)}`);
    });
    const started = server;
    registerTeardown(async () => (await started).stop());
  }
  return server;
}

export interface TestDatabase {
  url: string;
  db: Db;
  close(): Promise<void>;
}

/** A new database in the shared server, migrated, with a pool for the test to use. */
export async function freshDatabase(prefix = 'test'): Promise<TestDatabase> {
  const pgServer = await sharedPostgres();
  const name = `${prefix}_${process.pid}_${++counter}`.replace(/[^a-z0-9_]/gi, '_').toLowerCase();
  const admin = new pg.Client({ connectionString: pgServer.url });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  await admin.end();
  const url = pgServer.url.replace(/\/[^/]*$/, `/${name}`);
  await migrate(url);
  const db = createDb(url, { max: 20, applicationName: 'ltp-test' });
  return { url, db, close: () => db.end() };
}
