// Which database a pool uses (docs/architecture.md §9), against a real kube-apiserver for Secrets and a real Postgres.
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import pg from 'pg';
import { DatabaseRegistry, type DatabaseResolution } from '../../src/controller/databases.ts';
import { StrandedSweeper } from '../../src/controller/stranded-sweep.ts';
import { KubeApi, loadKubeConfig } from '../../src/controller/kube.ts';
import type { Pool } from '../../src/api/types.ts';
import { silentLogger } from '../../src/ops/logger.ts';
import { enqueueTasks, getTask } from '../../src/store/task-store.ts';
import { insertInvocations } from '../../src/store/invocation-store.ts';
import { templateFor } from '../../src/controller/dispatch-pass.ts';
import { freshDatabase, type TestDatabase } from '../support/postgres.ts';
import { kubectl, sharedControlPlane } from '../support/kube.ts';

const ALLOWED = `db-allowed-${process.pid}`;
const OTHER = `db-other-${process.pid}`;

function pool(namespace: string, secretRef?: { name: string; key: string }): Pool {
  return {
    meta: { namespace, name: 'p', uid: `uid-${namespace}`, generation: 1, finalizers: [] },
    status: {},
    spec: {
      function: { name: 'worker' },
      queue: 'q',
      maxConcurrency: 1,
      tasksPerInvocation: 1,
      startTimeoutSeconds: 900,
      heartbeatTimeoutSeconds: 120,
      maxTaskAttempts: 3,
      retry: { initialDelaySeconds: 10, maxDelaySeconds: 600 },
      suspend: false,
      ...(secretRef ? { database: { secretRef } } : {}),
    },
  };
}

/** A stranded sweep of a registry's databases to which every pool is known and none is gone. */
function sweeperKnowingEveryPool(databases: DatabaseRegistry): StrandedSweeper {
  return new StrandedSweeper({
    databases,
    knownUid: () => true,
    isGone: async () => false,
    active: () => true,
    logger: silentLogger(),
    intervalMs: 60_000,
  });
}

function failure(result: DatabaseResolution) {
  expect(result.ok, 'resolution should fail').to.equal(false);
  return result.ok ? { reason: '', message: '' } : result;
}

