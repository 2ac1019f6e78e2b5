// Retention against a real Postgres: finished rows older than their retention age go, younger ones and
// every live row stay, a pool's own retention wins over the default (only the pool that holds the queue
// sets the queue's), totals survive, and deleting in batches never holds up a dispatch pass (which runs here
// with a 100 ms lock timeout).
import { expect } from 'chai';
import { DatabaseRegistry } from '../../src/controller/databases.ts';
import { runDispatchPass, templateFor } from '../../src/controller/dispatch-pass.ts';
import { RetentionSweeper, type ServedPool } from '../../src/controller/retention-sweep.ts';
import { KubeApi, loadKubeConfig } from '../../src/controller/kube.ts';
import type { Pool } from '../../src/api/types.ts';
import { createInvoker } from '../../src/lambda/invoker.ts';
import { silentLogger } from '../../src/ops/logger.ts';
import { createDb } from '../../src/store/db.ts';
import { insertInvocations, poolInvocationCounts } from '../../src/store/invocation-store.ts';
import { claimQueue } from '../../src/store/queue-claims.ts';
import { enqueueTasks, queueTaskCounts } from '../../src/store/task-store.ts';
import { freshDatabase, type TestDatabase } from '../support/postgres.ts';
import { sharedControlPlane } from '../support/kube.ts';

const DAY = 86_400;

function pool(name: string, over: Partial<Pool['spec']> = {}): Pool {
  return {
    meta: { namespace: 'retention', name, uid: `uid-${name}`, generation: 1, finalizers: [] },
    status: {},
    spec: {
      function: { name: 'worker' },
      queue: name,
      maxConcurrency: 5,
      tasksPerInvocation: 1,
      startTimeoutSeconds: 900,
      heartbeatTimeoutSeconds: 120,
      maxTaskAttempts: 3,
      retry: { initialDelaySeconds: 10, maxDelaySeconds: 600 },
      suspend: false,
      ...over,
    },
  };
}

