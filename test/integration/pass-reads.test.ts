// What a dispatch pass reads of the database: its own pool's live rows, however many rows other pools have.
// Against a real Postgres, with the pass's own transaction settings (PASS_BEGIN) and its own snapshot
// statement; what is asserted is the shared buffers the statement touches (EXPLAIN ANALYZE), which do not
// move with the machine's speed, and the snapshot it returns.
import { expect } from 'chai';
import { PASS_BEGIN } from '../../src/controller/pass-act.ts';
import { POOL_SNAPSHOTS_SQL } from '../../src/store/pool-snapshot.ts';
import { STRANDED_LEASES_OF_POOL_SQL, STRANDED_LEASES_SQL } from '../../src/store/task-store.ts';
import { explainBuffers } from '../support/explain.ts';
import { freshDatabase, type TestDatabase } from '../support/postgres.ts';

const OTHER_POOLS = 200;
const LIVE_PER_OTHER_POOL = 100;
const TASKS_PER_OTHER_QUEUE = 100;

describe('what a dispatch pass reads (real Postgres)', function () {
  this.timeout(120_000);
  let t: TestDatabase;

  before(async () => {
    t = await freshDatabase('passreads');
    // 200 other pools with 100 live (pending) invocations each, and 100 due tasks in each of their queues:
    // 20,000 rows of each table that are live and belong to someone else. Each pool's rows are written
    // together, so that the pages a read touches count the rows it reads: a few pages per pool, where a walk
    // of a table is hundreds.
    await t.db.query(
      `INSERT INTO ltp.invocations (pool_namespace, pool_name, pool_uid, queue, status, function_name, tasks_per_invocation,
                                    max_task_attempts, heartbeat_timeout_seconds, invoked_at)
       SELECT 'other', 'p' || (g % $1), 'uid-other-' || (g % $1), 'q-other-' || (g % $1), 'pending', 'fn', 1, 3, 60, now()
         FROM generate_series(1, $2::int) g ORDER BY g % $1`,
      [OTHER_POOLS, OTHER_POOLS * LIVE_PER_OTHER_POOL],
    );
    await t.db.query(`INSERT INTO ltp.tasks (queue) SELECT 'q-other-' || (g % $1) FROM generate_series(1, $2::int) g ORDER BY g % $1`, [
      OTHER_POOLS,
      OTHER_POOLS * TASKS_PER_OTHER_QUEUE,
    ]);
    // The pool looked at: 10 live invocations and 30 due tasks.
    await t.db.query(
      `INSERT INTO ltp.invocations (pool_namespace, pool_name, pool_uid, queue, status, function_name, tasks_per_invocation,
                                    max_task_attempts, heartbeat_timeout_seconds, invoked_at)
       SELECT 'mine', 'mine', 'uid-mine', 'q-mine', 'pending', 'fn', 1, 3, 60, now() FROM generate_series(1, 10)`,
    );
    await t.db.query(`INSERT INTO ltp.tasks (queue) SELECT 'q-mine' FROM generate_series(1, 30)`);
    await t.db.query('ANALYZE ltp.invocations, ltp.tasks');
  });

  after(async () => {
    await t?.close();
  });

  /** The snapshot statement for these pools, as a pass runs it (generic plan, its settings): plan and rows. */
  async function explainSnapshot(pools: Array<{ uid: string; queue: string }>) {
    const client = await t.db.connect();
    try {
      await client.query(PASS_BEGIN);
      await client.query(
        `PREPARE snap(text[], text[], int[], boolean[], int[], double precision, double precision, int, int) AS ${POOL_SNAPSHOTS_SQL}`,
      );
      const values = [pools.map((p) => p.uid), pools.map((p) => p.queue), pools.map(() => 50), pools.map(() => true), pools.map(() => 5)];
      // EXPLAIN takes no bind parameters: the arrays go in as literals, through Postgres's own quoting.
      const literal = await client.query<{ execute: string }>(
        `SELECT format('EXECUTE snap(%L::text[], %L::text[], %L::int[], %L::boolean[], %L::int[], 60000, 600, 1000, 2000)', $1::text[], $2::text[], $3::int[], $4::boolean[], $5::int[]) AS execute`,
        values,
      );
      const execute = literal.rows[0]?.execute;
      if (!execute) throw new Error('Postgres formatted no EXECUTE statement');
      const buffers = await explainBuffers(client, execute);
      const rows = await client.query<{ n: number; live: unknown[] | null; backlog: number }>(execute);
      await client.query('ROLLBACK');
      await client.query('DEALLOCATE snap'); // a prepared statement outlives its transaction
      return { buffers, rows: rows.rows };
    } finally {
      client.release();
    }
  }

  it("reads a pool's 10 live invocations and 30 due tasks, not the 20,000 of other pools", async () => {
    const { buffers, rows } = await explainSnapshot([{ uid: 'uid-mine', queue: 'q-mine' }]);
    expect(rows[0]?.live ?? [], 'live invocations').to.have.length(10);
    expect(rows[0]?.backlog, 'due backlog').to.equal(30);
    // Index pages of the pool's own rows and their heap pages: tens. A walk of either table: hundreds.
    expect(buffers, 'shared buffers the snapshot touched').to.be.below(60);
  });

  it('reads a batch of 50 pools for what 50 pools hold, not 50 times the table', async () => {
    const pools = Array.from({ length: 50 }, (_, i) => ({ uid: `uid-other-${i}`, queue: `q-other-${i}` }));
    const { buffers, rows } = await explainSnapshot(pools);
    expect(rows.map((r) => (r.live ?? []).length)).to.deep.equal(pools.map(() => LIVE_PER_OTHER_POOL));
    expect(rows.map((r) => r.backlog)).to.deep.equal(pools.map(() => 50)); // counted up to the backlog limit
    // 50 pools' 100 live rows each (about 2 heap pages a pool, plus index pages) and their backlog counts.
    // Walking the tables per pool would touch 50 x several hundred.
    expect(buffers, 'shared buffers the snapshot touched').to.be.below(50 * 30);
  });
});

