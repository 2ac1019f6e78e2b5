// The worker under faults, against a real Postgres: cut off from the database (through a TCP proxy the
// test controls), a completion write that fails, too little time to start, delayed tasks and retries.
import { execFileSync } from 'node:child_process';
import { expect } from 'chai';
import { freshDatabase, type TestDatabase } from '../support/postgres.ts';
import { taskWorker, closeWorkerConnections } from '../../packages/worker/src/index.ts';
import { workerPool } from '../../packages/worker/src/database.ts';
import { insertInvocations, getInvocation, type InvocationTemplate } from '../../src/store/invocation-store.ts';
import { countBacklog, enqueueTasks, getTask, nextDueAt } from '../../src/store/task-store.ts';
import { startTcpProxy, type TcpProxy } from '../../dev/src/tcp-proxy.ts';
import { silentLogger } from '../../src/ops/logger.ts';

const template = (queue: string, overrides: Partial<InvocationTemplate> = {}): InvocationTemplate => ({
  pool: { namespace: 'default', name: 'p', uid: `uid-${queue}` },
  queue,
  functionName: 'worker',
  tasksPerInvocation: 1,
  maxTaskAttempts: 3,
  heartbeatTimeoutSeconds: 60,
  retryInitialDelayMs: 0,
  retryMaxDelayMs: 0,
  ...overrides,
});

/**
 * What happens to a Lambda environment frozen between invocations: the server closes the worker's idle
 * connections while its event loop is stopped, so the pool still holds them when the next invocation
 * begins. Here a separate process terminates them and waits until they are gone, while this process blocks.
 */
