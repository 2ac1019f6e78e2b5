// What a pool's status write reads of the database: its own live rows, a recent window and its totals,
// however much history the pool has and however many live rows other pools have. Against a real Postgres,
// through the store's own functions; each statement they send is also run under EXPLAIN ANALYZE, and what is
// asserted is the shared buffers it touched (which do not move with the machine's speed) and what each read
// returns.
import { expect } from 'chai';
import type pg from 'pg';
import type { Queryable } from '../../src/store/db.ts';
import { poolInvocationCounts, recentTrouble } from '../../src/store/invocation-store.ts';
import { startSignals } from '../../src/store/start-signals.ts';
import { invocationsFinishedSince } from '../../src/store/finished-rows.ts';
import { isWasted } from '../../src/planner/waste.ts';
import { explainBuffers } from '../support/explain.ts';
import { freshDatabase, type TestDatabase } from '../support/postgres.ts';

const OTHER_POOLS = 200;
const LIVE_PER_OTHER_POOL = 100;
const HISTORY = 100_000;
const RECENT = 5_000;
const MINE = { created: 300, deferred: 30, pending: 50, ready: 20, running: 30 };

/** A Queryable that runs each statement twice: under EXPLAIN ANALYZE (its buffers recorded), then for real. */
function explaining(db: Queryable): { db: Queryable; buffers: number[] } {
  const buffers: number[] = [];
  const query = async (config: string | pg.QueryConfig, values?: unknown[]) => {
    const text = typeof config === 'string' ? config : config.text;
    const params = typeof config === 'string' ? values : (config.values ?? values);
    buffers.push(await explainBuffers(db, text, params));
    return db.query(text, params);
  };
  return { db: { query } as unknown as Queryable, buffers };
}

