// Dispatch passes of many pools share their database work (pass-batcher.ts): the passes ready together run
// as one transaction. Against a real Postgres and the local Lambda runtime through the real AWS SDK; what is
// asserted is the rows each pool ends up with.
import { expect } from 'chai';
import pg from 'pg';
import type { Pool, PoolSpec } from '../../src/api/types.ts';
import { clockProbe, type Database } from '../../src/controller/databases.ts';
import { Connectivity } from '../../src/controller/connectivity.ts';
import { createDb } from '../../src/store/db.ts';
import type { DispatchPassResult } from '../../src/controller/dispatch-pass.ts';
import { poolLockKey, templateFor, type DispatchPassOptions } from '../../src/controller/pass-act.ts';
import { insertInvocations } from '../../src/store/invocation-store.ts';
import { PassBatcher } from '../../src/controller/pass-batcher.ts';
import { createInvoker, type Invoker } from '../../src/lambda/invoker.ts';
import type { LambdaRuntime } from '../../dev/src/lambda-runtime/index.ts';
import type { TestDatabase } from '../support/postgres.ts';
import { enqueueTasks, parkedPool, startParkedLambda, type ParkedLambda } from '../support/parked-lambda.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const OPTIONS: DispatchPassOptions = {
  reinvokeGraceMs: 60_000,
  rejectionBackoffMs: 30_000,
  limits: { resyncMs: 30_000, minRequeueMs: 200 },
};

const poolFor = (name: string, spec: Partial<PoolSpec> = {}): Pool => parkedPool('batch', name, spec);

