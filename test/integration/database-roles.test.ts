// Issue 10: the producer, worker and controller database roles, used for real. A producer enqueues under
// its role and cannot touch anything else; the controller's dispatch pass runs under its role and the
// worker SDK (in the local Lambda runtime) under the worker role gets the work done; the worker role can
// change no task it does not hold.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { expect } from 'chai';
import type { Pool } from '../../src/api/types.ts';
import { runDispatchPass } from '../../src/controller/dispatch-pass.ts';
import { createInvoker, type Invoker } from '../../src/lambda/invoker.ts';
import { startLambdaRuntime, type LambdaRuntime } from '../../dev/src/lambda-runtime/index.ts';
import { silentLogger } from '../../src/ops/logger.ts';
import { createDb, type Db } from '../../src/store/db.ts';
import { migrate } from '../../src/store/migrate.ts';
import { roleNames, rolesScript } from '../../src/store/roles.ts';
import { countTasksByState, enqueueTasks } from '../../src/store/task-store.ts';
import { freshDatabase, type TestDatabase } from '../support/postgres.ts';
import { closeWorkerConnections, taskWorker } from '../../packages/worker/src/index.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const WORKER = `${path.resolve(here, '../fixtures/functions/quick-worker.ts')}#handler`;

/** The error code Postgres answers with, or undefined when the statement succeeded. */
async function sqlState(db: Db, text: string, values: unknown[] = []): Promise<string | undefined> {
  try {
    await db.query(text, values);
    return undefined;
  } catch (error) {
    return (error as { code?: string }).code ?? 'unknown';
  }
}