function closeIdleWorkerConnectionsWhileFrozen(url: string): number {
  const script = `
    const pg = require('pg');
    (async () => {
      const client = new pg.Client({ connectionString: process.argv[1] });
      await client.connect();
      const ended = await client.query(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'lambda-task-pool-worker' AND state = 'idle'",
      );
      await client.end();
      console.log(ended.rowCount);
    })();`;
  return Number(execFileSync(process.execPath, ['-e', script, url], { encoding: 'utf8' }).trim());
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Makes the first completion of a task of `queue` fail, once, as `fault` says: the connection dropped by the
 * server in the middle of the write, or the write refused as read-only (a primary a failover demoted).
 * Returns how to undo it, and how many completions the trigger has seen.
 */
async function failFirstCompletion(
  t: TestDatabase,
  queue: string,
  fault: 'drop connection' | 'read-only',
): Promise<{ seen(): Promise<number>; undo(): Promise<void> }> {
  const name = `first_completion_${queue.replace(/[^a-z0-9]/g, '_')}`;
  const act =
    fault === 'drop connection'
      ? 'PERFORM pg_terminate_backend(pg_backend_pid());'
      : `RAISE EXCEPTION 'cannot execute UPDATE in a read-only transaction' USING ERRCODE = 'read_only_sql_transaction';`;
  await t.db.query(`CREATE SEQUENCE public.${name}`);
  await t.db.query(`CREATE FUNCTION public.${name}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.status = 'done' AND NEW.queue = '${queue}' AND nextval('public.${name}') = 1 THEN
        ${act}
      END IF;
      RETURN NEW;
    END $$`);
  await t.db.query(`CREATE TRIGGER ${name} BEFORE UPDATE ON ltp.tasks FOR EACH ROW EXECUTE FUNCTION public.${name}()`);
  return {
    seen: async () => (await t.db.query<{ n: number }>(`SELECT last_value::int AS n FROM public.${name}`)).rows[0]?.n ?? 0,
    undo: async () => {
      await t.db.query(`DROP TRIGGER ${name} ON ltp.tasks`);
    },
  };
}

describe('worker under faults (real Postgres)', function () {
  let t: TestDatabase;
  const logger = silentLogger();

  before(async function () {
    this.timeout(120_000);
    t = await freshDatabase('faults');
  });
  after(async () => {
    await closeWorkerConnections();
    await t.close();
  });

  describe('cut off from Postgres', () => {
    let proxy: TcpProxy;
    before(async () => {
      const url = new URL(t.url);
      proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port) });
    });
    after(async () => {
      proxy.heal('reset');
      await closeWorkerConnections();
      await proxy.close();
    });

    it('fences itself before the heartbeat timeout: aborts ctx.signal, starts nothing more and records nothing', async function () {
      this.timeout(60_000);
      const url = new URL(t.url);
      url.host = `${proxy.host}:${proxy.port}`;
      const ids = await enqueueTasks(t.db, { queue: 'q-cut', payloads: [{}, {}] });
      const [inv = 0] = await insertInvocations(t.db, {
        template: template('q-cut', { tasksPerInvocation: 2, heartbeatTimeoutSeconds: 5 }),
        count: 1,
        invokeAfterMs: 0,
      });
      let cutAt = 0;
      let abortedAt = 0;
      let starts = 0;
      const handler = taskWorker({
        databaseUrl: url.toString(),
        logger,
        heartbeatIntervalMs: 500,
        process: async (_task, ctx) => {
          starts += 1;
          cutAt = Date.now();
          proxy.partition();
          await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
          abortedAt = Date.now();
          return { finished: 'after the abort' };
        },
      });
      const summary = await handler({ invocationId: String(inv) });
      expect(summary).to.include({ outcome: 'fenced', leased: 2, started: 1, done: 0 });
      expect(starts).to.equal(1);
      // The last renewal was the task's start, just before the cut: the fence comes at 5 s - 1 s after it.
      expect(abortedAt - cutAt).to.be.within(3_000, 4_500);

      // Heal; what the worker sent before the fence may still arrive, but it records no result.
      proxy.heal('resume');
      await sleep(1_500);
      const first = await getTask(t.db, ids[0] ?? 0);
      expect(first).to.include({ status: 'leased', invocationId: inv, attempts: 1, result: null });
      expect(await getTask(t.db, ids[1] ?? 0)).to.include({ status: 'leased', attempts: 0 });
      expect(await getInvocation(t.db, inv)).to.include({ status: 'running', tasksStarted: 1 });
    });
    it('gets a delivery through when the network dropped its pooled connections without a word (a failover, a NAT timeout)', async function () {
      this.timeout(60_000);
      const url = new URL(t.url);
      url.host = `${proxy.host}:${proxy.port}`;
      const queue = 'q-dropped';
      const [first = 0, second = 0] = await enqueueTasks(t.db, { queue, payloads: [{}, {}] });
      const [warm = 0, next = 0] = await insertInvocations(t.db, { template: template(queue), count: 2, invokeAfterMs: 0 });
      const handler = taskWorker({ databaseUrl: url.toString(), logger, process: (task) => ({ ran: task.id }) });
      process.env.AWS_LAMBDA_FUNCTION_NAME = 'worker';
      try {
        expect(await handler({ invocationId: String(warm) })).to.include({ outcome: 'succeeded', done: 1 });
        // The pool holds as many idle connections as it may (3), and the network drops every one of them.
        const pool = await workerPool(url.toString());
        await Promise.all([1, 2, 3].map(() => pool.query('SELECT pg_sleep(0.05)')));
        expect(pool.idleCount).to.equal(3);
        proxy.dropExistingSilently();
        const began = Date.now();
        expect(await handler({ invocationId: String(next) })).to.include({ outcome: 'succeeded', done: 1 });
        // The function check waits out its 2.5 s on a dead connection; the pool is set aside, and the retry and
        // everything after it go out on new connections.
        expect(Date.now() - began).to.be.below(5_000);
      } finally {
        delete process.env.AWS_LAMBDA_FUNCTION_NAME;
      }
      expect(await getInvocation(t.db, next)).to.include({ status: 'succeeded', deliveries: 1 });
      expect(await getTask(t.db, first)).to.include({ status: 'done', invocationId: warm, attempts: 1 });
      expect(await getTask(t.db, second)).to.include({ status: 'done', invocationId: next, attempts: 1 });
    });
  });

  it('retries a completion write that fails, and the task ends done, not failed', async function () {
    this.timeout(30_000);
    // Postgres itself drops the worker's connection in the middle of its first write of a result.
    const fault = await failFirstCompletion(t, 'q-complete', 'drop connection');
    try {
      const [id = 0] = await enqueueTasks(t.db, { queue: 'q-complete', payloads: [{ n: 21 }] });
      const [inv = 0] = await insertInvocations(t.db, { template: template('q-complete'), count: 1, invokeAfterMs: 0 });
      let runs = 0;
      const handler = taskWorker({
        databaseUrl: t.url,
        logger,
        process: (task) => ({ doubled: (task.payload as { n: number }).n * 2, run: ++runs }),
      });
      const summary = await handler({ invocationId: String(inv) });
      expect(summary).to.include({ outcome: 'succeeded', done: 1, failed: 0, retried: 0 });
      expect(runs).to.equal(1);
      const task = await getTask(t.db, id);
      expect(task).to.include({ status: 'done', attempts: 1, lastError: null });
      expect(task?.result).to.deep.equal({ doubled: 42, run: 1 });
      expect(await fault.seen()).to.be.at.least(2);
    } finally {
      await fault.undo();
    }
  });

  it('retries a completion refused as read-only (a failover to a demoted primary) and keeps the result', async function () {
    this.timeout(30_000);
    const fault = await failFirstCompletion(t, 'q-read-only', 'read-only');
    try {
      const [id = 0] = await enqueueTasks(t.db, { queue: 'q-read-only', payloads: [{ n: 4 }] });
      const [inv = 0] = await insertInvocations(t.db, { template: template('q-read-only'), count: 1, invokeAfterMs: 0 });
      const handler = taskWorker({ databaseUrl: t.url, logger, process: (task) => ({ squared: (task.payload as { n: number }).n ** 2 }) });
      expect(await handler({ invocationId: String(inv) })).to.include({ outcome: 'succeeded', done: 1, failed: 0 });
      const task = await getTask(t.db, id);
      expect(task).to.include({ status: 'done', attempts: 1 });
      expect(task?.result).to.deep.equal({ squared: 16 });
      expect(await getInvocation(t.db, inv)).to.include({ status: 'succeeded' });
      expect(await fault.seen()).to.be.at.least(2);
    } finally {
      await fault.undo();
    }
  });

  it('starts its pool afresh after a freeze longer than the pool keeps idle connections, and not before', async () => {
    let clock = Date.now();
    const now = () => clock;
    const url = `${t.url}${t.url.includes('?') ? '&' : '?'}application_name=frozen-test`;
    const pool = await workerPool(url, now);
    await pool.query('SELECT 1');
    clock += 29_000;
    expect(await workerPool(url, now), 'within the idle timeout: the same pool').to.equal(pool);
    await pool.query('SELECT 1');
    clock += 31_000;
    const fresh = await workerPool(url, now);
    expect(fresh, 'frozen past the idle timeout: a new pool').not.to.equal(pool);
    expect((await fresh.query<{ one: number }>('SELECT 1 AS one')).rows[0]?.one).to.equal(1);
    expect(await workerPool(url, now), 'the new pool is the one handed out').to.equal(fresh);
    // Set aside, not ended: a run that still holds it (handlers side by side, outside Lambda) can finish on it.
    expect((await pool.query<{ one: number }>('SELECT 1 AS one')).rows[0]?.one).to.equal(1);
  });

  // A write that commits while its answer is lost (the connection drops right after the commit): the SDK
  // retries it, and the retry must be answered as the first call was. Postgres is real; the lost answer is
  // the one thing made up, by the pool the SDK uses throwing once after the statement has run.
  for (const fn of ['worker_claim', 'worker_lease', 'worker_start_task', 'worker_complete_task', 'worker_fail_task', 'worker_finish']) {
    it(`gives a retried ${fn} whose first answer was lost the same answer: no lost lease, no wasted invocation, no extra attempt`, async function () {
      this.timeout(30_000);
      const queue = `q-lost-${fn}`;
      const failing = fn === 'worker_fail_task';
      const ids = await enqueueTasks(t.db, { queue, payloads: [{}, {}] });
      const [inv = 0] = await insertInvocations(t.db, { template: template(queue, { tasksPerInvocation: 2 }), count: 1, invokeAfterMs: 0 });
      const attempts: number[] = [];
      const handler = taskWorker({
        databaseUrl: t.url,
        logger,
        process: (task) => {
          attempts.push(task.attempt);
          if (failing) throw new Error('boom');
          return { ok: task.id };
        },
      });
      const pool = (await workerPool(t.url)) as unknown as { query: (...args: unknown[]) => Promise<unknown> };
      const query = pool.query.bind(pool);
      let lost = 0;
      pool.query = async (...args: unknown[]) => {
        const result = await query(...args);
        // A statement as text, or as a query config (the calls before the claim carry a timeout of their own).
        const text = typeof args[0] === 'string' ? args[0] : (args[0] as { text?: unknown } | undefined)?.text;
        if (lost === 0 && typeof text === 'string' && text.includes(`ltp.${fn}(`)) {
          lost += 1;
          throw Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' });
        }
        return result;
      };
      let summary: Awaited<ReturnType<typeof handler>>;
      try {
        summary = await handler({ invocationId: String(inv) });
      } finally {
        pool.query = query;
      }
      expect(lost, `an answer of ${fn} was lost`).to.equal(1);
      expect(attempts, 'attempts the handler saw').to.deep.equal([1, 1]);
      expect(summary).to.include({ outcome: 'succeeded', done: failing ? 0 : 2, retried: failing ? 2 : 0, failed: 0 });
      // One delivery: the claim's retry is this run asking again, not a second delivery.
      expect(await getInvocation(t.db, inv)).to.include({ status: 'succeeded', tasksStarted: 2, deliveries: 1 });
      for (const id of ids) {
        expect(await getTask(t.db, id)).to.include(failing ? { status: 'created', attempts: 1 } : { status: 'done', attempts: 1 });
      }
    });
  }

  for (const { checksFunction, first } of [
    { checksFunction: false, first: 'claim' },
    { checksFunction: true, first: 'function check' },
  ]) {
    it(`claims and finishes when the server closed its pooled connections while the function was frozen (${first} first)`, async function () {
      this.timeout(30_000);
      const queue = `q-thaw-${first.replace(' ', '-')}`;
      const [doneBefore = 0, afterThaw = 0] = await enqueueTasks(t.db, { queue, payloads: [{}, {}] });
      const [warm = 0, thawed = 0] = await insertInvocations(t.db, { template: template(queue), count: 2, invokeAfterMs: 0 });
      const handler = taskWorker({ databaseUrl: t.url, logger, process: (task) => ({ ran: task.id }) });
      if (checksFunction) process.env.AWS_LAMBDA_FUNCTION_NAME = 'worker';
      try {
        expect(await handler({ invocationId: String(warm) })).to.include({ outcome: 'succeeded', done: 1 });
        expect(closeIdleWorkerConnectionsWhileFrozen(t.url)).to.be.at.least(1);
        expect(await handler({ invocationId: String(thawed) })).to.include({ outcome: 'succeeded', done: 1 });
      } finally {
        delete process.env.AWS_LAMBDA_FUNCTION_NAME;
      }
      expect(await getInvocation(t.db, thawed)).to.include({ status: 'succeeded', deliveries: 1 });
      expect(await getTask(t.db, doneBefore)).to.include({ status: 'done', invocationId: warm });
      expect(await getTask(t.db, afterThaw)).to.include({ status: 'done', invocationId: thawed, attempts: 1 });
    });
  }

  it('touches nothing when an event carries the invocation id of another function (forged or misrouted)', async () => {
    const [id = 0] = await enqueueTasks(t.db, { queue: 'q-forged', payloads: [{}] });
    const [inv = 0] = await insertInvocations(t.db, {
      template: template('q-forged', { functionName: 'billing-worker' }),
      count: 1,
      invokeAfterMs: 0,
    });
    let calls = 0;
    const handler = taskWorker({ databaseUrl: t.url, logger, process: () => (calls += 1) });
    process.env.AWS_LAMBDA_FUNCTION_NAME = 'thumbnail-worker';
    try {
      const summary = await handler(
        { invocationId: String(inv) },
        { invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:thumbnail-worker' },
      );
      expect(summary).to.include({ outcome: 'skipped', reason: 'WrongFunction', leased: 0 });
    } finally {
      delete process.env.AWS_LAMBDA_FUNCTION_NAME;
    }
    expect(calls).to.equal(0);
    expect(await getInvocation(t.db, inv)).to.include({ status: 'created', deliveries: 0 });
    expect(await getTask(t.db, id)).to.include({ status: 'created', attempts: 0 });
  });

  it('takes its database URL from a provider (a secret or an IAM token)', async () => {
    await enqueueTasks(t.db, { queue: 'q-provider', payloads: [{}] });
    const [inv = 0] = await insertInvocations(t.db, { template: template('q-provider'), count: 1, invokeAfterMs: 0 });
    let asked = 0;
    const provider = async () => {
      asked += 1;
      return t.url;
    };
    const handler = taskWorker({ databaseUrl: provider, logger, process: () => 'done' });
    expect(await handler({ invocationId: String(inv) })).to.include({ outcome: 'succeeded', done: 1 });
    // Asked once for the host and database; node-postgres asks again for the password of every new
    // connection when the server requests one (the test server trusts loopback, so it never does).
    expect(asked).to.be.at.least(1);
  });

  it('leases nothing and says why on the row when the function has too little time to start a task', async () => {
    const [id = 0] = await enqueueTasks(t.db, { queue: 'q-short', payloads: [{}] });
    const [inv = 0] = await insertInvocations(t.db, { template: template('q-short'), count: 1, invokeAfterMs: 0 });
    let calls = 0;
    const handler = taskWorker({ databaseUrl: t.url, logger, minTimeToStartTaskMs: 60_000, process: () => (calls += 1) });
    const summary = await handler({ invocationId: String(inv) }, { getRemainingTimeInMillis: () => 2_950 });
    expect(summary).to.include({ outcome: 'failed', reason: 'NoTimeToStart', leased: 0 });
    expect(calls).to.equal(0);
    const row = await getInvocation(t.db, inv);
    expect(row).to.include({ status: 'failed', errorCode: 'NoTimeToStart', tasksLeased: 0, tasksStarted: 0 });
    expect(row?.errorMessage).to.include('2950 ms').and.include('60000 ms');
    expect(await getTask(t.db, id)).to.include({ status: 'created', attempts: 0 });
  });

  it('does not lease or count a task before its run_after, and the controller can see when it is due', async () => {
    await enqueueTasks(t.db, { queue: 'q-later', payloads: [{ late: true }], delayMs: 1_500 });
    expect(await countBacklog(t.db, 'q-later', 10)).to.equal(0);
    const due = await nextDueAt(t.db, 'q-later');
    expect(due?.getTime()).to.be.within(Date.now() + 500, Date.now() + 2_500);
    const [early = 0] = await insertInvocations(t.db, { template: template('q-later'), count: 1, invokeAfterMs: 0 });
    const handler = taskWorker({ databaseUrl: t.url, logger, process: () => 'ran' });
    expect(await handler({ invocationId: String(early) })).to.include({ leased: 0, reason: 'NothingToLease' });
    await sleep(1_600);
    expect(await countBacklog(t.db, 'q-later', 10)).to.equal(1);
    const [late = 0] = await insertInvocations(t.db, { template: template('q-later'), count: 1, invokeAfterMs: 0 });
    expect(await handler({ invocationId: String(late) })).to.include({ leased: 1, done: 1 });
  });

  it('makes a failed attempt due again only after the retry delay, growing with each attempt', async () => {
    const [id = 0] = await enqueueTasks(t.db, { queue: 'q-retry', payloads: [{}], maxAttempts: 5 });
    const policy = { retryInitialDelayMs: 2_000, retryMaxDelayMs: 60_000 };
    const failing = taskWorker({
      databaseUrl: t.url,
      logger,
      process: () => {
        throw new Error('not yet');
      },
    });
    const delays: number[] = [];
    for (let attempt = 1; attempt <= 2; attempt += 1) {
      await t.db.query(`UPDATE ltp.tasks SET run_after = now() WHERE id = $1`, [id]);
      const [inv = 0] = await insertInvocations(t.db, { template: template('q-retry', policy), count: 1, invokeAfterMs: 0 });
      expect(await failing({ invocationId: String(inv) })).to.include({ retried: 1 });
      const row = await t.db.query<{ ms: number }>(
        `SELECT extract(epoch FROM run_after - now()) * 1000 AS ms FROM ltp.tasks WHERE id = $1`,
        [id],
      );
      delays.push(Number(row.rows[0]?.ms));
    }
    // Equal jitter: attempt 1 waits 1-2 s, attempt 2 waits 2-4 s.
    expect(delays[0]).to.be.within(900, 2_000);
    expect(delays[1]).to.be.within(1_900, 4_000);
    expect(await countBacklog(t.db, 'q-retry', 10)).to.equal(0);
    expect(await getTask(t.db, id)).to.include({ status: 'created', attempts: 2, lastError: 'Error: not yet' });
  });
});