describe('what a status write reads (real Postgres)', function () {
  this.timeout(180_000);
  let t: TestDatabase;

  before(async () => {
    t = await freshDatabase('statusreads');
    const columns = `pool_namespace, pool_name, pool_uid, queue, status, function_name, tasks_per_invocation,
                     max_task_attempts, heartbeat_timeout_seconds, created_at, invoked_at, ready_at, finished_at, tasks_started, error_code`;
    // 100,000 invocations of the pool's own that finished two days ago: its history.
    await t.db.query(
      `INSERT INTO ltp.invocations (${columns})
       SELECT 'mine', 'mine', 'uid-mine', 'q-mine', 'succeeded', 'fn', 1, 3, 60, now() - interval '2 days', now() - interval '2 days',
              now() - interval '2 days', now() - interval '2 days' + make_interval(secs => g / 100.0), 1, NULL
         FROM generate_series(1, $1::int) g`,
      [HISTORY],
    );
    // 200 other pools with 100 live invocations each.
    await t.db.query(
      `INSERT INTO ltp.invocations (${columns})
       SELECT 'other', 'p' || (g % $1), 'uid-other-' || (g % $1), 'q-other-' || (g % $1), 'pending', 'fn', 1, 3, 60,
              now(), now(), NULL, NULL, 0, NULL
         FROM generate_series(1, $2::int) g ORDER BY g % $1`,
      [OTHER_POOLS, OTHER_POOLS * LIVE_PER_OTHER_POOL],
    );
    // The pool's live rows: created (some waiting again after a throttle), pending, ready and running.
    await t.db.query(
      `INSERT INTO ltp.invocations (${columns})
       SELECT 'mine', 'mine', 'uid-mine', 'q-mine', s.status::ltp.invocation_status, 'fn', 1, 3, 60, now(),
              CASE WHEN s.status = 'created' THEN NULL ELSE now() END,
              CASE WHEN s.status IN ('ready', 'running') THEN now() END, NULL, 0,
              CASE WHEN s.status = 'created' AND g <= $5 THEN 'TooManyRequestsException' END
         FROM (VALUES ('created', $1::int), ('pending', $2::int), ('ready', $3::int), ('running', $4::int)) AS s(status, n),
              generate_series(1, s.n) g`,
      [MINE.created, MINE.pending, MINE.ready, MINE.running, MINE.deferred],
    );
    // And 5,000 more that finished in the last few minutes (a busy pool): inside the trouble window, but
    // nothing a status read of a pool without trouble should read.
    await t.db.query(
      `INSERT INTO ltp.invocations (${columns})
       SELECT 'mine', 'mine', 'uid-mine', 'q-mine', 'succeeded', 'fn', 1, 3, 60, now() - interval '5 minutes', now() - interval '5 minutes',
              now() - interval '5 minutes', now() - make_interval(secs => g / 100.0), 1, NULL
         FROM generate_series(1, $1::int) g`,
      [RECENT],
    );
    await t.db.query('ANALYZE ltp.invocations');
  });

  after(async () => {
    await t?.close();
  });

  it("counts the pool's 400 live invocations by state, not its 105,000 finished ones or other pools' 20,000 live ones", async () => {
    const probe = explaining(t.db);
    const { counts } = await poolInvocationCounts(probe.db, 'uid-mine');
    expect({ created: counts.created, pending: counts.pending, ready: counts.ready, running: counts.running }).to.deep.equal({
      created: MINE.created,
      pending: MINE.pending,
      ready: MINE.ready,
      running: MINE.running,
    });
    // The pool's live rows (about 10 heap pages) and their index pages: tens. Its history is about 2,000 pages.
    expect(probe.buffers, 'shared buffers each statement touched').to.have.length(1);
    expect(probe.buffers[0], 'shared buffers').to.be.below(100);
  });

  it('finds the invocations waiting again after a throttle among the live rows alone', async () => {
    const probe = explaining(t.db);
    const trouble = await recentTrouble(probe.db, { poolUid: 'uid-mine', windowSeconds: 300 });
    expect(trouble.deferred).to.deep.include({ code: 'TooManyRequestsException', count: MINE.deferred });
    expect(trouble.orphaned, 'orphaned in the window').to.equal(0);
    expect(probe.buffers, 'shared buffers each statement touched').to.have.length(1);
    expect(probe.buffers[0], 'shared buffers').to.be.below(100);
  });

  it('tells whether Lambda accepted an invoke of the pool since its last rejection, and which function it refused', async () => {
    const rejected = `INSERT INTO ltp.invocations (pool_namespace, pool_name, pool_uid, queue, status, function_name, tasks_per_invocation,
                                                   max_task_attempts, heartbeat_timeout_seconds, finished_at, error_code, error_message)
                      VALUES ('mine', $2, $1, 'q', 'failed', 'typo-function', 1, 3, 60, now() - interval '1 minute',
                              'ResourceNotFoundException', 'Function not found')`;
    // A pool whose only invoke was refused: the rejection stands.
    await t.db.query(rejected, ['uid-refused', 'refused']);
    const before = await recentTrouble(t.db, { poolUid: 'uid-refused', windowSeconds: 300 });
    expect(before.rejection).to.deep.include({
      code: 'ResourceNotFoundException',
      function: { name: 'typo-function' },
      acceptedSince: false,
    });
    // Then the user fixed the name and Lambda accepted the next invoke.
    await t.db.query(
      `INSERT INTO ltp.invocations (pool_namespace, pool_name, pool_uid, queue, status, function_name, tasks_per_invocation,
                                    max_task_attempts, heartbeat_timeout_seconds, invoked_at)
       VALUES ('mine', 'refused', 'uid-refused', 'q', 'pending', 'fixed-function', 1, 3, 60, now())`,
    );
    const after = await recentTrouble(t.db, { poolUid: 'uid-refused', windowSeconds: 300 });
    expect(after.rejection?.acceptedSince).to.equal(true);
    // The same read for the pool with 100,000 finished rows: still bounded by its live rows and the window.
    await t.db.query(rejected, ['uid-mine', 'mine']);
    const probe = explaining(t.db);
    const mine = await recentTrouble(probe.db, { poolUid: 'uid-mine', windowSeconds: 300 });
    expect(mine.rejection?.acceptedSince, 'its pending rows were accepted after the rejection').to.equal(true);
    expect(probe.buffers, 'the read, then the question asked only of a pool with a rejection').to.have.length(2);
    for (const buffers of probe.buffers) expect(buffers, 'shared buffers').to.be.below(100);
  });

  it('reads the invocations waiting to start and the last few finished ones, not the history', async () => {
    const probe = explaining(t.db);
    const signals = await startSignals(probe.db, { poolUid: 'uid-mine', queue: 'q-mine' });
    expect(signals.waiting, 'invocations waiting to start').to.equal(MINE.pending);
    expect(probe.buffers, 'shared buffers each statement touched').to.have.length(1);
    expect(probe.buffers[0], 'shared buffers').to.be.below(150);
  });
});

