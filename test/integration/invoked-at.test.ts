// A row's invoked_at is when Lambda answered its invoke, on the database's clock (db-clock.ts), however late
// the statement that marks it runs; and its finished_at, when the controller ends it, is when the row was
// ended, however long its transaction waited first. Against a real Postgres; the answers' moments are taken here.
import { expect } from 'chai';
import pg from 'pg';
import type { Pool } from '../../src/api/types.ts';
import { clockProbe } from '../../src/controller/databases.ts';
import { templateFor } from '../../src/controller/pass-act.ts';
import { DbClock } from '../../src/store/db-clock.ts';
import { endInvocations, insertInvocations, markInvoked, terminatePoolInvocations } from '../../src/store/invocation-store.ts';
import { freshDatabase, type TestDatabase } from '../support/postgres.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const pool: Pool = {
  meta: { namespace: 'clock', name: 'p', uid: 'uid-clock', generation: 1, finalizers: [] },
  status: {},
  spec: {
    function: { name: 'worker' },
    queue: 'q-clock',
    maxConcurrency: 10,
    tasksPerInvocation: 1,
    startTimeoutSeconds: 900,
    heartbeatTimeoutSeconds: 60,
    maxTaskAttempts: 3,
    retry: { initialDelaySeconds: 0, maxDelaySeconds: 0 },
    suspend: false,
  },
};

describe("invoked_at on the database's clock (real Postgres)", function () {
  this.timeout(30_000);
  let t: TestDatabase;
  /** A connection of its own, so that a statement can be made to wait behind another on it. */
  let client: pg.Client;

  before(async () => {
    t = await freshDatabase('invokedat');
    client = new pg.Client({ connectionString: t.url });
    await client.connect();
  });

  after(async () => {
    await client?.end();
    await t?.close();
  });

  /** Rows answered at known moments, each on the monotonic clock and on the wall clock (which Postgres shares here). */
  const answered = async (count: number) => {
    const ids = await insertInvocations(t.db, { template: templateFor(pool), count, invokeAfterMs: 0 });
    const rows: Array<{ id: number; acceptedAt: number; wallMs: number }> = [];
    for (const id of ids) {
      rows.push({ id, acceptedAt: performance.now(), wallMs: Date.now() });
      await sleep(5);
    }
    return rows;
  };
  const invokedMs = async (ids: number[]) =>
    new Map(
      (
        await t.db.query<{ id: string; ms: number }>(
          `SELECT id, extract(epoch FROM invoked_at)::float8 * 1000 AS ms FROM ltp.invocations WHERE id = ANY($1::bigint[])`,
          [ids],
        )
      ).rows.map((r) => [Number(r.id), r.ms]),
    );

  it("writes each answer's own moment, within 5 ms, though the marking statement waited 300 ms behind another", async () => {
    const clock = new DbClock();
    const probe = clockProbe(t.db, clock);
    // As the connectivity probe does once a second; the quickest of them gives the offset.
    for (let i = 0; i < 20; i += 1) await probe();
    const rows = await answered(5);
    // The connection is busy for 300 ms: the marking statement is sent, and runs, after that.
    const busy = client.query('SELECT pg_sleep(0.3)');
    await markInvoked(client, rows, clock);
    await busy;
    const invoked = await invokedMs(rows.map((r) => r.id));
    for (const r of rows) {
      expect((invoked.get(r.id) ?? Number.NaN) - r.wallMs, `row ${r.id}: invoked_at less its answer's moment (ms)`).to.be.within(-5, 5);
    }
  });

  it("without a recent probe, falls back to the statement's clock less each answer's age: never before the answer", async () => {
    const rows = await answered(3);
    const before = Date.now();
    await markInvoked(client, rows, new DbClock());
    const invoked = await invokedMs(rows.map((r) => r.id));
    for (const r of rows) {
      const ms = invoked.get(r.id) ?? Number.NaN;
      expect(ms - r.wallMs, `row ${r.id}: invoked_at less its answer's moment (ms)`).to.be.at.least(-3);
      expect(ms, `row ${r.id}: invoked_at is no later than the statement`).to.be.at.most(Date.now() + 3);
      expect(ms - before, `row ${r.id}: invoked_at is before the statement was sent`).to.be.below(3);
    }
  });

  it('never writes a time later than the marking statement, whatever the clock says', async () => {
    const clock = new DbClock();
    // A probe that read the database's clock 60 s ahead of this host's (a wrong clock, a bad reading).
    const now = performance.now();
    clock.record({ sentAt: now - 0.5, answeredAt: now, databaseMs: Date.now() + 60_000 });
    const rows = await answered(2);
    await markInvoked(client, rows, clock);
    const after = Date.now();
    const invoked = await invokedMs(rows.map((r) => r.id));
    for (const r of rows) expect(invoked.get(r.id), `row ${r.id}: invoked_at (ms since the epoch)`).to.be.at.most(after + 3);
  });

  it('ends a row at the moment it is ended, not when its transaction began: the hold on its tasks is never shortened', async () => {
    const [ended = 0, terminated = 0] = await insertInvocations(t.db, {
      template: templateFor({ ...pool, meta: { ...pool.meta, uid: 'uid-clock-ended' } }),
      count: 2,
      invokeAfterMs: 0,
    });
    await client.query('BEGIN');
    try {
      // The pass's or the sweep's transaction waits (for the pool's lock, behind a slow pass) before it ends rows;
      // a worker's heartbeat may be accepted meanwhile, and the tasks' hold counts from finished_at.
      await client.query('SELECT pg_sleep(0.4)');
      expect(
        await endInvocations(client, { ids: [ended], from: ['created'], to: 'orphaned', code: 'HeartbeatLost', message: 'x' }),
      ).to.deep.equal([ended]);
      await client.query('SELECT pg_sleep(0.2)');
      expect(await terminatePoolInvocations(client, { poolUid: 'uid-clock-ended', code: 'PoolGone', message: 'x' })).to.deep.equal([
        terminated,
      ]);
      const late = await client.query<{ id: string; ms: number }>(
        `SELECT id, extract(epoch FROM finished_at - now())::float8 * 1000 AS ms FROM ltp.invocations WHERE id = ANY($1::bigint[]) ORDER BY id`,
        [[ended, terminated]],
      );
      // Before, both read 0: now(), the transaction's start.
      expect(late.rows.map((r) => Number(r.id))).to.deep.equal([ended, terminated]);
      expect(late.rows[0]?.ms, 'orphaned: ms after the transaction began').to.be.at.least(390);
      expect(late.rows[1]?.ms, 'terminated: ms after the transaction began').to.be.at.least(590);
    } finally {
      await client.query('ROLLBACK');
    }
  });
});
