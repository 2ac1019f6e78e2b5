// A large dispatch pass commits its first rows with its decision, invokes them, and inserts the rest right
// after on the same connection (pass-act.ts, first-rows.ts). Against a real Postgres and the local Lambda
// runtime through the real AWS SDK; what is asserted is the rows each pool ends up with, whether another
// pass can decide from the first rows alone, and what a failure to insert the rest leaves.
import { expect } from 'chai';
import type { Pool } from '../../src/api/types.ts';
import type { Database } from '../../src/controller/databases.ts';
import { runDispatchPass, type DispatchPassResult } from '../../src/controller/dispatch-pass.ts';
import { poolLockKey, type DispatchPassOptions } from '../../src/controller/pass-act.ts';
import { PassBatcher } from '../../src/controller/pass-batcher.ts';
import { splitFirstRows } from '../../src/planner/first-rows.ts';
import type { Invoker } from '../../src/lambda/invoker.ts';
import type { LambdaRuntime } from '../../dev/src/lambda-runtime/index.ts';
import type { TestDatabase } from '../support/postgres.ts';
import { enqueueTasks, parkedPool, startParkedLambda, type ParkedLambda } from '../support/parked-lambda.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const FIRST_ROWS = 128;
const OPTIONS: DispatchPassOptions = {
  reinvokeGraceMs: 60_000,
  rejectionBackoffMs: 30_000,
  limits: { resyncMs: 30_000, minRequeueMs: 200 },
  firstRows: FIRST_ROWS,
};
/** A batch with more dispatching pools than first rows: some pools' rows all come after the commit. */
const ONE_FIRST_ROW: DispatchPassOptions = { ...OPTIONS, firstRows: 1 };
const DEEP = 1_000;

/** A pool that may run a thousand invocations at once, one task each. */
const deepPool = (name: string): Pool => parkedPool('first', name, { maxConcurrency: DEEP, tasksPerInvocation: 1 });