describe('database resolution for pools (real kube-apiserver and Postgres)', function () {
  this.timeout(60_000);
  let kube: KubeApi;
  let defaultDb: TestDatabase;
  let ownDb: TestDatabase;
  const registries: DatabaseRegistry[] = [];
  const notified: Array<[string, string, string]> = [];

  const registry = (options: { defaultUrl?: string; allowed?: string[]; drainGiveUpMs?: number }) => {
    const r = new DatabaseRegistry({
      kube,
      defaultUrl: options.defaultUrl,
      allowedDefaultNamespaces: options.allowed ?? [],
      ...(options.drainGiveUpMs !== undefined ? { drainGiveUpMs: options.drainGiveUpMs } : {}),
      logger: silentLogger(),
      onNotify: (key, channel, payload) => notified.push([key, channel, payload]),
    });
    registries.push(r);
    return r;
  };

  before(async function () {
    this.timeout(120_000);
    const cp = await sharedControlPlane();
    kube = new KubeApi(loadKubeConfig(cp.kubeconfigPath));
    [defaultDb, ownDb] = await Promise.all([freshDatabase('dbdefault'), freshDatabase('dbown')]);
    await kubectl(['create', 'namespace', ALLOWED]);
    await kubectl(['create', 'namespace', OTHER]);
    await kubectl(['create', 'secret', 'generic', 'own-db', '-n', OTHER, '--from-literal', `url=${ownDb.url}`]);
    await kubectl(['create', 'secret', 'generic', 'no-url-key', '-n', OTHER, '--from-literal', `dsn=${ownDb.url}`]);
    await kubectl(['create', 'secret', 'generic', 'bad-url', '-n', OTHER, '--from-literal', 'url=mysql://admin:hunter2@db/x']);
    await kubectl(['create', 'secret', 'generic', 'down-db', '-n', OTHER, '--from-literal', 'url=postgres://admin:hunter2@127.0.0.1:1/x']);
  });
  after(async () => {
    for (const r of registries) await r.closeAll();
    await defaultDb?.close();
    await ownDb?.close();
    await kubectl(['delete', 'namespace', ALLOWED, OTHER, '--wait=false']);
  });

  it('gives a pool without a Secret the default database, named without its password', async () => {
    const result = await registry({ defaultUrl: defaultDb.url }).resolve(pool(ALLOWED));
    expect(result.ok).to.equal(true);
    if (result.ok) {
      expect(result.database.display).to.match(/^127\.0\.0\.1:\d+\/dbdefault_/);
      expect(result.database.display).not.to.include('postgres:postgres');
    }
  });

  it('refuses the default database to a namespace outside the allowed list', async () => {
    const r = registry({ defaultUrl: defaultDb.url, allowed: [ALLOWED] });
    expect((await r.resolve(pool(ALLOWED))).ok).to.equal(true);
    const refused = failure(await r.resolve(pool(OTHER)));
    expect(refused.reason).to.equal('DefaultDatabaseNotAllowed');
    expect(refused.message).to.include(`namespace ${OTHER} may not use the default database`);
  });

  it('says so when there is no default database and the pool names none', async () => {
    expect(failure(await registry({}).resolve(pool(ALLOWED))).reason).to.equal('NoDefaultDatabase');
  });

  it("reads the pool's own database from a Secret in its namespace, migrates it, and listens to it", async () => {
    const r = registry({ defaultUrl: defaultDb.url, allowed: [ALLOWED] });
    const result = await r.resolve(pool(OTHER, { name: 'own-db', key: 'url' }));
    expect(result.ok).to.equal(true);
    if (!result.ok) return;
    expect(result.database.display).to.match(/dbown_/);
    const schema = await ownDb.db.query(`SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = 'ltp'`);
    expect(schema.rows[0].n).to.be.at.least(3);
    const key = result.database.key;
    const deadline = Date.now() + 5_000;
    while (!notified.some(([k, c, p]) => k === key && c === 'ltp_tasks' && p === 'wake-me') && Date.now() < deadline) {
      await enqueueTasks(ownDb.db, { queue: 'wake-me', payloads: [{}] });
      await new Promise((res) => setTimeout(res, 200));
    }
    expect(notified).to.deep.include([key, 'ltp_tasks', 'wake-me']);
  });

  it('never reads a Secret of another namespace', async () => {
    const result = failure(await registry({ defaultUrl: defaultDb.url }).resolve(pool(ALLOWED, { name: 'own-db', key: 'url' })));
    expect(result.reason).to.equal('SecretNotFound');
    expect(result.message).to.equal(`Secret ${ALLOWED}/own-db was not found`);
  });

  it('reports a Secret the controller may not read as SecretForbidden, naming what to grant', async () => {
    // The control plane's "developer" user is bound to no role: reading any Secret is refused (403).
    const cp = await sharedControlPlane();
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ltp-forbidden-'));
    const kubeconfigPath = path.join(dir, 'kubeconfig');
    await writeFile(kubeconfigPath, cp.kubeconfigFor('developer'), { mode: 0o600 });
    const r = new DatabaseRegistry({
      kube: new KubeApi(loadKubeConfig(kubeconfigPath)),
      allowedDefaultNamespaces: [],
      logger: silentLogger(),
      onNotify: () => undefined,
    });
    registries.push(r);
    const forbidden = failure(await r.resolve(pool(OTHER, { name: 'own-db', key: 'url' })));
    expect(forbidden).to.deep.equal({
      ok: false,
      reason: 'SecretForbidden',
      message: `the controller may not read Secret ${OTHER}/own-db: grant it get on secrets in ${OTHER} (the chart's secrets.namespaces)`,
    });
  });

  it('reports a Secret without the key, or with a bad URL, without echoing its contents', async () => {
    const r = registry({ defaultUrl: defaultDb.url });
    const noKey = failure(await r.resolve(pool(OTHER, { name: 'no-url-key', key: 'url' })));
    expect(noKey).to.deep.include({ reason: 'SecretInvalid', message: `Secret ${OTHER}/no-url-key has no key "url"` });
    const bad = failure(await r.resolve(pool(OTHER, { name: 'bad-url', key: 'url' })));
    expect(bad.reason).to.equal('SecretInvalid');
    expect(bad.message).to.include('expected postgres or postgresql');
    expect(bad.message).not.to.include('hunter2');
  });

  it('reports an unreachable database as DatabaseUnavailable, without the password', async () => {
    const down = failure(await registry({ defaultUrl: defaultDb.url }).resolve(pool(OTHER, { name: 'down-db', key: 'url' })));
    expect(down.reason).to.equal('DatabaseUnavailable');
    expect(down.message).to.include('127.0.0.1:1/x');
    expect(down.message).not.to.include('hunter2');
  });

  it('drains, then closes, the connections of a database no pool uses any more once a Secret is rotated away from it', async () => {
    const r = registry({ defaultUrl: defaultDb.url });
    // A database no other registry of this suite has touched.
    const rotDb = await freshDatabase('dbrot');
    const connectionsTo = async (db: TestDatabase) => {
      const name = db.url.replace(/^.*\//, '');
      const rows = await db.db.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'lambda-task-pool-%' AND application_name <> 'lambda-task-pool-migrate'`,
        [name],
      );
      return rows.rows[0].n;
    };
    await kubectl(['create', 'secret', 'generic', 'rotating', '-n', OTHER, '--from-literal', `url=${rotDb.url}`]);
    const first = await r.resolve(pool(OTHER, { name: 'rotating', key: 'url' }));
    expect(first.ok).to.equal(true);
    if (first.ok) await first.database.db.query('SELECT 1');
    const deadline = Date.now() + 5_000;
    while ((await connectionsTo(rotDb)) < 2 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 100));
    expect(await connectionsTo(rotDb), 'a pool connection and the listener').to.be.at.least(2);

    await kubectl(['delete', 'secret', 'rotating', '-n', OTHER]);
    await kubectl(['create', 'secret', 'generic', 'rotating', '-n', OTHER, '--from-literal', `url=${defaultDb.url}`]);
    const second = await r.resolve(pool(OTHER, { name: 'rotating', key: 'url' }));
    expect(second.ok).to.equal(true);
    // The old database drains: the stranded sweep finds nothing of this pool left live in it, and closes it.
    expect(await connectionsTo(rotDb), 'still open while draining').to.be.at.least(1);
    const sweeper = sweeperKnowingEveryPool(r);
    const reports = await sweeper.runOnce();
    expect(reports.find((report) => report.closed)?.terminated).to.deep.equal([]);
    const closed = Date.now() + 5_000;
    while ((await connectionsTo(rotDb)) > 0 && Date.now() < closed) await new Promise((res) => setTimeout(res, 100));
    expect(await connectionsTo(rotDb), 'connections left to the database rotated away from').to.equal(0);
    await rotDb.close();
  });

  it('closes the connections under a rotated password at once: the same database is open under the new one', async () => {
    const r = registry({ defaultUrl: defaultDb.url });
    const sameDb = await freshDatabase('dbpw');
    // The test server trusts every local connection, so both passwords connect, as during a real rotation's overlap.
    const oldUrl = sameDb.url.replace(/:[^:@/]*@/, ':old-password@');
    expect(oldUrl).not.to.equal(sameDb.url);
    await kubectl(['create', 'secret', 'generic', 'rotating-pw', '-n', OTHER, '--from-literal', `url=${oldUrl}`]);
    const first = await r.resolve(pool(OTHER, { name: 'rotating-pw', key: 'url' }));
    if (!first.ok) throw new Error(`resolve failed: ${first.message}`);
    const oldPid = (await first.database.db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid;
    await kubectl(['delete', 'secret', 'rotating-pw', '-n', OTHER]);
    await kubectl(['create', 'secret', 'generic', 'rotating-pw', '-n', OTHER, '--from-literal', `url=${sameDb.url}`]);
    const second = await r.resolve(pool(OTHER, { name: 'rotating-pw', key: 'url' }));
    if (!second.ok) throw new Error(`resolve failed: ${second.message}`);
    expect(second.database.identity).to.equal(first.database.identity);
    // No stranded sweep runs here: before, the old connections stayed until one did (and for ever if the
    // old password was refused by then, as it is once the rotation is done).
    const alive = async () =>
      (await sameDb.db.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1', [oldPid])).rows[0]?.n;
    const deadline = Date.now() + 5_000;
    while ((await alive()) !== 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 100));
    expect(await alive(), "the old credentials' connection").to.equal(0);
    const inUse = r.inUse().filter((u) => u.database.identity === first.database.identity);
    expect(inUse.map((u) => ({ key: u.database.key, draining: u.draining }))).to.deep.equal([
      { key: second.database.key, draining: false },
    ]);
    await sameDb.close();
  });

  it('closes a draining database that stays unreachable, once the give-up time has passed, instead of retrying it for ever', async () => {
    const r = registry({ defaultUrl: defaultDb.url, drainGiveUpMs: 0 });
    const goneDb = await freshDatabase('dbgone');
    const name = goneDb.url.replace(/^.*\//, '');
    await kubectl(['create', 'secret', 'generic', 'moving-away', '-n', OTHER, '--from-literal', `url=${goneDb.url}`]);
    expect((await r.resolve(pool(OTHER, { name: 'moving-away', key: 'url' }))).ok).to.equal(true);
    await goneDb.close();
    // Its server goes away: no connection to it is accepted any more.
    const admin = new pg.Client({ connectionString: defaultDb.url });
    await admin.connect();
    try {
      await admin.query(`ALTER DATABASE ${pg.escapeIdentifier(name)} ALLOW_CONNECTIONS false`);
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [name]);
      await kubectl(['delete', 'secret', 'moving-away', '-n', OTHER]);
      await kubectl(['create', 'secret', 'generic', 'moving-away', '-n', OTHER, '--from-literal', `url=${defaultDb.url}`]);
      expect((await r.resolve(pool(OTHER, { name: 'moving-away', key: 'url' }))).ok).to.equal(true);
      const draining = () => r.inUse().filter((u) => u.draining && u.database.display.endsWith(`/${name}`));
      expect(draining(), 'draining before the sweep').to.have.length(1);
      const sweeper = sweeperKnowingEveryPool(r);
      await sweeper.runOnce();
      // Before, it stayed open for ever: its pool, its listener reconnecting and its probe connecting every second.
      expect(draining(), 'draining after a failed sweep past the give-up time').to.have.length(0);
    } finally {
      await admin.query(`ALTER DATABASE ${pg.escapeIdentifier(name)} ALLOW_CONNECTIONS true`);
      await admin.end();
    }
  });
});

describe('the stranded sweep when a pool moves to another database (real kube-apiserver and Postgres)', function () {
  this.timeout(60_000);
  const NS = `db-move-${process.pid}`;
  let from: TestDatabase;
  let to: TestDatabase;
  let registry: DatabaseRegistry;

  before(async function () {
    this.timeout(120_000);
    [from, to] = await Promise.all([freshDatabase('dbfrom'), freshDatabase('dbto')]);
    await kubectl(['create', 'namespace', NS]);
    await kubectl(['create', 'secret', 'generic', 'moving', '-n', NS, '--from-literal', `url=${from.url}`]);
    const cp = await sharedControlPlane();
    registry = new DatabaseRegistry({
      kube: new KubeApi(loadKubeConfig(cp.kubeconfigPath)),
      allowedDefaultNamespaces: [],
      logger: silentLogger(),
      onNotify: () => undefined,
    });
  });
  after(async () => {
    await registry.closeAll();
    await from.close();
    await to.close();
    await kubectl(['delete', 'namespace', NS, '--wait=false']);
  });

  it('ends what the pool left live in its old database as PoolMoved, gives its tasks back, then closes that database', async () => {
    const moving = pool(NS, { name: 'moving', key: 'url' });
    expect((await registry.resolve(moving)).ok).to.equal(true);
    const [taskId = 0] = await enqueueTasks(from.db, { queue: 'q', payloads: [{}] });
    const [running = 0, queued = 0] = await insertInvocations(from.db, {
      template: { ...templateFor(moving) },
      count: 2,
      invokeAfterMs: 0,
    });
    // One invocation leased the task and is running; the other is still queued in Lambda.
    await from.db.query(`UPDATE ltp.invocations SET status = 'ready', ready_at = now(), heartbeat_at = now() WHERE id = $1`, [running]);
    await from.db.query(`UPDATE ltp.tasks SET status = 'leased', invocation_id = $1, leased_at = now() WHERE id = $2`, [running, taskId]);
    await from.db.query(`UPDATE ltp.invocations SET status = 'running', running_at = now(), tasks_leased = 1 WHERE id = $1`, [running]);

    await kubectl(['delete', 'secret', 'moving', '-n', NS]);
    await kubectl(['create', 'secret', 'generic', 'moving', '-n', NS, '--from-literal', `url=${to.url}`]);
    expect((await registry.resolve(moving)).ok).to.equal(true);

    const sweeper = new StrandedSweeper({
      databases: registry,
      knownUid: (uid) => uid === moving.meta.uid,
      isGone: async () => false,
      active: () => true,
      logger: silentLogger(),
      intervalMs: 60_000,
    });
    const [report] = (await sweeper.runOnce()).filter((r) => r.terminated.length > 0);
    expect(report?.terminated.map((t) => [t.reason, [...t.ids].sort()])).to.deep.equal([['PoolMoved', [running, queued].sort()]]);
    const rows = await from.db.query(`SELECT id, status, error_code FROM ltp.invocations ORDER BY id`);
    expect(rows.rows).to.deep.equal([
      { id: running, status: 'terminated', error_code: 'PoolMoved' },
      { id: queued, status: 'terminated', error_code: 'PoolMoved' },
    ]);
    // The running invocation's task is held until its worker must have stopped (a heartbeat timeout), then given back.
    expect(report?.heldTasks).to.equal(1);
    await from.db.query(`UPDATE ltp.invocations SET finished_at = now() - interval '1 hour' WHERE id = $1`, [running]);
    const later = await sweeper.runOnce();
    expect(later.find((r) => r.releasedTasks === 1)?.closed, 'the drained database is closed').to.equal(true);
    expect((await getTask(from.db, taskId))?.status).to.equal('created');
  });

  it('ends nothing when only the password in the Secret changed: the same database has not moved', async () => {
    const base = pool(NS, { name: 'rotating', key: 'url' });
    const rotating = { ...base, meta: { ...base.meta, name: 'rotating', uid: 'uid-rotating' } };
    // Its own URL for the same database (the test server trusts any password), so that no other pool shares its connections.
    const withPassword = (password: string) => Object.assign(new URL(to.url), { password }).href;
    await kubectl(['create', 'secret', 'generic', 'rotating', '-n', NS, '--from-literal', `url=${withPassword('first-password')}`]);
    const before = await registry.resolve(rotating);
    expect(before.ok).to.equal(true);
    const [taskId = 0] = await enqueueTasks(to.db, { queue: rotating.spec.queue, payloads: [{}] });
    const [running = 0, queued = 0] = await insertInvocations(to.db, { template: templateFor(rotating), count: 2, invokeAfterMs: 0 });
    await to.db.query(`UPDATE ltp.invocations SET status = 'ready', ready_at = now(), heartbeat_at = now() WHERE id = $1`, [running]);
    await to.db.query(`UPDATE ltp.tasks SET status = 'leased', invocation_id = $1, leased_at = now() WHERE id = $2`, [running, taskId]);
    await to.db.query(`UPDATE ltp.invocations SET status = 'running', running_at = now(), tasks_leased = 1 WHERE id = $1`, [running]);

    // A credential rotation: the same server and database, a new password.
    await kubectl(['delete', 'secret', 'rotating', '-n', NS]);
    await kubectl(['create', 'secret', 'generic', 'rotating', '-n', NS, '--from-literal', `url=${withPassword('rotated-password')}`]);
    const after = await registry.resolve(rotating);
    expect(after.ok).to.equal(true);
    if (!before.ok || !after.ok) return;
    expect(after.database.key, 'new connections for the new password').to.not.equal(before.database.key);

    const sweeper = new StrandedSweeper({
      databases: registry,
      knownUid: (uid) => uid === rotating.meta.uid,
      isGone: async () => false,
      active: () => true,
      logger: silentLogger(),
      intervalMs: 60_000,
    });
    const reports = await sweeper.runOnce();
    expect(reports.flatMap((r) => r.terminated)).to.deep.equal([]);
    const rows = await to.db.query(`SELECT id, status FROM ltp.invocations WHERE pool_uid = $1 ORDER BY id`, [rotating.meta.uid]);
    expect(rows.rows).to.deep.equal([
      { id: running, status: 'running' },
      { id: queued, status: 'created' },
    ]);
    expect((await getTask(to.db, taskId))?.status, 'the running task keeps its lease').to.equal('leased');
    // The old password's connections were closed as soon as the new one was in use, before any sweep.
    expect(
      registry.inUse().map((u) => u.database.key),
      "the old password's connections are closed",
    ).not.to.include(before.database.key);
  });
});