describe('what the release of stranded leases reads (real Postgres)', function () {
  this.timeout(180_000);
  let t: TestDatabase;

  /** History: finished tasks in the pool's queue, and finished invocations of the pool. */
  async function addHistory(tasks: number, invocations: number) {
    await t.db.query(`INSERT INTO ltp.tasks (queue, status, finished_at) SELECT 'q-mine', 'done', now() FROM generate_series(1, $1::int)`, [
      tasks,
    ]);
    await t.db.query(
      `INSERT INTO ltp.invocations (pool_namespace, pool_name, pool_uid, queue, status, function_name, tasks_per_invocation,
                                    max_task_attempts, heartbeat_timeout_seconds, invoked_at, ready_at, finished_at)
       SELECT 'ns', 'uid-mine', 'uid-mine', 'q-mine', 'succeeded', 'fn', 5, 3, 60, now(), now(), now() - g * interval '1 s'
         FROM generate_series(1, $1::int) g`,
      [invocations],
    );
    await t.db.query('ANALYZE ltp.invocations, ltp.tasks');
  }

  before(async function () {
    this.timeout(120_000);
    t = await freshDatabase('strandedreads');
    // 3,000 tasks leased by the live invocations of 100 other pools (10 each, 3 tasks each), which are not
    // stranded; 10 tasks the pool's ended invocations still lease; 10 another pool's ended invocations still
    // lease in its own queue. Then 100,000 finished tasks and 20,000 finished invocations of history.
    await t.db.query(
      `INSERT INTO ltp.invocations (pool_namespace, pool_name, pool_uid, queue, status, function_name, tasks_per_invocation,
                                    max_task_attempts, heartbeat_timeout_seconds, invoked_at, ready_at, running_at)
       SELECT 'ns', 'p' || p, 'uid-live-' || p, 'q-live-' || p, 'running', 'fn', 3, 3, 60, now(), now(), now()
         FROM generate_series(1, 100) p, generate_series(1, 10) g`,
    );
    await t.db.query(
      `INSERT INTO ltp.tasks (queue, status, invocation_id, leased_at, attempts)
       SELECT i.queue, 'leased', i.id, now(), 1 FROM ltp.invocations i, generate_series(1, 3) WHERE i.status = 'running'`,
    );
    for (const [uid, queue] of [
      ['uid-mine', 'q-mine'],
      ['uid-other', 'q-other'],
    ]) {
      const ended = await t.db.query<{ id: number }>(
        `INSERT INTO ltp.invocations (pool_namespace, pool_name, pool_uid, queue, status, function_name, tasks_per_invocation,
                                      max_task_attempts, heartbeat_timeout_seconds, invoked_at, ready_at, finished_at)
         SELECT 'ns', $1, $1, $2, 'terminated', 'fn', 1, 3, 60, now(), now(), now() FROM generate_series(1, 10) RETURNING id`,
        [uid, queue],
      );
      await t.db.query(
        `INSERT INTO ltp.tasks (queue, status, invocation_id, leased_at, attempts) SELECT $1, 'leased', id, now(), 1 FROM unnest($2::bigint[]) id`,
        [queue, ended.rows.map((r) => r.id)],
      );
    }
    await addHistory(100_000, 20_000);
  });

  after(async () => {
    await t?.close();
  });

  /** Shared buffers of a statement and its rows, as a pass runs it (its settings, a generic plan) or plainly. */
  async function explainPrepared(sql: string, types: string, args: string, settings: 'pass' | 'plain') {
    const client = await t.db.connect();
    try {
      await client.query(settings === 'pass' ? PASS_BEGIN : 'BEGIN');
      await client.query(`PREPARE stranded(${types}) AS ${sql}`);
      const buffers = await explainBuffers(client, `EXECUTE stranded(${args})`);
      const rows = await client.query<{ pool_uid: string }>(`EXECUTE stranded(${args})`);
      await client.query('ROLLBACK');
      await client.query('DEALLOCATE stranded');
      return { buffers, rows: rows.rows };
    } finally {
      client.release();
    }
  }

  const ofPool = (settings: 'pass' | 'plain') =>
    explainPrepared(STRANDED_LEASES_OF_POOL_SQL, 'text, text, int', "'uid-mine', 'q-mine', 1000", settings);
  const ofDatabase = (settings: 'pass' | 'plain') => explainPrepared(STRANDED_LEASES_SQL, 'int', '1000', settings);

  it('reads as much for them once the history has grown threefold: leased tasks, never the history', async () => {
    const before = {
      pool: await ofPool('pass'),
      poolPlain: await ofPool('plain'),
      database: await ofDatabase('plain'),
      databasePass: await ofDatabase('pass'),
    };
    expect(before.pool.rows.map((r) => r.pool_uid)).to.deep.equal(Array.from({ length: 10 }, () => 'uid-mine'));
    expect(before.database.rows.map((r) => r.pool_uid).sort()).to.deep.equal([
      ...Array.from({ length: 10 }, () => 'uid-mine'),
      ...Array.from({ length: 10 }, () => 'uid-other'),
    ]);
    // A pool's read (a pass that ended rows): its queue's leased tasks, a few pages. Before, it walked the
    // pool's finished invocations or the tasks' primary key, hundreds to thousands of pages.
    expect(before.pool.buffers, "a pool's read, shared buffers").to.be.below(100);
    await addHistory(200_000, 40_000);
    const after = {
      pool: await ofPool('pass'),
      poolPlain: await ofPool('plain'),
      database: await ofDatabase('plain'),
      databasePass: await ofDatabase('pass'),
    };
    const buffers = (o: typeof before) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, v.buffers]));
    // The database's read looks up the invocation of each of the 3,020 leased tasks (live rows): thousands of
    // buffers, but the same thousands whatever the history.
    for (const key of Object.keys(before) as Array<keyof typeof before>) {
      expect(after[key].buffers, `${key}: ${JSON.stringify({ before: buffers(before), after: buffers(after) })}`).to.be.at.most(
        Math.ceil(before[key].buffers * 1.1) + 10,
      );
    }
  });
});
