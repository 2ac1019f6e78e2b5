// Cancelling and re-running tasks against a real Postgres (migration 1764547200000): a cancel ends only
// tasks still created, loses every race against a worker's lease, and nothing moves a task out of
// cancelled; a re-run is a new row pointing at the old one, made at most once per task, while the old row
// never changes. Totals, wake-ups and retention include cancelled tasks.
import { expect } from 'chai';
import pg from 'pg';
import { migrate } from '../../src/store/migrate.ts';
import { deleteExpiredTasks, targetsWithExpiredRows } from '../../src/store/retention.ts';
import {
  cancelCreatedTasks,
  cancelTasks,
  countTasksByState,
  enqueueTasks,
  findRerunnableTasks,
  getTaskWithRerun,
  queueTaskCounts,
  rerunTasks,
} from '../../src/store/task-store.ts';
import { freshDatabase, type TestDatabase } from '../support/postgres.ts';

describe('task cancels and re-runs (real Postgres)', function () {
  this.timeout(60_000);
  let t: TestDatabase;
  let queueNo = 0;
  const nextQueue = () => `reruns-${++queueNo}`;

  before(async () => {
    t = await freshDatabase('reruns');
  });
  after(async () => {
    await t.close();
  });

  /** An invocation of the queue that has started (ready), as a worker's claim leaves it. */
  async function readyInvocation(queue: string, tasksPerInvocation = 10): Promise<number> {
    const result = await t.db.query<{ id: number }>(
      `INSERT INTO ltp.invocations (pool_namespace, pool_name, pool_uid, queue, status, function_name, tasks_per_invocation,
                                    max_task_attempts, heartbeat_timeout_seconds, ready_at, heartbeat_at)
       VALUES ('ns', 'pool', 'uid-' || $1, $1, 'ready', 'worker', $2, 1, 60, now(), now()) RETURNING id`,
      [queue, tasksPerInvocation],
    );
    const id = result.rows[0]?.id;
    if (id === undefined) throw new Error('no invocation inserted');
    return id;
  }

  /** Tasks that ran once and failed, through the worker protocol's own functions. */
  async function failedTasks(queue: string, payloads: unknown[], error = 'boom'): Promise<number[]> {
    const ids = await enqueueTasks(t.db, { queue, payloads, maxAttempts: 1 });
    const inv = await readyInvocation(queue, ids.length);
    await t.db.query('SELECT * FROM ltp.worker_lease($1)', [inv]);
    for (const id of ids) {
      await t.db.query('SELECT ltp.worker_start_task($1, $2)', [id, inv]);
      const status = await t.db.query<{ s: string }>('SELECT ltp.worker_fail_task($1, $2, $3, 0) AS s', [id, inv, error]);
      expect(status.rows[0]?.s).to.equal('failed');
    }
    return ids;
  }

  const row = async (id: number) =>
    (await t.db.query<{ row: unknown }>('SELECT to_jsonb(t) AS row FROM ltp.tasks t WHERE id = $1', [id])).rows[0]?.row;

  describe('cancel', () => {
    it('ends created tasks as cancelled with the reason, and nothing moves them out of cancelled', async () => {
      const queue = nextQueue();
      const [a, b] = await enqueueTasks(t.db, { queue, payloads: [{}, {}], delayMs: 3_600_000 });
      expect(await cancelTasks(t.db, { ids: [a ?? 0, b ?? 0], reason: 'not needed any more' })).to.deep.equal([a, b]);
      const task = await getTaskWithRerun(t.db, a ?? 0);
      expect(task).to.include({ status: 'cancelled', cancelReason: 'not needed any more' });
      expect(task?.finishedAt).to.be.instanceOf(Date);
      for (const to of ['created', 'leased', 'done', 'failed']) {
        const refused = await t.db.query(`UPDATE ltp.tasks SET status = $2::ltp.task_status WHERE id = $1`, [a, to]).then(
          () => undefined,
          (e: unknown) => String(e),
        );
        expect(refused, to).to.include(`cannot move from cancelled to ${to}`);
      }
    });

    it('refuses a cancelled task without a reason', async () => {
      const [id] = await enqueueTasks(t.db, { queue: nextQueue(), payloads: [{}] });
      const refused = await t.db.query(`UPDATE ltp.tasks SET status = 'cancelled' WHERE id = $1`, [id]).then(
        () => undefined,
        (e: unknown) => String(e),
      );
      expect(refused).to.include('cancelled_task_has_reason');
    });

    it('never cancels a leased or finished task', async () => {
      const queue = nextQueue();
      const [failed] = await failedTasks(queue, [{}]);
      const [leased] = await enqueueTasks(t.db, { queue, payloads: [{}] });
      await t.db.query('SELECT * FROM ltp.worker_lease($1)', [await readyInvocation(queue)]);
      expect(await cancelTasks(t.db, { ids: [failed ?? 0, leased ?? 0], reason: 'x' })).to.deep.equal([]);
      expect((await getTaskWithRerun(t.db, leased ?? 0))?.status).to.equal('leased');
      expect((await getTaskWithRerun(t.db, failed ?? 0))?.status).to.equal('failed');
    });

    it("loses the race to a worker's lease: the task it waited for is leased, not cancelled", async () => {
      const queue = nextQueue();
      const [id] = await enqueueTasks(t.db, { queue, payloads: [{}] });
      const inv = await readyInvocation(queue);
      const worker = new pg.Client({ connectionString: t.url });
      await worker.connect();
      try {
        await worker.query('BEGIN');
        const leased = await worker.query<{ id: number }>('SELECT id FROM ltp.worker_lease($1)', [inv]);
        expect(leased.rows.map((r) => r.id)).to.deep.equal([id]);
        let settled = false;
        const cancel = cancelTasks(t.db, { ids: [id ?? 0], reason: 'too late' }).finally(() => (settled = true));
        await new Promise((r) => setTimeout(r, 300));
        expect(settled, 'the cancel waits for the lease to commit').to.equal(false);
        await worker.query('COMMIT');
        expect(await cancel).to.deep.equal([]);
        expect((await getTaskWithRerun(t.db, id ?? 0))?.status).to.equal('leased');
      } finally {
        await worker.end();
      }
    });

    it('cancels the waiting tasks of a queue, skipping one a worker is leasing at that moment', async () => {
      const queue = nextQueue();
      const ids = await enqueueTasks(t.db, { queue, payloads: [{}, {}, {}] });
      const worker = new pg.Client({ connectionString: t.url });
      await worker.connect();
      try {
        await worker.query('BEGIN');
        await worker.query('SELECT id FROM ltp.tasks WHERE id = $1 FOR UPDATE', [ids[0]]);
        expect(await cancelCreatedTasks(t.db, { queue, limit: 10, reason: 'flush' })).to.deep.equal(ids.slice(1));
        await worker.query('ROLLBACK');
      } finally {
        await worker.end();
      }
      expect((await countTasksByState(t.db, queue)).created).to.equal(1);
    });

    it('counts cancelled tasks in the queue totals that status reads, and wakes the pool of the queue', async () => {
      const queue = nextQueue();
      const ids = await enqueueTasks(t.db, { queue, payloads: [{}, {}, {}] });
      const listener = new pg.Client({ connectionString: t.url });
      await listener.connect();
      try {
        const heard: string[] = [];
        listener.on('notification', (n) => heard.push(n.payload ?? ''));
        await listener.query('LISTEN ltp_tasks');
        await cancelTasks(t.db, { ids: ids.slice(0, 2), reason: 'x' });
        const deadline = Date.now() + 5_000;
        while (!heard.includes(queue) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        expect(heard).to.include(queue);
      } finally {
        await listener.end();
      }
      expect(await queueTaskCounts(t.db, { queue, created: 1 })).to.deep.equal({ created: 1, leased: 0, done: 0, failed: 0, cancelled: 2 });
      expect(await countTasksByState(t.db, queue)).to.deep.equal({ created: 1, leased: 0, done: 0, failed: 0, cancelled: 2 });
    });

    it('lets retention delete old cancelled tasks as it deletes done and failed ones', async () => {
      const queue = nextQueue();
      const [old, young] = await enqueueTasks(t.db, { queue, payloads: [{}, {}] });
      await cancelTasks(t.db, { ids: [old ?? 0, young ?? 0], reason: 'x' });
      await t.db.query(`UPDATE ltp.tasks SET finished_at = now() - interval '3 days' WHERE id = $1`, [old]);
      expect(await targetsWithExpiredRows(t.db, 'tasks', [{ key: queue, maxAgeSeconds: 86_400 }])).to.have.length(1);
      expect(await deleteExpiredTasks(t.db, { queue, maxAgeSeconds: 86_400, batch: 100 })).to.equal(1);
      expect(await getTaskWithRerun(t.db, old ?? 0)).to.equal(undefined);
      expect((await getTaskWithRerun(t.db, young ?? 0))?.status).to.equal('cancelled');
      expect((await queueTaskCounts(t.db, { queue, created: 0 })).cancelled).to.equal(2);
    });
  });

  describe('re-run', () => {
    it('adds a created task with the same queue, payload and attempt limit that points at the old one, which does not change', async () => {
      const queue = nextQueue();
      const [old] = await failedTasks(queue, [{ image: 'cat.png' }]);
      const before = await row(old ?? 0);
      const [rerun] = await rerunTasks(t.db, [old ?? 0]);
      expect(rerun?.retryOf).to.equal(old);
      const fresh = await getTaskWithRerun(t.db, rerun?.id ?? 0);
      expect(fresh).to.include({
        queue,
        status: 'created',
        attempts: 0,
        maxAttempts: 1,
        retryOf: old,
        lastError: null,
        invocationId: null,
      });
      expect(fresh?.payload).to.deep.equal({ image: 'cat.png' });
      expect(await row(old ?? 0)).to.deep.equal(before);
      expect((await getTaskWithRerun(t.db, old ?? 0))?.retriedBy).to.equal(rerun?.id);
    });

    it('re-runs a task at most once, even when two re-run it at the same moment', async () => {
      const [old] = await failedTasks(nextQueue(), [{}]);
      const other = new pg.Pool({ connectionString: t.url, max: 1 });
      try {
        const [a, b] = await Promise.all([rerunTasks(t.db, [old ?? 0]), rerunTasks(other, [old ?? 0])]);
        expect(a.length + b.length).to.equal(1);
      } finally {
        await other.end();
      }
      expect(await rerunTasks(t.db, [old ?? 0])).to.deep.equal([]);
      const count = await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM ltp.tasks WHERE retry_of = $1', [old]);
      expect(count.rows[0]?.n).to.equal(1);
    });

    it('re-runs failed and cancelled tasks only', async () => {
      const queue = nextQueue();
      const [failed] = await failedTasks(queue, [{}]);
      const [created, cancelled] = await enqueueTasks(t.db, { queue, payloads: [{}, {}] });
      await cancelTasks(t.db, { ids: [cancelled ?? 0], reason: 'x' });
      const rerun = await rerunTasks(t.db, [failed ?? 0, created ?? 0, cancelled ?? 0, 999_999_999]);
      expect(rerun.map((r) => r.retryOf).sort((x, y) => x - y)).to.deep.equal([failed, cancelled]);
    });

    it("selects a queue's failed tasks by error text, oldest first, leaving out those re-run already", async () => {
      const queue = nextQueue();
      const timeouts = await failedTasks(queue, [{}, {}, {}], 'Task timed out after 60 seconds');
      const [other] = await failedTasks(queue, [{}], 'TypeError: x is undefined');
      await rerunTasks(t.db, [timeouts[0] ?? 0]);
      expect(await findRerunnableTasks(t.db, { queue, status: 'failed', errorContains: 'TIMED OUT', limit: 10 })).to.deep.equal(
        timeouts.slice(1),
      );
      expect(await findRerunnableTasks(t.db, { queue, status: 'failed', limit: 2 })).to.deep.equal(timeouts.slice(1));
      expect(await findRerunnableTasks(t.db, { queue, status: 'failed', errorContains: '%', limit: 10 })).to.deep.equal([]);
      expect(await findRerunnableTasks(t.db, { queue, status: 'failed', errorContains: 'typeerror', limit: 10 })).to.deep.equal([other]);
    });
  });

  it('migrates an already migrated database without change', async () => {
    expect((await migrate(t.url)).applied).to.deep.equal([]);
  });
});