describe('database roles: producer, worker and controller (real Postgres, local Lambda runtime)', function () {
  this.timeout(120_000);
  let t: TestDatabase;
  let runtime: LambdaRuntime;
  let invoker: Invoker;
  const dbs: Db[] = [];
  // Roles are cluster-wide: a prefix of this run's own.
  const prefix = `t${randomBytes(4).toString('hex')}`;
  const names = roleNames(prefix);
  const login = { producer: `${prefix}_p_login`, worker: `${prefix}_w_login`, controller: `${prefix}_c_login` };
  const urlAs = (user: string) => {
    const url = new URL(t.url);
    url.username = user;
    url.password = '';
    return url.toString();
  };
  const connect = (user: string) => {
    const db = createDb(urlAs(user), { max: 4 });
    dbs.push(db);
    return db;
  };

  before(async () => {
    t = await freshDatabase('roles');
    const result = await migrate(t.url, { createRoles: true, rolePrefix: prefix });
    expect(result.roles, 'the roles exist after migrate --create-roles').to.equal(true);
    for (const [kind, user] of Object.entries(login)) {
      await t.db.query(`CREATE ROLE ${user} LOGIN IN ROLE ${names[kind as keyof typeof names]}`);
    }
    runtime = await startLambdaRuntime({ seed: 3, logger: silentLogger(), concurrencyLimit: 8 });
    invoker = createInvoker({
      defaultRegion: 'us-east-1',
      endpoint: runtime.endpoint,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
  });

  after(async () => {
    invoker?.close();
    await runtime?.stop();
    for (const db of dbs) await db.end();
    for (const user of Object.values(login)) await t?.db.query(`DROP ROLE IF EXISTS ${user}`);
    // Group roles own grants in this database only; drop them with the objects' privileges first.
    for (const role of Object.values(names)) {
      await t?.db.query(`DROP OWNED BY ${role}`);
      await t?.db.query(`DROP ROLE IF EXISTS ${role}`);
    }
    await t?.close();
  });

  it('prints a script a DBA can read: the three roles and every grant', () => {
    const script = rolesScript(names);
    expect(script).to.include(`CREATE ROLE ${names.producer} NOLOGIN`).and.include(`CREATE ROLE ${names.worker} NOLOGIN`);
    expect(script).to.include(`GRANT SELECT, INSERT ON ltp.tasks TO ${names.producer};`);
    expect(script).to.include(`GRANT EXECUTE ON FUNCTION ltp.worker_claim(bigint, text) TO ${names.worker};`);
    // The worker role gets functions only: no table, sequence or schema-wide grant names it.
    expect(script).to.not.match(new RegExp(`ON (ltp\\.\\w+|ALL [A-Z]+ IN SCHEMA ltp) TO [^;]*${names.worker}`));
  });

  it('a producer enqueues and reads tasks, and can change nothing else', async () => {
    const producer = connect(login.producer);
    const ids = await enqueueTasks(producer, { queue: 'roles-q', payloads: [{ n: 1 }, { n: 2 }] });
    expect(ids).to.have.length(2);
    const read = await producer.query(`SELECT count(*)::int AS n FROM ltp.tasks WHERE queue = 'roles-q'`);
    expect(read.rows[0].n).to.equal(2);
    // 42501: insufficient_privilege.
    expect(await sqlState(producer, `UPDATE ltp.tasks SET status = 'done' WHERE id = $1`, [ids[0]])).to.equal('42501');
    expect(await sqlState(producer, `DELETE FROM ltp.tasks WHERE id = $1`, [ids[0]])).to.equal('42501');
    expect(await sqlState(producer, `UPDATE ltp.invocations SET status = 'orphaned'`)).to.equal('42501');
    expect(await sqlState(producer, `SELECT * FROM ltp.invocations`)).to.equal('42501');
    expect(
      await sqlState(producer, `INSERT INTO ltp.queue_claims (queue, pool_namespace, pool_name, pool_uid) VALUES ('x', 'a', 'b', 'c')`),
    ).to.equal('42501');
    expect(await sqlState(producer, `SELECT ltp.worker_claim(1, 'forged')`)).to.equal('42501');
  });

  it('the controller dispatches under its role and the worker SDK does the work under the worker role', async () => {
    const controller = connect(login.controller);
    runtime.register({
      name: 'roles-worker',
      handler: WORKER,
      environment: { DATABASE_URL: urlAs(login.worker) },
      async: { maximumRetryAttempts: 0 },
    });
    const pool: Pool = {
      meta: { namespace: 'default', name: 'roles', uid: 'uid-roles', generation: 1, finalizers: [] },
      spec: {
        function: { name: 'roles-worker' },
        queue: 'roles-q',
        maxConcurrency: 2,
        tasksPerInvocation: 1,
        startTimeoutSeconds: 60,
        heartbeatTimeoutSeconds: 30,
        maxTaskAttempts: 3,
        retry: { initialDelaySeconds: 0, maxDelaySeconds: 0 },
        suspend: false,
      },
      status: {},
    };
    const options = { reinvokeGraceMs: 10_000, rejectionBackoffMs: 30_000, limits: { resyncMs: 30_000, minRequeueMs: 200 } };
    const deadline = Date.now() + 60_000;
    for (;;) {
      await runDispatchPass({ db: controller, pool, invoker, options, connectedForMs: Number.POSITIVE_INFINITY });
      if ((await countTasksByState(controller, 'roles-q')).done === 2) break;
      if (Date.now() > deadline) throw new Error(`tasks not done: ${JSON.stringify(await countTasksByState(controller, 'roles-q'))}`);
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    const logs = runtime
      .logs('roles-worker')
      .map((l) => l.line)
      .join('\n');
    expect(logs).to.not.include('permission denied');
  });

  it('a worker role not yet granted the claim with a token still claims, without it, and says so once', async () => {
    // A DBA applies the grants by hand and has not yet granted migration 1765152000000's function.
    await t.db.query(`REVOKE EXECUTE ON FUNCTION ltp.worker_claim(bigint, text, uuid) FROM ${names.worker}`);
    const admin = t.db;
    try {
      await enqueueTasks(admin, { queue: 'roles-untokened', payloads: [{}, {}] });
      const inserted = await admin.query<{ id: number }>(
        `INSERT INTO ltp.invocations (pool_namespace, pool_name, pool_uid, queue, function_name, tasks_per_invocation, max_task_attempts,
                                      heartbeat_timeout_seconds)
         VALUES ('default', 'untokened', 'uid-untokened', 'roles-untokened', 'roles-worker', 1, 3, 30), ('default', 'untokened', 'uid-untokened', 'roles-untokened', 'roles-worker', 1, 3, 30)
         RETURNING id`,
      );
      const warnings: Array<{ message: string; fields?: Record<string, unknown> }> = [];
      const logger = {
        info() {},
        error() {},
        warn: (message: string, fields?: Record<string, unknown>) => warnings.push({ message, fields }),
      };
      const handler = taskWorker({ databaseUrl: urlAs(login.worker), logger, process: () => ({ ok: true }) });
      for (const { id } of inserted.rows) expect(await handler({ invocationId: String(id) })).to.include({ outcome: 'succeeded', done: 1 });
      const said = warnings.filter((w) => w.message.startsWith('claiming without a claim token'));
      expect(said, 'one warning for the two invocations').to.have.length(1);
      expect(said[0]?.fields).to.include({ sqlState: '42501' });
    } finally {
      await closeWorkerConnections();
      await t.db.query(`GRANT EXECUTE ON FUNCTION ltp.worker_claim(bigint, text, uuid) TO ${names.worker}`);
    }
  });

  it('a worker cannot change a task it does not hold, nor any row directly', async () => {
    const worker = connect(login.worker);
    const admin = t.db;
    const [taskId] = await enqueueTasks(admin, { queue: 'roles-other', payloads: [{}] });
    // An invocation of some pool that holds nothing: the worker cannot complete or fail a task through it.
    const inv = await admin.query<{ id: number }>(
      `INSERT INTO ltp.invocations (pool_namespace, pool_name, pool_uid, queue, function_name, tasks_per_invocation, max_task_attempts,
                                    heartbeat_timeout_seconds, status, ready_at, heartbeat_at)
       VALUES ('default', 'other', 'uid-other', 'roles-other', 'roles-worker', 1, 3, 30, 'running', now(), now()) RETURNING id`,
    );
    const invocationId = inv.rows[0]?.id;
    const completed = await worker.query<{ ok: boolean }>(`SELECT ltp.worker_complete_task($1, $2, '{}'::jsonb) AS ok`, [
      taskId,
      invocationId,
    ]);
    expect(completed.rows[0]?.ok, 'completing a task this invocation never leased').to.equal(false);
    const failed = await worker.query<{ status: string | null }>(`SELECT ltp.worker_fail_task($1, $2, 'forged', 0) AS status`, [
      taskId,
      invocationId,
    ]);
    expect(failed.rows[0]?.status).to.equal(null);
    expect(await sqlState(worker, `UPDATE ltp.tasks SET status = 'done' WHERE id = $1`, [taskId])).to.equal('42501');
    expect(await sqlState(worker, `SELECT payload FROM ltp.tasks WHERE id = $1`, [taskId])).to.equal('42501');
    expect(await sqlState(worker, `UPDATE ltp.invocations SET status = 'succeeded' WHERE id = $1`, [invocationId])).to.equal('42501');
    expect(await sqlState(worker, `INSERT INTO ltp.tasks (queue) VALUES ('roles-other')`)).to.equal('42501');
    const row = await admin.query<{ status: string }>(`SELECT status FROM ltp.tasks WHERE id = $1`, [taskId]);
    expect(row.rows[0]?.status).to.equal('created');
  });

  it('grants again on every migrate while the roles exist, so tables a later migration adds are covered', async () => {
    const controller = connect(login.controller);
    expect(await sqlState(controller, `SELECT count(*) FROM ltp.decisions`)).to.equal(undefined);
    await t.db.query(`CREATE TABLE ltp.added_later (id int)`);
    expect(await sqlState(controller, `SELECT count(*) FROM ltp.added_later`)).to.equal('42501');
    const again = await migrate(t.url, { rolePrefix: prefix });
    expect(again).to.deep.equal({ applied: [], roles: true });
    expect(await sqlState(controller, `SELECT count(*) FROM ltp.added_later`)).to.equal(undefined);
    await t.db.query(`DROP TABLE ltp.added_later`);
  });

  it('the controller role starts on a migrated database: migrate finds it up to date and runs no DDL', async () => {
    expect(await migrate(urlAs(login.controller))).to.deep.equal({ applied: [], roles: false });
  });

  it('a login role without one of the group roles reaches nothing', async () => {
    const stranger = `${prefix}_stranger`;
    await t.db.query(`CREATE ROLE ${stranger} LOGIN`);
    try {
      const db = new pg.Client({ connectionString: urlAs(stranger) });
      await db.connect();
      try {
        await db.query(`SELECT 1 FROM ltp.tasks LIMIT 1`).then(
          () => expect.fail('a stranger read the tasks'),
          (error: { code?: string }) => expect(error.code).to.equal('42501'),
        );
      } finally {
        await db.end();
      }
    } finally {
      await t.db.query(`DROP ROLE ${stranger}`);
    }
  });
});