describe("wasted invocations: the metric's rule is the status's (real Postgres)", function () {
  this.timeout(60_000);
  let t: TestDatabase;

  before(async () => {
    t = await freshDatabase('wasted');
  });
  after(async () => {
    await t?.close();
  });

  it('counts in ltp_invocations_wasted_total exactly the rows ltp.pool_totals counts as wasted, NoTimeToStart included', async () => {
    // Every way an invocation ends: [status, started (ready_at set), tasks leased, tasks started, error code].
    const endings: Array<[string, boolean, number, number, string | null]> = [
      ['succeeded', true, 0, 0, null], // leased nothing: the backlog was gone
      ['succeeded', true, 2, 2, null], // worked
      ['failed', true, 1, 0, 'NoTimeToStart'], // leased, then had no time to start it (was not counted by the metric)
      ['failed', true, 0, 0, 'NoTimeToStart'], // had no time to lease (was not counted by the metric)
      ['failed', true, 2, 1, 'HandlerCrashed'], // started one, then crashed
      ['failed', false, 0, 0, 'ResourceNotFoundException'], // rejected by Lambda, never ran: not billed
      ['orphaned', true, 1, 0, 'HeartbeatLost'], // lost: the lease, not a finish
      ['orphaned', false, 0, 0, 'StartTimeout'],
      ['terminated', true, 0, 0, 'PoolGone'],
    ];
    const uid = 'uid-wasted';
    const inserted = await t.db.query<{ id: string }>(
      `INSERT INTO ltp.invocations (pool_namespace, pool_name, pool_uid, queue, status, function_name, tasks_per_invocation,
                                    max_task_attempts, heartbeat_timeout_seconds)
       SELECT 'ns', 'wasted', $1, 'q-wasted', 'created', 'fn', 2, 3, 60 FROM generate_series(1, $2::int) RETURNING id`,
      [uid, endings.length],
    );
    const ids = inserted.rows.map((r) => Number(r.id)).sort((a, b) => a - b);
    // Through the states the ledger allows: Lambda accepted all but the rejected one; the started ones ran.
    const rejected = ids[endings.findIndex((e) => e[4] === 'ResourceNotFoundException')];
    const started = ids.filter((_, i) => endings[i]?.[1]);
    await t.db.query(`UPDATE ltp.invocations SET status = 'pending', invoked_at = now() WHERE id = ANY($1::bigint[]) AND id <> $2`, [
      ids,
      rejected,
    ]);
    await t.db.query(`UPDATE ltp.invocations SET status = 'ready', ready_at = now() WHERE id = ANY($1::bigint[])`, [started]);
    await t.db.query(`UPDATE ltp.invocations SET status = 'running', running_at = now() WHERE id = ANY($1::bigint[])`, [started]);
    // One statement ends them all, as the trigger sees a pass's or a worker's statement.
    await t.db.query(
      `UPDATE ltp.invocations i SET status = e.status::ltp.invocation_status, finished_at = now(),
              tasks_leased = e.leased, tasks_started = e.started_tasks, error_code = e.code
         FROM unnest($1::bigint[], $2::text[], $3::boolean[], $4::int[], $5::int[], $6::text[]) AS e(id, status, started, leased, started_tasks, code)
        WHERE i.id = e.id`,
      [
        ids,
        endings.map((e) => e[0]),
        endings.map((e) => e[1]),
        endings.map((e) => e[2]),
        endings.map((e) => e[3]),
        endings.map((e) => e[4]),
      ],
    );
    const totals = await t.db.query<{ wasted: string }>(`SELECT wasted FROM ltp.pool_totals WHERE pool_uid = $1`, [uid]);
    const finished = await invocationsFinishedSince(t.db, { poolUid: uid, since: new Date(0), limit: 100 });
    expect(finished).to.have.length(endings.length);
    expect(finished.filter(isWasted).length, 'the metric').to.equal(Number(totals.rows[0]?.wasted));
    expect(Number(totals.rows[0]?.wasted), 'the status').to.equal(3);
  });
});
