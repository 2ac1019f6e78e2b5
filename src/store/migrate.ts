// Applies the TypeORM migrations. Idempotent, and safe when several processes run it at once: they
// queue on one advisory lock, and the later ones find nothing left to do.
import { DataSource } from 'typeorm';
import { parseDatabaseUrl } from './database-url.ts';
import { InitialSchema1764201600000 } from './migrations/1764201600000-initial-schema.ts';
import { FaultTolerance1764288000000 } from './migrations/1764288000000-fault-tolerance.ts';
import { BoundedHistory1764374400000 } from './migrations/1764374400000-bounded-history.ts';
import { WorkerFunctions1764460800000 } from './migrations/1764460800000-worker-functions.ts';
import { TaskReruns1764547200000 } from './migrations/1764547200000-task-reruns.ts';

export const MIGRATIONS = [
  InitialSchema1764201600000,
  FaultTolerance1764288000000,
  BoundedHistory1764374400000,
  WorkerFunctions1764460800000,
  TaskReruns1764547200000,
];
const MIGRATION_LOCK = 'lambda-task-pool:migrations';

export interface MigrationResult {
  applied: string[];
}

export async function migrate(databaseUrl: string): Promise<MigrationResult> {
  const { url } = parseDatabaseUrl(databaseUrl);
  const dataSource = new DataSource({
    type: 'postgres',
    url,
    schema: 'ltp',
    migrationsTableName: 'migrations',
    migrations: MIGRATIONS,
    migrationsTransactionMode: 'each',
    extra: { max: 2, application_name: 'lambda-task-pool-migrate' },
    logging: false,
  });
  await dataSource.initialize();
  const lock = dataSource.createQueryRunner();
  try {
    await lock.connect();
    await lock.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [MIGRATION_LOCK]);
    try {
      await lock.query('CREATE SCHEMA IF NOT EXISTS ltp');
      const applied = await dataSource.runMigrations({ transaction: 'each' });
      return { applied: applied.map((m) => m.name) };
    } finally {
      await lock.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [MIGRATION_LOCK]);
    }
  } finally {
    await lock.release();
    await dataSource.destroy();
  }
}
