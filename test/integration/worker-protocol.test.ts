// The worker protocol against a real Postgres: the compare-and-set, leasing, retries, releases, and the
// database's own refusal of illegal transitions. The handler is called directly here; the same handler
// runs behind the local Lambda runtime in lambda-worker.test.ts.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'chai';
import pg from 'pg';
import { freshDatabase, sharedPostgres, type TestDatabase } from '../support/postgres.ts';
import { taskWorker, closeWorkerConnections, WorkerEventError } from '../../packages/worker/src/index.ts';
import { insertInvocations, endInvocations, getInvocation, type InvocationTemplate } from '../../src/store/invocation-store.ts';
import { enqueueTasks, getTask, countTasksByState } from '../../src/store/task-store.ts';
import { migrate } from '../../src/store/migrate.ts';
import { createDb } from '../../src/store/db.ts';
import { silentLogger } from '../../src/ops/logger.ts';

const exec = promisify(execFile);

/**
 * A user's own process: its own `pg` reads a bigint before and after the SDK is imported and has run an
 * invocation. A process of its own, because the controller's store (imported by these tests) sets pg's
 * global bigint parser.
 */
const USER_PROCESS = `
import pg from 'pg';
const read = async () => {
  const client = new pg.Client({ connectionString: process.env.PROBE_URL });
  await client.connect();
  try {
    return (await client.query('SELECT 9007199254740993::bigint AS big')).rows[0].big;
  } finally {
    await client.end();
  }
};
const before = await read();
const { taskWorker, closeWorkerConnections } = await import(process.env.PROBE_SDK);
const taskIds = [];
const quiet = { info() {}, warn() {}, error() {} };
const handler = taskWorker({ databaseUrl: process.env.PROBE_URL, logger: quiet, process: (task) => { taskIds.push(task.id); } });
const summary = await handler({ invocationId: process.env.PROBE_INVOCATION });
const after = await read();
await closeWorkerConnections();
console.log(JSON.stringify({ before, after, taskIds, summary }));
`;

/** A migrated database in the shared server whose encoding, LATIN1, cannot hold most of Unicode. */
async function latin1Database(): Promise<TestDatabase> {
  const server = await sharedPostgres();
  const name = `latin1_${process.pid}`;
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name} ENCODING 'LATIN1' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'`);
  } finally {
    await admin.end();
  }
  const url = server.url.replace(/\/[^/]*$/, `/${name}`);
  await migrate(url);
  const db = createDb(url, { max: 2, applicationName: 'ltp-test' });
  return { url, db, close: () => db.end() };
}

const template = (queue: string, overrides: Partial<InvocationTemplate> = {}): InvocationTemplate => ({
  pool: { namespace: 'default', name: 'p', uid: `uid-${queue}` },
  queue,
  functionName: 'worker',
  tasksPerInvocation: 3,
  maxTaskAttempts: 3,
  heartbeatTimeoutSeconds: 60,
  retryInitialDelayMs: 0,
  retryMaxDelayMs: 0,
  ...overrides,
});

