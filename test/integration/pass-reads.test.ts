// What a dispatch pass reads of the database: its own pool's live rows, however many rows other pools have.
// Against a real Postgres, with the pass's own transaction settings (PASS_BEGIN) and its own snapshot
// statement; what is asserted is the shared buffers the statement touches (EXPLAIN ANALYZE), which do not
// move with the machine's speed, and the snapshot it returns.
import { expect } from 'chai';
import { PASS_BEGIN } from '../../src/controller/pass-act.ts';
import { POOL_SNAPSHOTS_SQL } from '../../src/store/pool-snapshot.ts';
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