describe('a large dispatch pass commits its first rows and inserts the rest while they are invoked (real Postgres, local Lambda runtime)', function () {
  this.timeout(60_000);
  let stack: ParkedLambda | undefined;
  let t: TestDatabase;
  let runtime: LambdaRuntime;
  let invoker: Invoker;
  let database: Database;

  before(async () => {
    stack = await startParkedLambda('first');
    ({ t, runtime, invoker, database } = stack);
  });

  after(async () => {
    await stack?.close();
  });

  const enqueue = (queue: string, count: number) => enqueueTasks(t.db, queue, count);

  const rowsOf = async (uid: string) =>
    (
      await t.db.query<{ id: number; status: string; decision_id: number | null }>(
        `SELECT id, status, decision_id FROM ltp.invocations WHERE pool_uid = $1 ORDER BY id`,
        [uid],
      )
    ).rows;

  const pass = (pool: Pool) => runDispatchPass({ pool, connectedForMs: Number.POSITIVE_INFINITY, db: t.db, invoker, options: OPTIONS });

  /**
   * The passes of `pools` as one batch, while a row trigger refuses the inserts `refuse` says: its PL/pgSQL
   * body, and the WHEN condition that picks the rows it sees.
   */
  const batchRefusing = async (options: DispatchPassOptions, pools: Pool[], refuse: { body: string; when: string }) => {
    await t.db.query(`CREATE FUNCTION ltp.test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ ${refuse.body} $$`);
    await t.db.query(`CREATE TRIGGER test_refuse BEFORE INSERT ON ltp.invocations FOR EACH ROW
                        WHEN (${refuse.when}) EXECUTE FUNCTION ltp.test_refuse()`);
    const batcher = new PassBatcher({ invoker, options, maxBatch: 256 });
    try {
      return (await Promise.all(
        pools.map((pool) => batcher.run(database, { pool, connectedForMs: Number.POSITIVE_INFINITY })),
      )) as DispatchPassResult[];
    } finally {
      await t.db.query('DROP TRIGGER test_refuse ON ltp.invocations');
      await t.db.query('DROP FUNCTION ltp.test_refuse()');
    }
  };

  const decisionsOf = async (uid: string) =>
    (await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ltp.decisions WHERE pool_uid = $1`, [uid])).rows[0]?.n;

  it('starts exactly the backlog under one decision, invokes every row, and reports them all', async () => {
    const pool = deepPool('deep');
    await enqueue(pool.spec.queue, DEEP);
    const batcher = new PassBatcher({ invoker, options: OPTIONS, maxBatch: 256 });
    const result = (await batcher.run(database, { pool, connectedForMs: Number.POSITIVE_INFINITY })) as DispatchPassResult;
    const rows = await rowsOf(pool.meta.uid);
    expect(rows, 'rows of a pool with 1,000 tasks, 1 task per invocation').to.have.length(DEEP);
    expect(new Set(rows.map((r) => r.status)), 'every row accepted by Lambda').to.deep.equal(new Set(['pending']));
    expect(new Set(rows.map((r) => r.decision_id)).size, 'decisions behind the rows').to.equal(1);
    expect(result.dispatched, 'the rows the pass reports').to.have.members(rows.map((r) => r.id));
    expect(result.invoke.accepted).to.equal(DEEP);
    expect(result.restError).to.equal(undefined);
    const decision = await t.db.query<{ dispatched: number }>(
      `SELECT (outcome->>'dispatched')::int AS dispatched FROM ltp.decisions WHERE pool_uid = $1`,
      [pool.meta.uid],
    );
    expect(
      decision.rows.map((r) => r.dispatched),
      'the decision the trace shows',
    ).to.deep.equal([DEEP]);
    expect(runtime.acceptedCount('parked')).to.be.at.least(DEEP);
  });

  it('lets no other pass decide from the first rows alone: two passes at once start the backlog once', async () => {
    const pool = deepPool('twice');
    await enqueue(pool.spec.queue, DEEP);
    // Both wait for the pool's lock: the one that waits gets it only once the other's rest is committed too.
    // Were the lock given back at the first commit, the second would see 128 rows and start 872 more.
    const results = await Promise.all([pass(pool), pass(pool)]);
    const rows = await rowsOf(pool.meta.uid);
    expect(rows, 'rows of the pool').to.have.length(DEEP);
    expect(
      results.map((r) => r.dispatched.length).sort((a, b) => a - b),
      'rows each pass started',
    ).to.deep.equal([0, DEEP]);
  });

  it('invokes its first rows when the rest cannot be inserted, gives its lock back, and the next pass starts exactly the rest', async () => {
    const pool = deepPool('failing');
    await enqueue(pool.spec.queue, DEEP);
    // A trigger that refuses this pool's rows past its first ones, as a full disk or a lost connection would.
    await t.db.query(`CREATE FUNCTION ltp.test_refuse_rest() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF (SELECT count(*) FROM ltp.invocations WHERE pool_uid = NEW.pool_uid) >= ${FIRST_ROWS} THEN
          RAISE EXCEPTION 'refused by the test';
        END IF;
        RETURN NEW;
      END $$`);
    await t.db.query(`CREATE TRIGGER test_refuse_rest BEFORE INSERT ON ltp.invocations FOR EACH ROW
                        WHEN (NEW.pool_uid = 'uid-failing') EXECUTE FUNCTION ltp.test_refuse_rest()`);
    let first: DispatchPassResult;
    try {
      first = await pass(pool);
    } finally {
      await t.db.query('DROP TRIGGER test_refuse_rest ON ltp.invocations');
      await t.db.query('DROP FUNCTION ltp.test_refuse_rest()');
    }
    expect(first.dispatched, 'rows the failed pass started').to.have.length(FIRST_ROWS);
    expect(first.invoke.accepted, 'its first rows invoked').to.equal(FIRST_ROWS);
    expect(String(first.restError), 'why the rest is missing').to.include('refused by the test');
    expect(first.requeueAfterMs, 'the pool is looked at again soon').to.equal(OPTIONS.limits.minRequeueMs);
    expect(await rowsOf(pool.meta.uid), 'rows after the failed pass').to.have.length(FIRST_ROWS);
    // The session lock held for the rest ends with the closed connection: another session gets it.
    let free = false;
    for (let i = 0; i < 100 && !free; i += 1) {
      const got = await t.db.query<{ got: boolean }>(`SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0)) AS got`, [
        poolLockKey(pool.meta.uid),
      ]);
      free = got.rows[0]?.got === true;
      if (!free) await sleep(20);
    }
    expect(free, "the pool's lock is free again").to.equal(true);
    const next = await pass(pool);
    expect(next.dispatched, 'rows the next pass started').to.have.length(DEEP - FIRST_ROWS);
    const rows = await rowsOf(pool.meta.uid);
    expect(rows, 'rows of the pool').to.have.length(DEEP);
    expect(new Set(rows.map((r) => r.status)), 'every row accepted by Lambda').to.deep.equal(new Set(['pending']));
  });

  it('gives every pool of a batch a first row: each decision is committed with the first rows, even if the rest fails', async () => {
    // 300 rows each, 128 first rows: one for each pool, the other 126 to the first pool (splitFirstRows).
    const [a, b] = [deepPool('spread-a'), deepPool('spread-b')].map((p) => ({ ...p, spec: { ...p.spec, maxConcurrency: 300 } }));
    if (!a || !b) throw new Error('two pools');
    const { first } = splitFirstRows([300, 300], FIRST_ROWS);
    expect(first, 'the first rows of each pool').to.deep.equal([FIRST_ROWS - 1, 1]);
    await enqueue(a.spec.queue, 300);
    await enqueue(b.spec.queue, 300);
    // Refuses each pool's rows past its first ones: the rest of both fails.
    const results = await batchRefusing(OPTIONS, [a, b], {
      body: `BEGIN
        IF (SELECT count(*) FROM ltp.invocations WHERE pool_uid = NEW.pool_uid)
           >= (CASE NEW.pool_uid WHEN 'uid-spread-a' THEN ${first[0]} ELSE ${first[1]} END) THEN
          RAISE EXCEPTION 'refused by the test';
        END IF;
        RETURN NEW;
      END`,
      when: `NEW.pool_uid IN ('uid-spread-a', 'uid-spread-b')`,
    });
    expect(
      results.map((r) => r.dispatched.length),
      'rows each pass started',
    ).to.deep.equal(first);
    expect(
      results.map((r) => r.invoke.accepted),
      'rows Lambda accepted',
    ).to.deep.equal(first);
    expect(
      results.map((r) => r.restError !== undefined),
      'passes that could not insert their rest',
    ).to.deep.equal([true, true]);
    expect([(await rowsOf(a.meta.uid)).length, (await rowsOf(b.meta.uid)).length], 'rows of each pool').to.deep.equal(first);
    expect(
      [await decisionsOf(a.meta.uid), await decisionsOf(b.meta.uid)],
      'decisions of each pool, committed with its first rows',
    ).to.deep.equal([1, 1]);
    expect(
      results.map((r) => r.decision !== undefined),
      'each pass reports its decision',
    ).to.deep.equal([true, true]);
    // The next passes start exactly the rest.
    const next = await Promise.all([a, b].map((pool) => pass(pool)));
    expect(next.map((r) => r.dispatched.length)).to.deep.equal([300 - (first[0] ?? 0), 300 - (first[1] ?? 0)]);
  });

  it('records the decision of a pool whose rows all come after the commit with those rows: if they fail, the pool has neither', async () => {
    // 300 rows each, and one first row in all: the batch commits one of the first pool's rows, the rest of its
    // rows and all of the second's come after. (With more first rows than pools, every pool gets one.)
    const [split, after] = [deepPool('split'), deepPool('after')].map((p) => ({ ...p, spec: { ...p.spec, maxConcurrency: 300 } }));
    if (!split || !after) throw new Error('two pools');
    await enqueue(split.spec.queue, 300);
    await enqueue(after.spec.queue, 300);
    const results = await batchRefusing(ONE_FIRST_ROW, [split, after], {
      body: `BEGIN RAISE EXCEPTION 'refused by the test'; END`,
      when: `NEW.pool_uid = 'uid-after'`,
    });
    expect(
      results.map((r) => r.dispatched.length),
      'rows each pass started',
    ).to.deep.equal([1, 0]);
    expect(
      results.map((r) => r.restError !== undefined),
      'passes that could not insert their rest',
    ).to.deep.equal([true, true]);
    expect(await rowsOf(split.meta.uid), 'rows of the pool split across the commit').to.have.length(1);
    expect(await decisionsOf(split.meta.uid), 'its decision, committed with its first rows').to.equal(1);
    expect(await rowsOf(after.meta.uid), 'rows of the pool whose rows all came after').to.have.length(0);
    expect(await decisionsOf(after.meta.uid), 'its decision, gone with its rows').to.equal(0);
    expect(results[1]?.decision, 'the pass reports no decision that is not there').to.equal(undefined);
    // The next passes start exactly the rest.
    const next = await Promise.all([split, after].map((pool) => pass(pool)));
    expect(next.map((r) => r.dispatched.length)).to.deep.equal([299, 300]);
  });

  it('looks at every pool of a split batch again at its start deadline, those whose rows all came after the commit too', async () => {
    const [one, two] = [deepPool('deadline-1'), deepPool('deadline-2')].map((p) => ({
      ...p,
      spec: { ...p.spec, maxConcurrency: 300, startTimeoutSeconds: 5 },
    }));
    if (!one || !two) throw new Error('two pools');
    await enqueue(one.spec.queue, 300);
    await enqueue(two.spec.queue, 300);
    // One first row in all: the second pool's rows all come after the commit.
    const batcher = new PassBatcher({ invoker, options: ONE_FIRST_ROW, maxBatch: 256 });
    const results = (await Promise.all(
      [one, two].map((pool) => batcher.run(database, { pool, connectedForMs: Number.POSITIVE_INFINITY })),
    )) as DispatchPassResult[];
    expect(
      results.map((r) => r.dispatched.length),
      'rows each pass started',
    ).to.deep.equal([300, 300]);
    // Rows that never start are orphaned at their start deadline (5 s), sooner than the resync (30 s).
    expect(
      results.map((r) => r.requeueAfterMs),
      'when each pool is looked at again (ms)',
    ).to.deep.equal([5_000, 5_000]);
  });
});