describe('worker protocol (real Postgres)', function () {
  let t: TestDatabase;
  const logger = silentLogger();

  before(async function () {
    this.timeout(120_000);
    t = await freshDatabase('worker');
  });
  after(async () => {
    await closeWorkerConnections();
    await t.close();
  });

  const worker = (process: (payload: unknown) => Promise<unknown> | unknown, extra: { minTimeToStartTaskMs?: number } = {}) =>
    taskWorker({ databaseUrl: t.url, logger, process: (task) => process(task.payload), ...extra });

  it('migrations are idempotent and safe when two processes run them at once', async () => {
    const results = await Promise.all([migrate(t.url), migrate(t.url), migrate(t.url)]);
    expect(results.flatMap((r) => r.applied)).to.deep.equal([]);
    const tables = await t.db.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'ltp' ORDER BY 1`);
    expect(tables.rows.map((r: { table_name: string }) => r.table_name)).to.include.members(['tasks', 'invocations', 'queue_claims']);
  });

  it('processes the leased batch, marks each task done with its result, and ends the invocation succeeded', async () => {
    const ids = await enqueueTasks(t.db, { queue: 'q-basic', payloads: [{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }] });
    const [inv] = await insertInvocations(t.db, { template: template('q-basic'), count: 1, invokeAfterMs: 0 });
    const summary = await worker((p) => ({ doubled: (p as { n: number }).n * 2 }))({ invocationId: String(inv) });
    expect(summary).to.include({ outcome: 'succeeded', leased: 3, done: 3 });
    const first = await getTask(t.db, ids[0] ?? 0);
    expect(first).to.include({ status: 'done', attempts: 1, invocationId: inv });
    expect(first?.result).to.deep.equal({ doubled: 2 });
    expect((await getTask(t.db, ids[3] ?? 0))?.status).to.equal('created');
    expect(await getInvocation(t.db, inv ?? 0)).to.include({ status: 'succeeded', tasksLeased: 3, deliveries: 1 });
  });

  it("leaves the user's own pg reading bigint as a string, while the SDK reads its ids as numbers", async () => {
    const ids = await enqueueTasks(t.db, { queue: 'q-int8', payloads: [{}, {}] });
    const [inv] = await insertInvocations(t.db, { template: template('q-int8'), count: 1, invokeAfterMs: 0 });
    const { stdout } = await exec(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', USER_PROCESS], {
      cwd: fileURLToPath(new URL('../../', import.meta.url)),
      env: {
        ...process.env,
        PROBE_URL: t.url,
        PROBE_INVOCATION: String(inv),
        PROBE_SDK: new URL('../../packages/worker/src/index.ts', import.meta.url).href,
      },
    });
    const seen = JSON.parse(stdout) as { before: unknown; after: unknown; taskIds: unknown[]; summary: unknown };
    expect(seen.before).to.equal('9007199254740993');
    expect(seen.after).to.equal('9007199254740993');
    expect(seen.taskIds).to.deep.equal(ids);
    expect(seen.summary).to.include({ outcome: 'succeeded', done: 2 });
  });

  const unstorable: Array<{ name: string; process: () => unknown; stored: { status: string; result?: unknown; lastError?: string } }> = [
    {
      name: 'a result with \\u0000 in a string',
      process: () => ({ text: 'pdf\u0000text' }),
      stored: { status: 'done', result: { text: 'pdf\ufffdtext' } },
    },
    {
      name: 'a result with lone surrogates in a key and a value',
      process: () => ({ ['key\ud800']: 'cut \udc00 here', whole: '\ud83d\ude00' }),
      stored: { status: 'done', result: { 'key\ufffd': 'cut \ufffd here', whole: '\ud83d\ude00' } },
    },
    {
      name: 'an error message with a NUL byte',
      process: () => {
        throw new Error('bad byte \u0000 here');
      },
      stored: { status: 'created', lastError: 'Error: bad byte \ufffd here' },
    },
  ];
  for (const c of unstorable) {
    it(`records ${c.name} with U+FFFD in place of what Postgres cannot store, and finishes the invocation`, async () => {
      const queue = `q-unstorable-${unstorable.indexOf(c)}`;
      const ids = await enqueueTasks(t.db, { queue, payloads: [{}, {}] });
      const [inv] = await insertInvocations(t.db, { template: template(queue), count: 1, invokeAfterMs: 0 });
      let runs = 0;
      const summary = await worker(() => {
        runs += 1;
        return c.process();
      })({ invocationId: String(inv) });
      expect(summary).to.include({ outcome: 'succeeded', leased: 2, started: 2 });
      expect(runs).to.equal(2);
      for (const id of ids) {
        const task = await getTask(t.db, id);
        expect(task).to.include({ status: c.stored.status, attempts: 1, invocationId: inv });
        if ('result' in c.stored) expect(task?.result).to.deep.equal(c.stored.result);
        if (c.stored.lastError !== undefined) expect(task?.lastError).to.equal(c.stored.lastError);
      }
      expect(await getInvocation(t.db, inv ?? 0)).to.include({ status: 'succeeded', errorCode: null });
    });
  }

  it('fails only the task whose result the database still refuses, says why, and finishes the invocation', async () => {
    const latin1 = await latin1Database();
    try {
      const queue = 'q-latin1';
      const [wide, plain, wideError] = await enqueueTasks(latin1.db, {
        queue,
        payloads: [{ kind: 'wide result' }, { kind: 'plain result' }, { kind: 'wide error' }],
      });
      const [inv] = await insertInvocations(latin1.db, { template: template(queue, { maxTaskAttempts: 1 }), count: 1, invokeAfterMs: 0 });
      const handler = taskWorker<{ kind: string }>({
        databaseUrl: latin1.url,
        logger,
        process: (task) => {
          if (task.payload.kind === 'wide error') throw new Error('échec: 日本語');
          return { caption: task.payload.kind === 'wide result' ? '日本語' : 'café' };
        },
      });
      const summary = await handler({ invocationId: String(inv) });
      expect(summary).to.include({ outcome: 'succeeded', leased: 3, started: 3, done: 1, failed: 2 });
      const refused = await getTask(latin1.db, wide ?? 0);
      expect(refused).to.include({ status: 'failed', attempts: 1, result: null });
      expect(refused?.lastError).to.match(/^the database refused the task's result \(SQLSTATE 22P05\): .*LATIN1/);
      expect((await getTask(latin1.db, plain ?? 0))?.result).to.deep.equal({ caption: 'café' });
      const refusedError = await getTask(latin1.db, wideError ?? 0);
      expect(refusedError).to.include({ status: 'failed', attempts: 1 });
      expect(refusedError?.lastError).to.match(/^the database refused this attempt's error text \(SQLSTATE 22P05\)/);
      expect(await getInvocation(latin1.db, inv ?? 0)).to.include({ status: 'succeeded', errorCode: null });
    } finally {
      await closeWorkerConnections();
      await latin1.close();
    }
  });

  it('a duplicate delivery changes no task and is counted as a delivery', async () => {
    await enqueueTasks(t.db, { queue: 'q-dup', payloads: [{}, {}, {}, {}, {}, {}] });
    const [inv] = await insertInvocations(t.db, { template: template('q-dup'), count: 1, invokeAfterMs: 0 });
    let calls = 0;
    const handler = worker(() => (calls += 1));
    const [a, b] = await Promise.all([handler({ invocationId: String(inv) }), handler({ invocationId: String(inv) })]);
    expect([a.outcome, b.outcome].sort()).to.deep.equal(['skipped', 'succeeded']);
    expect(calls).to.equal(3);
    expect(await countTasksByState(t.db, 'q-dup')).to.deep.equal({ created: 3, leased: 0, done: 3, failed: 0, cancelled: 0 });
    expect((await getInvocation(t.db, inv ?? 0))?.deliveries).to.equal(2);
  });

  it("a claim's own retry is answered again, a duplicate's claim is refused, whatever request id it carries", async () => {
    await enqueueTasks(t.db, { queue: 'q-token', payloads: [{}] });
    const [inv = 0] = await insertInvocations(t.db, { template: template('q-token'), count: 1, invokeAfterMs: 0 });
    const claim = async (requestId: string, token: string | null) =>
      (
        await t.db.query<{ claimed: boolean; status: string }>(`SELECT claimed, status FROM ltp.worker_claim($1, $2, $3::uuid)`, [
          inv,
          requestId,
          token,
        ])
      ).rows[0];
    const mine = randomUUID();
    expect(await claim('req-1', mine)).to.deep.equal({ claimed: true, status: 'ready' });
    // Lambda's duplicate delivery carries the same request id, and a run of its own draws another token.
    expect(await claim('req-1', randomUUID())).to.deep.equal({ claimed: false, status: 'ready' });
    expect(await claim('req-1', null)).to.deep.equal({ claimed: false, status: 'ready' });
    const old = await t.db.query<{ claimed: boolean }>(`SELECT claimed FROM ltp.worker_claim($1, $2)`, [inv, 'req-1']);
    expect(old.rows[0]?.claimed, "an older SDK's claim of a claimed row").to.equal(false);
    expect(await claim('req-1', mine)).to.deep.equal({ claimed: true, status: 'ready' });
    expect(await getInvocation(t.db, inv)).to.include({ status: 'ready', deliveries: 4 });
    // Once the run has leased, even its own token claims nothing.
    await t.db.query(`SELECT * FROM ltp.worker_lease($1)`, [inv]);
    expect(await claim('req-1', mine)).to.deep.equal({ claimed: false, status: 'running' });
  });

  it('claims on a schema from before the claim token (an SDK upgraded before the controller migrated)', async () => {
    const older = await freshDatabase();
    try {
      await older.db.query(`DROP FUNCTION ltp.worker_claim(bigint, text, uuid)`);
      await enqueueTasks(older.db, { queue: 'q-older', payloads: [{}, {}] });
      const [inv = 0] = await insertInvocations(older.db, { template: template('q-older'), count: 1, invokeAfterMs: 0 });
      let calls = 0;
      const handler = taskWorker({ databaseUrl: older.url, logger: silentLogger(), process: () => (calls += 1) });
      expect(await handler({ invocationId: String(inv) })).to.include({ outcome: 'succeeded', done: 2 });
      expect(calls).to.equal(2);
      expect(await getInvocation(older.db, inv)).to.include({ status: 'succeeded', deliveries: 1 });
    } finally {
      await closeWorkerConnections();
      await older.close();
    }
  });

  it('a late arrival of an orphaned invocation touches nothing', async () => {
    await enqueueTasks(t.db, { queue: 'q-late', payloads: [{}, {}] });
    const [inv] = await insertInvocations(t.db, { template: template('q-late'), count: 1, invokeAfterMs: 0 });
    await endInvocations(t.db, { ids: [inv ?? 0], from: ['created', 'pending'], to: 'orphaned', code: 'StartTimeout', message: 'test' });
    let calls = 0;
    const summary = await worker(() => (calls += 1))({ invocationId: String(inv) });
    expect(summary).to.include({ outcome: 'skipped', reason: 'orphaned', leased: 0 });
    expect(calls).to.equal(0);
    expect(await countTasksByState(t.db, 'q-late')).to.deep.equal({ created: 2, leased: 0, done: 0, failed: 0, cancelled: 0 });
    expect((await getInvocation(t.db, inv ?? 0))?.status).to.equal('orphaned');
  });

  it('a failed attempt sends the task back to created with the attempt counted, and fails it when attempts are used up', async () => {
    const [id] = await enqueueTasks(t.db, { queue: 'q-fail', payloads: [{}], maxAttempts: 2 });
    const failing = worker(() => {
      throw new Error('boom');
    });
    const [inv1, inv2] = await insertInvocations(t.db, { template: template('q-fail'), count: 2, invokeAfterMs: 0 });
    expect(await failing({ invocationId: String(inv1) })).to.include({ retried: 1, failed: 0 });
    expect(await getTask(t.db, id ?? 0)).to.include({ status: 'created', attempts: 1, lastError: 'Error: boom' });
    expect(await failing({ invocationId: String(inv2) })).to.include({ retried: 0, failed: 1 });
    expect(await getTask(t.db, id ?? 0)).to.include({ status: 'failed', attempts: 2 });
  });

  it('releases the tasks it has not started when the function is running out of time, without counting an attempt', async () => {
    const ids = await enqueueTasks(t.db, { queue: 'q-time', payloads: [{}, {}, {}] });
    const [inv] = await insertInvocations(t.db, { template: template('q-time'), count: 1, invokeAfterMs: 0 });
    const deadline = Date.now() + 1_000;
    const handler = worker(() => new Promise((r) => setTimeout(r, 600)), { minTimeToStartTaskMs: 500 });
    const summary = await handler({ invocationId: String(inv) }, { getRemainingTimeInMillis: () => deadline - Date.now() });
    expect(summary).to.include({ outcome: 'succeeded', leased: 3, done: 1, released: 2 });
    const rest = await Promise.all(ids.slice(1).map((id) => getTask(t.db, id)));
    expect(rest.map((r) => [r?.status, r?.attempts])).to.deep.equal([
      ['created', 0],
      ['created', 0],
    ]);
  });

  it('stops early and releases its unstarted tasks when the controller terminates the invocation', async () => {
    await enqueueTasks(t.db, { queue: 'q-term', payloads: [{}, {}, {}] });
    const [inv] = await insertInvocations(t.db, { template: template('q-term'), count: 1, invokeAfterMs: 0 });
    const handler = taskWorker({
      databaseUrl: t.url,
      logger,
      heartbeatIntervalMs: 50,
      process: async (_task, ctx) => {
        await endInvocations(t.db, { ids: [ctx.invocationId], from: ['running'], to: 'terminated', code: 'Suspended', message: 'test' });
        await new Promise((r) => setTimeout(r, 300));
      },
    });
    const summary = await handler({ invocationId: String(inv) });
    expect(summary).to.include({ outcome: 'stopped', released: 2 });
    expect((await countTasksByState(t.db, 'q-term')).created).to.equal(2);
    expect((await getInvocation(t.db, inv ?? 0))?.status).to.equal('terminated');
  });

  it('two workers never lease the same task', async () => {
    await enqueueTasks(t.db, { queue: 'q-race', payloads: Array.from({ length: 50 }, (_, i) => ({ i })) });
    const invs = await insertInvocations(t.db, { template: template('q-race'), count: 20, invokeAfterMs: 0 });
    const seen: number[] = [];
    const handler = worker((p) => {
      seen.push((p as { i: number }).i);
    });
    await Promise.all(invs.map((id) => handler({ invocationId: String(id) })));
    expect(seen).to.have.length(50);
    expect(new Set(seen).size).to.equal(50);
    expect(await countTasksByState(t.db, 'q-race')).to.deep.equal({ created: 0, leased: 0, done: 50, failed: 0, cancelled: 0 });
  });

  it('rejects a malformed event with a clear error and touches nothing', async () => {
    const handler = worker(() => undefined);
    for (const event of [null, 'x', [], {}, { invocationId: 'abc' }, { invocationId: -1 }, { invocationId: '1; DROP TABLE ltp.tasks' }]) {
      let caught: unknown;
      try {
        await handler(event);
      } catch (error) {
        caught = error;
      }
      expect(caught, JSON.stringify(event)).to.be.instanceOf(WorkerEventError);
      expect(String(caught)).to.match(/malformed worker event/);
    }
    expect((await t.db.query('SELECT count(*)::int AS n FROM ltp.tasks')).rows[0].n).to.be.greaterThan(0);
  });

  it('a delivery for an id that has no row is skipped as missing', async () => {
    expect(await worker(() => undefined)({ invocationId: '999999' })).to.include({ outcome: 'skipped', reason: 'missing' });
  });

  it('the database refuses to move a row out of a terminal state or skip a state', async () => {
    const [inv] = await insertInvocations(t.db, { template: template('q-guard'), count: 1, invokeAfterMs: 0 });
    await t.db.query(`UPDATE ltp.invocations SET status = 'terminated' WHERE id = $1`, [inv]);
    let message = '';
    try {
      await t.db.query(`UPDATE ltp.invocations SET status = 'ready' WHERE id = $1`, [inv]);
    } catch (error) {
      message = String(error);
    }
    expect(message).to.match(/terminal/);
    const [task] = await enqueueTasks(t.db, { queue: 'q-guard', payloads: [{}] });
    message = '';
    try {
      await t.db.query(`UPDATE ltp.tasks SET status = 'done' WHERE id = $1`, [task]);
    } catch (error) {
      message = String(error);
    }
    expect(message).to.match(/cannot move from created to done/);
  });

  it('refuses a hostile queue name at insert and stores nothing', async () => {
    for (const queue of ["q'; DROP TABLE ltp.tasks; --", '', ' spaced', 'x'.repeat(200)]) {
      let failed = false;
      try {
        await enqueueTasks(t.db, { queue, payloads: [{}] });
      } catch {
        failed = true;
      }
      expect(failed, queue).to.equal(true);
    }
    expect((await t.db.query(`SELECT count(*)::int AS n FROM ltp.tasks WHERE queue LIKE '%DROP%'`)).rows[0].n).to.equal(0);
  });

  it('notifies listeners when tasks are inserted and when an invocation changes state', async () => {
    const listener = new pg.Client({ connectionString: t.url });
    await listener.connect();
    const got: Array<[string, string | undefined]> = [];
    listener.on('notification', (n) => got.push([n.channel, n.payload]));
    await listener.query('LISTEN ltp_tasks');
    await listener.query('LISTEN ltp_invocations');
    await enqueueTasks(t.db, { queue: 'q-notify', payloads: [{}, {}] });
    const [inv] = await insertInvocations(t.db, { template: template('q-notify'), count: 1, invokeAfterMs: 0 });
    await endInvocations(t.db, { ids: [inv ?? 0], from: ['created'], to: 'terminated', code: 'x', message: 'x' });
    const deadline = Date.now() + 2000;
    while (got.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await listener.end();
    expect(got).to.deep.include(['ltp_tasks', 'q-notify']);
    expect(got).to.deep.include(['ltp_invocations', 'uid-q-notify']);
  });
});