describe('retention (real Postgres)', function () {
  this.timeout(120_000);
  let t: TestDatabase;
  let registry: DatabaseRegistry;

  before(async function () {
    this.timeout(120_000);
    t = await freshDatabase('retention');
    const cp = await sharedControlPlane();
    registry = new DatabaseRegistry({
      kube: new KubeApi(loadKubeConfig(cp.kubeconfigPath)),
      defaultUrl: t.url,
      allowedDefaultNamespaces: [],
      logger: silentLogger(),
      onNotify: () => undefined,
    });
  });
  after(async () => {
    await registry.closeAll();
    await t.close();
  });

  /** Finished rows backdated by `ageDays`: tasks done (or failed) by invocations that succeeded. */
  async function finished(
    p: Pool,
    count: number,
    ageDays: number,
    status: 'done' | 'failed' = 'done',
  ): Promise<{ tasks: number[]; invocations: number[] }> {
    const invocations = await insertInvocations(t.db, { template: templateFor(p), count, invokeAfterMs: 0 });
    const tasks = await enqueueTasks(t.db, { queue: p.spec.queue, payloads: Array.from({ length: count }, () => ({})) });
    await t.db.query(
      `UPDATE ltp.invocations SET status = 'ready', ready_at = now() WHERE id = ANY($1::bigint[]);
       UPDATE ltp.invocations SET status = 'running', tasks_leased = 1, tasks_started = 1 WHERE id = ANY($1::bigint[]);`.replaceAll(
        '$1',
        `'{${invocations.join(',')}}'`,
      ),
    );
    await t.db.query(
      `UPDATE ltp.tasks t SET status = 'leased', invocation_id = i.id, leased_at = now()
         FROM unnest($1::bigint[], $2::bigint[]) AS i(task, id) WHERE t.id = i.task`,
      [tasks, invocations],
    );
    await t.db.query(`UPDATE ltp.tasks SET status = $2::ltp.task_status, finished_at = now() WHERE id = ANY($1::bigint[])`, [
      tasks,
      status,
    ]);
    await t.db.query(`UPDATE ltp.invocations SET status = 'succeeded', finished_at = now() WHERE id = ANY($1::bigint[])`, [invocations]);
    // Age them: the state stays, only the time moves back.
    await t.db.query(`UPDATE ltp.tasks SET finished_at = now() - make_interval(days => $2) WHERE id = ANY($1::bigint[])`, [tasks, ageDays]);
    await t.db.query(`UPDATE ltp.invocations SET finished_at = now() - make_interval(days => $2) WHERE id = ANY($1::bigint[])`, [
      invocations,
      ageDays,
    ]);
    return { tasks, invocations };
  }

  /** The pool claims its queue, as its first pass does, recording its retention (or its controller's default). */
  const claim = (p: Pool, defaultSeconds = 7 * DAY) =>
    claimQueue(t.db, {
      queue: p.spec.queue,
      pool: { namespace: p.meta.namespace, name: p.meta.name, uid: p.meta.uid },
      retentionSeconds: p.spec.retentionSeconds ?? defaultSeconds,
      isStale: async () => false,
    });

  /** This controller's sweep (default retention 7 days), serving these pools. */
  const sweeperServing = (served: ServedPool[]) =>
    new RetentionSweeper({
      databases: registry,
      defaultSeconds: 7 * DAY,
      intervalMs: 60_000,
      active: () => true,
      logger: silentLogger(),
      pools: () => served,
    });

  const exists = async (table: 'tasks' | 'invocations', ids: number[]) =>
    (await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ltp.${table} WHERE id = ANY($1::bigint[])`, [ids])).rows[0]?.n ?? 0;

  it('deletes finished rows older than their retention, keeps younger and live ones, and keeps the totals', async () => {
    const a = pool('ret-a');
    const b = pool('ret-b', { retentionSeconds: 30 * DAY });
    for (const p of [a, b]) {
      expect((await registry.resolve(p)).ok).to.equal(true);
      expect(await claim(p)).to.deep.equal({ held: true });
    }
    const oldA = await finished(a, 30, 8);
    const oldFailedA = await finished(a, 5, 9, 'failed');
    const youngA = await finished(a, 10, 2);
    const oldB = await finished(b, 10, 8);
    const liveTasks = await enqueueTasks(t.db, { queue: 'ret-a', payloads: [{}, {}] });
    const liveInvocations = await insertInvocations(t.db, { template: templateFor(a), count: 2, invokeAfterMs: 0 });
    // A task retried after its old invocation ended still points at it: that invocation must stay.
    const [retried = 0] = oldA.tasks;
    const [pointedAt = 0] = oldA.invocations;
    await t.db.query(`DELETE FROM ltp.tasks WHERE id = $1`, [retried]);
    const [again = 0] = await enqueueTasks(t.db, { queue: 'ret-a', payloads: [{}] });
    await t.db.query(`UPDATE ltp.tasks SET invocation_id = $2 WHERE id = $1`, [again, pointedAt]);
    const totalsBefore = await queueTaskCounts(t.db, { queue: 'ret-a', created: 0 });

    const deleted: Record<string, number> = { tasks: 0, invocations: 0 };
    const sweeper = new RetentionSweeper({
      databases: registry,
      defaultSeconds: 7 * DAY,
      intervalMs: 60_000,
      batch: 7,
      active: () => true,
      logger: silentLogger(),
      pools: () => [
        { uid: a.meta.uid, queue: 'ret-a', queueAllowed: true },
        { uid: b.meta.uid, queue: 'ret-b', retentionSeconds: 30 * DAY, queueAllowed: true },
      ],
      onDeleted: (table, rows) => (deleted[table] = (deleted[table] ?? 0) + rows),
    });
    const [report] = await sweeper.runOnce();
    expect(report).to.include({ tasks: 34, invocations: 34 });
    expect(deleted).to.deep.equal({ tasks: 34, invocations: 34 });
    expect(await exists('tasks', [...oldA.tasks.slice(1), ...oldFailedA.tasks])).to.equal(0);
    expect(await exists('invocations', [...oldA.invocations.slice(1), ...oldFailedA.invocations])).to.equal(0);
    expect(await exists('invocations', [pointedAt]), 'an invocation a task still points at').to.equal(1);
    expect(await exists('tasks', youngA.tasks)).to.equal(10);
    expect(await exists('invocations', youngA.invocations)).to.equal(10);
    expect(await exists('tasks', oldB.tasks), "a pool's longer retention").to.equal(10);
    expect(await exists('tasks', [...liveTasks, again])).to.equal(3);
    expect(await exists('invocations', liveInvocations)).to.equal(2);
    // Status totals come from the totals rows, which deletions do not reduce.
    expect(await queueTaskCounts(t.db, { queue: 'ret-a', created: 0 })).to.deep.equal(totalsBefore);
    expect((await poolInvocationCounts(t.db, a.meta.uid)).counts).to.include({ succeeded: 45, created: 2 });
  });

  it('keeps the finished invocations of a pool for the hour its passes read, however short its retention', async () => {
    const p = pool('ret-short', { retentionSeconds: 60 });
    expect((await registry.resolve(p)).ok).to.equal(true);
    expect(await claim(p)).to.deep.equal({ held: true });
    const age = async (rows: { tasks: number[]; invocations: number[] }, seconds: number) => {
      await t.db.query(`UPDATE ltp.tasks SET finished_at = now() - make_interval(secs => $2) WHERE id = ANY($1::bigint[])`, [
        rows.tasks,
        seconds,
      ]);
      await t.db.query(`UPDATE ltp.invocations SET finished_at = now() - make_interval(secs => $2) WHERE id = ANY($1::bigint[])`, [
        rows.invocations,
        seconds,
      ]);
    };
    // The waste streak the pass reads is the pool's finished invocations of the last hour.
    const recent = await finished(p, 8, 0);
    await age(recent, 120);
    const old = await finished(p, 3, 0);
    await age(old, 2 * 3_600);
    const [report] = await sweeperServing([{ uid: p.meta.uid, queue: 'ret-short', retentionSeconds: 60, queueAllowed: true }]).runOnce();
    expect(report).to.include({ tasks: 11, invocations: 3 });
    expect(await exists('tasks', [...recent.tasks, ...old.tasks]), 'tasks follow the 60 s retention').to.equal(0);
    expect(await exists('invocations', recent.invocations), 'invocations of the last hour stay').to.equal(8);
    expect(await exists('invocations', old.invocations)).to.equal(0);
  });

  it('probes the decisions of every pool ever seen in one statement, not one DELETE per pool', async () => {
    // Pools that came and went: their totals rows stay, and nothing of theirs is left to delete.
    await t.db.query(`INSERT INTO ltp.pool_totals (pool_uid) SELECT 'gone-' || g FROM generate_series(1, 2000) g ON CONFLICT DO NOTHING`);
    const [database] = registry.inUse();
    if (!database) throw new Error('the registry has no database in use');
    const db = database.database.db as unknown as { query: (...args: unknown[]) => Promise<unknown> };
    const query = db.query.bind(db);
    let statements = 0;
    db.query = (...args: unknown[]) => {
      statements += 1;
      return query(...args);
    };
    try {
      await sweeperServing([]).runOnce();
    } finally {
      db.query = query;
    }
    expect(statements, 'statements of one sweep over 2,000 gone pools').to.be.below(20);
  });

  it("takes a queue's retention only from the pool that holds the queue: another pool naming it cannot shorten it", async () => {
    // Team A keeps its results for ever; a pool of another namespace names A's queue with a minute's retention
    // (refused: QueueConflict, or the tenancy policy). A's finished tasks must stay.
    const owner = pool('ret-owned', { retentionSeconds: 0 });
    const intruder = {
      ...pool('ret-intruder', { queue: 'ret-owned', retentionSeconds: 60 }),
      meta: { ...pool('ret-intruder').meta, namespace: 'other' },
    };
    for (const p of [owner, intruder]) expect((await registry.resolve(p)).ok).to.equal(true);
    expect(await claim(owner)).to.deep.equal({ held: true });
    expect(await claim(intruder)).to.deep.include({ held: false });
    const old = await finished(owner, 4, 30);
    // A queue whose holder is gone without releasing its claim takes the default, as one no pool holds does.
    expect(await claim(pool('ret-stale'))).to.deep.equal({ held: true });
    const stale = await finished(pool('ret-stale'), 3, 30);
    const unheld = await finished(pool('ret-unheld'), 2, 30);
    const sweeper = sweeperServing([
      { uid: owner.meta.uid, queue: 'ret-owned', retentionSeconds: 0, queueAllowed: true },
      { uid: intruder.meta.uid, queue: 'ret-owned', retentionSeconds: 60, queueAllowed: false },
    ]);
    await sweeper.runOnce();
    expect(await exists('tasks', old.tasks), "the holder's tasks, kept for ever").to.equal(4);
    expect(await exists('tasks', stale.tasks), 'tasks of a queue whose holder is gone, past the default').to.equal(0);
    expect(await exists('tasks', unheld.tasks), 'tasks of a queue no pool holds, past the default').to.equal(0);
  });

  it('keeps what a pool another controller serves asked to keep: the retention recorded on its claim, while fresh', async () => {
    // Two Helm releases (or clusters) share this database. Release B's pools keep their results for ever and
    // for 90 days; this controller (release A) serves neither, and its default is 7 days.
    const forever = pool('ret-b-forever', { retentionSeconds: 0 });
    const quarter = pool('ret-b-quarter');
    // The sweep walks the databases the registry has resolved (this controller's default one).
    expect((await registry.resolve(forever)).ok).to.equal(true);
    expect(await claim(forever)).to.deep.equal({ held: true });
    expect(await claim(quarter, 90 * DAY)).to.deep.equal({ held: true });
    // --retention has no upper bound of its own: a century (3.15e9 s, past a 32-bit integer) is recorded too.
    expect(await claim(pool('ret-b-century'), 36_500 * DAY)).to.deep.equal({ held: true });
    const keptForEver = await finished(forever, 3, 30);
    const within = await finished(quarter, 2, 30);
    const beyond = await finished(quarter, 2, 120);
    // A release uninstalled without its pools' finalizers: a claim nobody refreshed for two days is stale.
    const gone = pool('ret-b-gone', { retentionSeconds: 0 });
    expect(await claim(gone)).to.deep.equal({ held: true });
    await t.db.query(`UPDATE ltp.queue_claims SET refreshed_at = now() - interval '2 days' WHERE queue = 'ret-b-gone'`);
    const stale = await finished(gone, 2, 30);
    // This controller serves none of them.
    const sweeper = sweeperServing([]);
    await sweeper.runOnce();
    expect(await exists('tasks', keptForEver.tasks), 'tasks B keeps for ever').to.equal(3);
    expect(await exists('invocations', keptForEver.invocations), 'invocations B keeps for ever').to.equal(3);
    expect(await exists('tasks', within.tasks), "tasks within B's 90 days").to.equal(2);
    expect(await exists('invocations', within.invocations), "invocations within B's 90 days").to.equal(2);
    expect(await exists('tasks', beyond.tasks), "tasks past B's 90 days").to.equal(0);
    expect(await exists('invocations', beyond.invocations), "invocations past B's 90 days").to.equal(0);
    expect(await exists('tasks', stale.tasks), 'tasks of a stale claim, past the default').to.equal(0);
    expect(await exists('invocations', stale.invocations), 'invocations of a stale claim, past the default').to.equal(0);
  });

  it('never holds up a dispatch pass: passes with a 100 ms lock timeout run throughout a large deletion', async function () {
    this.timeout(300_000);
    const big = pool('ret-big');
    expect((await registry.resolve(big)).ok).to.equal(true);
    await t.db.query(
      `INSERT INTO ltp.invocations (pool_namespace, pool_name, pool_uid, queue, status, function_name, tasks_per_invocation,
                                    max_task_attempts, heartbeat_timeout_seconds, ready_at, finished_at, tasks_started)
       SELECT 'retention', 'ret-big', 'uid-ret-big', 'ret-big', 'succeeded', 'worker', 1, 3, 120, now(), now() - interval '30 days', 1
         FROM generate_series(1, 60000)`,
    );
    await t.db.query(
      `INSERT INTO ltp.tasks (queue, status, attempts, invocation_id, finished_at)
       SELECT 'ret-big', 'done', 1, id, now() - interval '30 days' FROM ltp.invocations WHERE pool_uid = 'uid-ret-big'`,
    );
    // Live work of the same pool for the passes to read and plan.
    await insertInvocations(t.db, { template: templateFor(big), count: 3, invokeAfterMs: 60_000 });
    const strict = createDb(t.url, { max: 2, lockTimeoutMs: 100, applicationName: 'ltp-test-strict' });
    const invoker = createInvoker({
      defaultRegion: 'us-east-1',
      endpoint: 'http://127.0.0.1:9',
      credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
    });
    const sweeper = new RetentionSweeper({
      databases: registry,
      defaultSeconds: 7 * DAY,
      intervalMs: 60_000,
      batch: 1_000,
      maxBatches: 1_000,
      active: () => true,
      logger: silentLogger(),
      pools: () => [{ uid: big.meta.uid, queue: 'ret-big', queueAllowed: true }],
    });
    let sweeping = true;
    const passes: number[] = [];
    const sweep = sweeper.runOnce().finally(() => (sweeping = false));
    try {
      while (sweeping) {
        const started = performance.now();
        const result = await runDispatchPass({
          db: strict,
          pool: big,
          invoker,
          connectedForMs: Number.POSITIVE_INFINITY,
          options: { reinvokeGraceMs: 60_000, rejectionBackoffMs: 60_000, limits: { resyncMs: 30_000, minRequeueMs: 200 } },
        });
        expect(result.dispatched).to.deep.equal([]);
        passes.push(performance.now() - started);
      }
      await sweep;
      const left = await t.db.query<{ n: number }>(
        `SELECT (SELECT count(*) FROM ltp.tasks WHERE queue = 'ret-big') + (SELECT count(*) FROM ltp.invocations WHERE pool_uid = 'uid-ret-big' AND finished_at IS NOT NULL) AS n`,
      );
      expect(Number(left.rows[0]?.n), 'finished rows of the big pool left').to.equal(0);
      expect(passes.length, 'passes that ran during the deletion').to.be.greaterThan(5);
    } finally {
      invoker.close();
      await strict.end();
    }
  });
});
