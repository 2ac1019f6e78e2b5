// What the dispatch-pass integration tests share: a fresh database on the real Postgres, the local Lambda
// runtime with one function, `parked`, that accepts every invoke and runs none (reserved concurrency 0, so
// the rows stay pending), an invoker that talks to it through the real AWS SDK, a Database over both, and
// the pools and tasks the tests dispatch.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Pool, PoolSpec } from '../../src/api/types.ts';
import { Connectivity } from '../../src/controller/connectivity.ts';
import { clockProbe, type Database } from '../../src/controller/databases.ts';
import { DbClock } from '../../src/store/db-clock.ts';
import type { Queryable } from '../../src/store/db.ts';
import { createInvoker, type Invoker } from '../../src/lambda/invoker.ts';
import { silentLogger } from '../../src/ops/logger.ts';
import { startLambdaRuntime, type LambdaRuntime } from '../../dev/src/lambda-runtime/index.ts';
import { freshDatabase, type TestDatabase } from './postgres.ts';

const NOOP = `${path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/functions/noop.ts')}#handler`;

export interface ParkedLambda {
  t: TestDatabase;
  runtime: LambdaRuntime;
  invoker: Invoker;
  database: Database;
  close(): Promise<void>;
}

/** Inserts `count` tasks into `queue`. */
export function enqueueTasks(db: Queryable, queue: string, count: number): Promise<unknown> {
  return db.query(`INSERT INTO ltp.tasks (queue) SELECT $1 FROM generate_series(1, $2)`, [queue, count]);
}

/**
 * A pool of `namespace` that invokes `parked` (every invoke accepted, none run: its rows stay pending), with
 * its own queue, at most five invocations at once of two tasks each, and `spec` over that.
 */
export function parkedPool(namespace: string, name: string, spec: Partial<PoolSpec> = {}): Pool {
  return {
    meta: { namespace, name, uid: `uid-${name}`, generation: 1, finalizers: [] },
    spec: {
      function: { name: 'parked' },
      queue: `q-${name}`,
      maxConcurrency: 5,
      tasksPerInvocation: 2,
      startTimeoutSeconds: 3600,
      heartbeatTimeoutSeconds: 60,
      maxTaskAttempts: 3,
      retry: { initialDelaySeconds: 0, maxDelaySeconds: 0 },
      suspend: false,
      ...spec,
    },
    status: {},
  };
}

/** Starts them; `prefix` names the database. */
export async function startParkedLambda(prefix: string): Promise<ParkedLambda> {
  const t = await freshDatabase(prefix);
  const runtime = await startLambdaRuntime({
    logger: silentLogger(),
    functions: [{ name: 'parked', handler: NOOP, reservedConcurrency: 0 }],
  });
  const invoker = createInvoker({
    defaultRegion: 'us-east-1',
    endpoint: runtime.endpoint,
    credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
  });
  const clock = new DbClock();
  const database: Database = {
    key: `db-${prefix}`,
    display: prefix,
    identity: prefix,
    db: t.db,
    connectivity: new Connectivity({ probe: clockProbe(t.db, clock) }),
    clock,
  };
  return {
    t,
    runtime,
    invoker,
    database,
    async close() {
      invoker.close();
      await runtime.stop();
      await t.close();
    },
  };
}