describe('dispatch passes of many pools batched into one transaction (real Postgres, local Lambda runtime)', function () {
  this.timeout(60_000);
  let stack: ParkedLambda | undefined;
  let t: TestDatabase;
  let runtime: LambdaRuntime;
  let invoker: Invoker;
  let database: Database;

  before(async () => {
    stack = await startParkedLambda('batch');
    ({ t, runtime, invoker, database } = stack);
  });

  after(async () => {
    await stack?.close();
  });

  const enqueue = (queue: string, count: number) => enqueueTasks(t.db, queue, count);

  /** A row of `pool` past its start deadline, which its pass will orphan, held FOR UPDATE by another session. */
  const heldOverdueRow = async (pool: Pool): Promise<{ row: number; locker: pg.Client }> => {
    const [row = 0] = await insertInvocations(t.db, { template: templateFor(pool), count: 1, invokeAfterMs: 0 });
    await t.db.query(`UPDATE ltp.invocations SET status = 'pending', created_at = now() - interval '2 hours' WHERE id = $1`, [row]);
    const locker = new pg.Client({ connectionString: t.url });
    await locker.connect();
    await locker.query('BEGIN');
    await locker.query('SELECT id FROM ltp.invocations WHERE id = $1 FOR UPDATE', [row]);
    return { row, locker };
  };

  const rowsOf = async (uid: string) =>
    (
      await t.db.query<{ status: string; decision_id: number | null; decided_at: Date | null; decision_pool: string | null }>(
        `SELECT i.status, i.decision_id, d.decided_at, d.pool_uid AS decision_pool
           FROM ltp.invocations i LEFT JOIN ltp.decisions d ON d.id = i.decision_id WHERE i.pool_uid = $1 ORDER BY i.id`,
        [uid],
      )
    ).rows;

  it('gives each pool of a batch exactly its own arithmetic, in one transaction, and invokes every row', async () => {
    const batcher = new PassBatcher({ invoker, options: OPTIONS, maxBatch: 256 });
    // Backlogs 0..19 at 2 tasks per invocation, at most 5 at once: ceil(backlog / 2), capped at 5.
    const pools = Array.from({ length: 20 }, (_, i) => poolFor(`p${i}`));
    for (const [i, pool] of pools.entries()) if (i > 0) await enqueue(pool.spec.queue, i);
    const results = await Promise.all(pools.map((pool) => batcher.run(database, { pool, connectedForMs: Number.POSITIVE_INFINITY })));
    const decidedAt = new Set<number>();
    for (const [i, pool] of pools.entries()) {
      const want = Math.min(5, Math.ceil(i / 2));
      const rows = await rowsOf(pool.meta.uid);
      expect(rows, `rows of pool ${i} (backlog ${i})`).to.have.length(want);
      expect(
        rows.map((r) => r.status),
        `pool ${i}: every row accepted by Lambda`,
      ).to.deep.equal(rows.map(() => 'pending'));
      expect(
        rows.map((r) => r.decision_pool),
        `pool ${i}: its rows carry its own decision`,
      ).to.deep.equal(rows.map(() => pool.meta.uid));
      const result = results[i] as DispatchPassResult;
      expect(result.dispatched, `pool ${i}: the pass reports the rows it inserted`).to.have.length(want);
      expect(result.invoke.accepted).to.equal(want);
      for (const r of rows) if (r.decided_at) decidedAt.add(r.decided_at.getTime());
    }
    // Decisions take the transaction's clock: every pool that dispatched shares one.
    expect([...decidedAt], 'the decision times of the batch').to.have.length(1);
  });

  it('runs the first leadBatch passes of a burst in a transaction of their own and the rest in another, each pool exactly its own rows', async () => {
    const batcher = new PassBatcher({ invoker, options: OPTIONS, maxBatch: 256, leadBatch: 8 });
    const pools = Array.from({ length: 20 }, (_, i) => poolFor(`lead${i}`));
    for (const pool of pools) await enqueue(pool.spec.queue, 7);
    const results = await Promise.all(pools.map((pool) => batcher.run(database, { pool, connectedForMs: Number.POSITIVE_INFINITY })));
    // A backlog of 7 at 2 tasks per invocation: 4 rows each, every one accepted.
    expect(results.map((r) => (r as DispatchPassResult).invoke.accepted)).to.deep.equal(pools.map(() => 4));
    // Each transaction's rows carry its id (xmin): the decisions' tell which pools went together.
    const decided = await t.db.query<{ pool_uid: string; xid: string; rows: number; pending: number; foreign: number }>(
      `SELECT d.pool_uid, d.xmin::text AS xid, count(i.id)::int AS rows, count(i.id) FILTER (WHERE i.status = 'pending')::int AS pending,
              count(i.id) FILTER (WHERE i.pool_uid <> d.pool_uid)::int AS foreign
         FROM ltp.decisions d LEFT JOIN ltp.invocations i ON i.decision_id = d.id
        WHERE d.pool_uid = ANY($1::text[]) GROUP BY d.id, d.pool_uid, d.xmin::text`,
      [pools.map((p) => p.meta.uid)],
    );
    expect(decided.rows, 'one decision per pool').to.have.length(20);
    const byPool = new Map(decided.rows.map((r) => [r.pool_uid, r]));
    const xidOf = (i: number) => byPool.get(pools[i]?.meta.uid ?? '')?.xid;
    for (const [i, pool] of pools.entries()) {
      expect(byPool.get(pool.meta.uid), `pool ${i}: its decision names its own 4 rows, all accepted`).to.include({
        rows: 4,
        pending: 4,
        foreign: 0,
      });
    }
    expect(new Set(pools.map((_, i) => xidOf(i))).size, 'two transactions').to.equal(2);
    expect(
      pools.map((_, i) => xidOf(i) === xidOf(0)),
      'the first 8 passes in the lead transaction, the other 12 in the second',
    ).to.deep.equal(pools.map((_, i) => i < 8));
  });

  it('marks the rows of a burst of passes in one statement once its last invoke is answered, not one per pass', async () => {
    // Few slots, so that the passes' invokes are answered one pass after another, as in a burst of a hundred pools.
    const narrow = createInvoker({
      defaultRegion: 'us-east-1',
      endpoint: runtime.endpoint,
      credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
      parallelism: 2,
    });
    try {
      const batcher = new PassBatcher({ invoker: narrow, options: OPTIONS, maxBatch: 256 });
      const pools = Array.from({ length: 10 }, (_, i) => poolFor(`burst${i}`, { tasksPerInvocation: 1 }));
      for (const pool of pools) await enqueue(pool.spec.queue, 5);
      const results = await Promise.all(pools.map((pool) => batcher.run(database, { pool, connectedForMs: Number.POSITIVE_INFINITY })));
      expect(results.map((r) => (r as DispatchPassResult).invoke.accepted)).to.deep.equal(pools.map(() => 5));
      // One statement is one transaction here: the rows it updated carry its transaction id (xmin).
      const marked = await t.db.query<{ pending: number; statements: number }>(
        `SELECT count(*) FILTER (WHERE status = 'pending')::int AS pending, count(DISTINCT xmin::text)::int AS statements
           FROM ltp.invocations WHERE pool_uid = ANY($1::text[])`,
        [pools.map((p) => p.meta.uid)],
      );
      expect(marked.rows[0], 'all 50 rows marked accepted, by one statement').to.deep.equal({ pending: 50, statements: 1 });

      // Yet each row's invoked_at is when Lambda accepted its own call, not when the statement ran (after the
      // last answer): set beside the local runtime's own record of when it accepted each request.
      const rows = await t.db.query<{ request_id: string; invoked_ms: number }>(
        `SELECT request_id, extract(epoch FROM invoked_at)::float8 * 1000 AS invoked_ms
           FROM ltp.invocations WHERE pool_uid = ANY($1::text[])`,
        [pools.map((p) => p.meta.uid)],
      );
      const acceptedAt = new Map(runtime.events('parked').map((e) => [e.requestId, e.acceptedAt]));
      const pairs = rows.rows.map((r) => {
        const accepted = acceptedAt.get(r.request_id);
        if (accepted === undefined) throw new Error(`the runtime has no record of request ${r.request_id}`);
        return { invoked: r.invoked_ms, accepted };
      });
      const lastAccepted = Math.max(...pairs.map((p) => p.accepted));
      const firstAccepted = Math.min(...pairs.map((p) => p.accepted));
      expect(lastAccepted - firstAccepted, 'the 50 invokes, 2 at a time, were accepted over some time').to.be.above(20);
      expect(Math.min(...pairs.map((p) => p.invoked)), 'the first row invoked before the last call was accepted').to.be.below(lastAccepted);
      for (const p of pairs) {
        expect(p.invoked - p.accepted, "a row's invoked_at, ms after the runtime accepted its call").to.be.within(-5, 250);
      }
    } finally {
      narrow.close();
    }
  });

  it('leaves a pool whose lock another session holds to that session (busy) and dispatches the rest of its batch', async () => {
    const batcher = new PassBatcher({ invoker, options: OPTIONS, maxBatch: 256 });
    const held = poolFor('held');
    const free = poolFor('free');
    await enqueue(held.spec.queue, 4);
    await enqueue(free.spec.queue, 4);
    const other = new pg.Client({ connectionString: t.url });
    await other.connect();
    try {
      await other.query('BEGIN');
      await other.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [poolLockKey(held.meta.uid)]);
      const [a, b] = await Promise.all([
        batcher.run(database, { pool: held, connectedForMs: Number.POSITIVE_INFINITY }),
        batcher.run(database, { pool: free, connectedForMs: Number.POSITIVE_INFINITY }),
      ]);
      expect(a).to.equal('busy');
      expect(await rowsOf(held.meta.uid), 'no row for the pool another session holds').to.have.length(0);
      expect((b as DispatchPassResult).dispatched).to.have.length(2);
      await other.query('COMMIT');
    } finally {
      await other.end();
    }
    const again = await batcher.run(database, { pool: held, connectedForMs: Number.POSITIVE_INFINITY });
    expect((again as DispatchPassResult).dispatched, 'dispatched once its lock is free').to.have.length(2);
  });

  it('fails only the pool whose pass fails; the other pools of its batch dispatch', async () => {
    const batcher = new PassBatcher({ invoker, options: OPTIONS, maxBatch: 256 });
    // A row the database refuses (heartbeat timeout 0 breaks a CHECK): parsing never lets such a spec through,
    // so it stands in here for any pool whose rows make its own statements fail.
    const broken = poolFor('broken', { heartbeatTimeoutSeconds: 0 });
    const fine = Array.from({ length: 3 }, (_, i) => poolFor(`fine${i}`));
    for (const pool of [broken, ...fine]) await enqueue(pool.spec.queue, 2);
    const settled = await Promise.allSettled(
      [broken, ...fine].map((pool) => batcher.run(database, { pool, connectedForMs: Number.POSITIVE_INFINITY })),
    );
    expect(settled[0]?.status).to.equal('rejected');
    expect(String((settled[0] as PromiseRejectedResult).reason)).to.match(/heartbeat_timeout_seconds/);
    expect(await rowsOf(broken.meta.uid)).to.have.length(0);
    for (const [i, pool] of fine.entries()) {
      expect(settled[i + 1]?.status, `pool fine${i}`).to.equal('fulfilled');
      expect(await rowsOf(pool.meta.uid), `rows of fine${i}`).to.have.length(1);
    }
  });

  it('fails only the pool whose row another session holds past the lock timeout; its batch dispatches, and the database is not lost', async () => {
    // The database's own statements wait at most 1 s for a lock here (15 s in the controller).
    const quick = createDb(t.url, { max: 4, lockTimeoutMs: 1_000 });
    const connectivity = new Connectivity({ probe: clockProbe(quick, database.clock) });
    const impatient: Database = { ...database, db: quick, connectivity };
    const batcher = new PassBatcher({ invoker, options: OPTIONS, maxBatch: 256 });
    const held = poolFor('held');
    const others = Array.from({ length: 3 }, (_, i) => poolFor(`beside${i}`));
    for (const pool of others) await enqueue(pool.spec.queue, 2);
    // Held by a session that never lets go (a worker login holding ltp.worker_heartbeat in an open
    // transaction does the same).
    const { locker } = await heldOverdueRow(held);
    try {
      const settled = await Promise.allSettled(
        [held, ...others].map((pool) => batcher.run(impatient, { pool, connectedForMs: Number.POSITIVE_INFINITY })),
      );
      expect(settled[0]?.status, 'the pool whose row is held fails').to.equal('rejected');
      expect(String((settled[0] as PromiseRejectedResult).reason)).to.match(/lock timeout/);
      for (const [i, pool] of others.entries()) {
        expect(settled[i + 1]?.status, `beside${i}, in the same batch`).to.equal('fulfilled');
        expect(await rowsOf(pool.meta.uid), `rows of beside${i}`).to.have.length(1);
      }
    } finally {
      await locker.query('ROLLBACK');
      await locker.end();
      connectivity.stop();
      await quick.end();
    }
  });

  it('settles the other pools of a batch within seconds while one pool waits out the full lock timeout on its held row', async () => {
    // The connection's own lock timeout is the controller's 15 s here: the other pools must not wait for it.
    const batcher = new PassBatcher({ invoker, options: OPTIONS, maxBatch: 256 });
    const held = poolFor('held-long');
    const others = Array.from({ length: 3 }, (_, i) => poolFor(`beside-long${i}`));
    for (const pool of others) await enqueue(pool.spec.queue, 2);
    const { row, locker } = await heldOverdueRow(held);
    try {
      const started = Date.now();
      const heldPass = batcher.run(database, { pool: held, connectedForMs: Number.POSITIVE_INFINITY });
      const heldSettled = heldPass.then(
        () => Date.now(),
        () => Date.now(),
      );
      const besides = await Promise.all(
        others.map((pool) =>
          batcher
            .run(database, { pool, connectedForMs: Number.POSITIVE_INFINITY })
            .then((result) => ({ result, at: Date.now() - started })),
        ),
      );
      for (const [i, { result, at }] of besides.entries()) {
        expect(at, `beside-long${i} settled within 5 s (the lock timeout is 15 s)`).to.be.below(5_000);
        expect((result as DispatchPassResult).dispatched, `beside-long${i} dispatched`).to.have.length(1);
      }
      const stillWaiting = await Promise.race([heldSettled.then(() => false), sleep(500).then(() => true)]);
      expect(stillWaiting, 'the held pool still waits for its row, patiently, after the others are through').to.equal(true);
      // Let go: the held pool's pass goes on and ends its overdue row, well within its 15 s.
      await locker.query('COMMIT');
      const result = (await heldPass) as DispatchPassResult;
      expect(result.orphaned, 'the held pass orphaned its overdue row once the lock was free').to.deep.equal([row]);
    } finally {
      await locker.end();
    }
  });

  it('lets no pass stuck on a row lock hold up the other pools of its database', async () => {
    const batcher = new PassBatcher({ invoker, options: OPTIONS, maxBatch: 256 });
    const stuck = poolFor('stuck');
    const other = poolFor('other');
    await enqueue(other.spec.queue, 2);
    const { row, locker } = await heldOverdueRow(stuck);
    try {
      const stuckPass = batcher.run(database, { pool: stuck, connectedForMs: Number.POSITIVE_INFINITY });
      await sleep(100);
      const started = Date.now();
      const otherPass = (await batcher.run(database, { pool: other, connectedForMs: Number.POSITIVE_INFINITY })) as DispatchPassResult;
      expect(Date.now() - started, 'the other pool waited for less than a second').to.be.below(1_000);
      expect(otherPass.dispatched).to.have.length(1);
      await locker.query('COMMIT');
      const unstuck = (await stuckPass) as DispatchPassResult;
      expect(unstuck.orphaned, 'the stuck pass went on once the lock was free').to.deep.equal([row]);
    } finally {
      await locker.end();
    }
  });
});
