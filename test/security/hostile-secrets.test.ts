// Hostile database Secrets (spec.database.secretRef): missing, empty, not a URL, not postgres, pointing at
// hosts that do not resolve, refuse, speak another protocol or never answer, a database whose owner holds the
// migration lock against the controller, and URLs whose query parameters try to change how the controller
// connects. Each is answered by a Ready=False condition that never echoes the Secret's value, within bounded
// time, while the healthy pool keeps dispatching and finishing its tasks. See docs/security.md (SECRET-*).
import net from 'node:net';
import { expect } from 'chai';
import pg from 'pg';
import { freePort } from '../../dev/src/ports.ts';
import { enqueueTasks } from '../../src/store/task-store.ts';
import { kubectl } from '../support/kube.ts';
import { applyPool, condition, eventually, getPool } from '../support/system.ts';
import {
  createDatabase,
  removePools,
  HealthyProbe,
  NS,
  readyReason,
  secret,
  securityStack,
  workerFunction,
  type SecurityStack,
} from './stack.ts';

const run = process.pid;

async function secretPool(name: string, secretName: string, extra: Record<string, unknown> = {}, functionName = 'team-b-worker') {
  await applyPool({
    namespace: NS.b,
    name,
    functionName,
    queue: `team-b/${name}`,
    maxConcurrency: 2,
    tasksPerInvocation: 1,
    extraSpec: { database: { secretRef: { name: secretName, ...extra } } },
  });
}

/** Everything a user can read about the pool: its status and its events. */
async function visible(name: string): Promise<string> {
  const pool = await kubectl(['get', 'ltp', name, '-n', NS.b, '-o', 'json']);
  const events = await kubectl(['get', 'events', '-n', NS.b, '--field-selector', `involvedObject.name=${name}`, '-o', 'json']);
  return pool.stdout + events.stdout;
}

describe('security: hostile database Secrets and URLs', function () {
  this.timeout(180_000);
  let stack: SecurityStack;
  let probe: HealthyProbe;
  const pools: string[] = [];
  const silent: net.Socket[] = [];
  let silentServer: net.Server | undefined;

  before(async function () {
    this.timeout(240_000);
    stack = await securityStack();
    probe = new HealthyProbe(stack).start();
  });

  after(async function () {
    this.timeout(180_000);
    for (const socket of silent) socket.destroy();
    silentServer?.close();
    await removePools(NS.b, pools);
  });

  const use = (name: string) => {
    pools.push(name);
    return name;
  };

  it('[SECRET-01] a Secret that does not exist: Ready=False SecretNotFound naming it; nothing dispatched', async () => {
    await secretPool(use('secret-01'), 'no-such-secret');
    const ready = await readyReason(NS.b, 'secret-01', 'SecretNotFound');
    expect(ready.message).to.equal(`Secret ${NS.b}/no-such-secret was not found`);
  });

  it('[SECRET-02] a Secret without the key: Ready=False SecretInvalid naming the key', async () => {
    await secret('secret-02', { other: 'postgres://app:Secret02-pw@127.0.0.1:5432/app' });
    await secretPool(use('secret-02'), 'secret-02');
    const ready = await readyReason(NS.b, 'secret-02', 'SecretInvalid');
    expect(ready.message).to.equal(`Secret ${NS.b}/secret-02 has no key "url"`);
    expect(await visible('secret-02')).to.not.include('Secret02-pw');
  });

  it('[SECRET-03] an empty value, and one of blanks only: Ready=False SecretInvalid "is empty"', async () => {
    await secret('secret-03', { url: '', blank: '   \n\t' });
    await secretPool(use('secret-03'), 'secret-03');
    await secretPool(use('secret-03-blank'), 'secret-03', { key: 'blank' });
    expect((await readyReason(NS.b, 'secret-03', 'SecretInvalid')).message).to.match(/key "url" of Secret .*\/secret-03 is empty/);
    expect((await readyReason(NS.b, 'secret-03-blank', 'SecretInvalid')).message).to.match(/key "blank" of Secret .*\/secret-03 is empty/);
  });

  it('[SECRET-04] a URL of another database (mysql://): Ready=False SecretInvalid naming the scheme, never the password', async () => {
    await secret('secret-04', { url: 'mysql://admin:Mysql04-pw@db.internal:3306/app' });
    await secretPool(use('secret-04'), 'secret-04');
    const ready = await readyReason(NS.b, 'secret-04', 'SecretInvalid');
    expect(ready.message).to.match(/has scheme "mysql": expected postgres or postgresql/);
    expect(await visible('secret-04')).to.not.include('Mysql04-pw');
  });

  it('[SECRET-05] a value that is no URL at all (a bare password): Ready=False SecretInvalid, the value not echoed', async () => {
    await secret('secret-05', { url: 'Hunter05 is the password' });
    await secretPool(use('secret-05'), 'secret-05');
    const ready = await readyReason(NS.b, 'secret-05', 'SecretInvalid');
    expect(ready.message).to.match(/is not a URL: expected postgres:\/\/USER:PASSWORD@HOST:PORT\/DATABASE/);
    expect(await visible('secret-05')).to.not.include('Hunter05');
  });

  it('[SECRET-06] a URL that names no database: Ready=False SecretInvalid', async () => {
    await secret('secret-06', { url: 'postgres://app:Secret06-pw@127.0.0.1:5432' });
    await secretPool(use('secret-06'), 'secret-06');
    expect((await readyReason(NS.b, 'secret-06', 'SecretInvalid')).message).to.match(/names no database/);
    expect(await visible('secret-06')).to.not.include('Secret06-pw');
  });

  it('[SECRET-07] a host that does not resolve: Ready=False DatabaseUnavailable (ENOTFOUND), retried, password never shown', async () => {
    await secret('secret-07', { url: 'postgres://app:Secret07-pw@no-such-host.invalid:5432/app' });
    await secretPool(use('secret-07'), 'secret-07');
    const ready = await readyReason(NS.b, 'secret-07', 'DatabaseUnavailable');
    expect(ready.message).to.match(/database no-such-host\.invalid:5432\/app is unavailable: .*ENOTFOUND/);
    expect(await visible('secret-07')).to.not.include('Secret07-pw');
  });

  it('[SECRET-08] a port where nothing listens: Ready=False DatabaseUnavailable (ECONNREFUSED)', async () => {
    const port = await freePort();
    await secret('secret-08', { url: `postgres://app:Secret08-pw@127.0.0.1:${port}/app` });
    await secretPool(use('secret-08'), 'secret-08');
    const ready = await readyReason(NS.b, 'secret-08', 'DatabaseUnavailable');
    expect(ready.message).to.match(/ECONNREFUSED/);
    expect(await visible('secret-08')).to.not.include('Secret08-pw');
  });

  it('[SECRET-09] a host that speaks another protocol (the Lambda endpoint, HTTP): Ready=False DatabaseUnavailable', async () => {
    const { port } = new URL(stack.lambda.endpoint);
    await secret('secret-09', { url: `postgres://app:Secret09-pw@127.0.0.1:${port}/app` });
    await secretPool(use('secret-09'), 'secret-09');
    await readyReason(NS.b, 'secret-09', 'DatabaseUnavailable', 60_000);
    expect(await visible('secret-09')).to.not.include('Secret09-pw');
  });

  it('[SECRET-10] a host that accepts the connection and never answers: Ready=False DatabaseUnavailable within the connect timeout', async () => {
    silentServer = net.createServer((socket) => silent.push(socket));
    await new Promise<void>((resolve) => silentServer?.listen(0, '127.0.0.1', resolve));
    const address = silentServer.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    await secret('secret-10', { url: `postgres://app:Secret10-pw@127.0.0.1:${port}/app` });
    await secretPool(use('secret-10'), 'secret-10');
    const ready = await readyReason(NS.b, 'secret-10', 'DatabaseUnavailable', 60_000);
    expect(ready.message).to.match(/database 127\.0\.0\.1:\d+\/app is unavailable/);
    expect(silent.length, 'the controller did connect').to.be.greaterThan(0);
  });

  it('[SECRET-11] forty pools on a database whose owner holds the migration lock: each says DatabaseUnavailable at once, other pools keep working, and they all start once the lock goes', async function () {
    this.timeout(240_000);
    const url = await createDatabase(stack, `sec_locked_${run}`);
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    await holder.query(`SELECT pg_advisory_lock(hashtextextended('lambda-task-pool:migrations', 0))`);
    const names = Array.from({ length: 40 }, (_, i) => use(`locked-${String(i).padStart(2, '0')}`));
    try {
      await secret('locked-db', { url });
      const items = names.map((name) => ({
        apiVersion: 'lambda.taskpool.io/v1alpha1',
        kind: 'LambdaTaskPool',
        metadata: { name, namespace: NS.b },
        spec: { function: { name: 'team-b-worker' }, queue: `team-b/${name}`, database: { secretRef: { name: 'locked-db' } } },
      }));
      const applied = await kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items }) });
      expect(applied.code, applied.stderr).to.equal(0);
      for (const name of names) {
        const ready = await readyReason(NS.b, name, 'DatabaseUnavailable', 60_000);
        expect(ready.message).to.match(new RegExp(`database 127\\.0\\.0\\.1:\\d+/sec_locked_${run} is unavailable`));
      }
      // While all forty wait, the healthy pool's new tasks are dispatched and done.
      const ids = await enqueueTasks(stack.database.db, { queue: 'healthy', payloads: [{}, {}, {}, {}] });
      await eventually(
        'the healthy pool to finish while forty pools wait for a locked database',
        async () => {
          const r = await stack.database.db.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM ltp.tasks WHERE id = ANY($1) AND status = 'done'`,
            [ids],
          );
          return r.rows[0]?.n === ids.length;
        },
        30_000,
      );
    } finally {
      await holder.end();
    }
    for (const name of names) await readyReason(NS.b, name, 'Reconciled', 90_000);
  });

  it('[SECRET-12] a URL whose query turns off the controller timeouts (?statement_timeout=0&lock_timeout=0&query_timeout=...): Ready=False SecretInvalid naming the parameter', async () => {
    const url = await createDatabase(stack, `sec_timeouts_${run}`);
    await secret('secret-12', { url: `${url}?statement_timeout=0&lock_timeout=0&query_timeout=2000000000` });
    await secretPool(use('secret-12'), 'secret-12');
    const ready = await readyReason(NS.b, 'secret-12', 'SecretInvalid');
    expect(ready.message).to.match(/sets statement_timeout, lock_timeout, query_timeout: the controller sets these itself/);
  });

  it('[SECRET-13] a URL that reads files of the controller (?sslrootcert=/etc/passwd&sslkey=/proc/self/environ): Ready=False SecretInvalid, nothing read', async () => {
    await secret('secret-13', { url: 'postgres://app:Secret13-pw@127.0.0.1:5432/app?sslrootcert=/etc/passwd&sslkey=/proc/self/environ' });
    await secretPool(use('secret-13'), 'secret-13');
    const ready = await readyReason(NS.b, 'secret-13', 'SecretInvalid');
    expect(ready.message).to.match(/sets sslkey, sslrootcert: a Secret may not name files of the controller/);
    expect(await visible('secret-13')).to.not.match(/root:x:0:0|AWS_SECRET_ACCESS_KEY/);
  });

  describe('a database of its own', () => {
    let ownUrl: string;
    let own: pg.Pool;

    before(async function () {
      this.timeout(60_000);
      ownUrl = await createDatabase(stack, `sec_own_${run}`);
      own = new pg.Pool({ connectionString: ownUrl, max: 2 });
      await own.query(
        'CREATE TABLE public.executions (task_id bigint NOT NULL, invocation_id bigint NOT NULL, at timestamptz NOT NULL DEFAULT now())',
      );
      stack.lambda.register(workerFunction('team-b-own', ownUrl));
    });
    after(async () => {
      await own?.end();
    });

    it('[SECRET-14] a URL whose ?host= and ?port= send the connection elsewhere than its authority: the condition names the host really used', async () => {
      const { port } = new URL(ownUrl);
      const database = new URL(ownUrl).pathname.slice(1);
      await secret('secret-14', { url: `postgres://postgres:Secret14-pw@decoy.invalid:6543/${database}?host=127.0.0.1&port=${port}` });
      await secretPool(use('secret-14'), 'secret-14', {}, 'team-b-own');
      const ready = await readyReason(NS.b, 'secret-14', 'Reconciled');
      expect(ready.message).to.include(`from 127.0.0.1:${port}/${database}`);
      expect(ready.message).to.not.include('decoy.invalid');
    });

    it('[SECRET-15] a secretRef that names another namespace: the field is pruned and the Secret is read in the pool namespace only', async () => {
      await secret('team-a-db', { url: ownUrl }, NS.a);
      const body = {
        apiVersion: 'lambda.taskpool.io/v1alpha1',
        kind: 'LambdaTaskPool',
        metadata: { name: use('secret-15'), namespace: NS.b },
        spec: {
          function: { name: 'team-b-own' },
          queue: 'team-b/secret-15',
          database: { secretRef: { name: 'team-a-db', namespace: NS.a } },
        },
      };
      const strict = await kubectl(['apply', '--validate=strict', '-f', '-'], { input: JSON.stringify(body) });
      expect(strict.stderr).to.match(/unknown field "spec\.database\.secretRef\.namespace"/);
      const lax = await kubectl(['apply', '--validate=false', '-f', '-'], { input: JSON.stringify(body) });
      expect(lax.code, lax.stderr).to.equal(0);
      const ready = await readyReason(NS.b, 'secret-15', 'SecretNotFound');
      expect(ready.message).to.equal(`Secret ${NS.b}/team-a-db was not found`);
    });

    it('[SECRET-16] the Secret deleted under a running pool: Ready=False SecretNotFound, nothing more dispatched, and once it is back every task is done exactly once', async function () {
      this.timeout(150_000);
      await secret('own-db', { url: ownUrl });
      await secretPool(use('secret-16'), 'own-db', {}, 'team-b-own');
      await readyReason(NS.b, 'secret-16', 'Reconciled');
      const ids = await enqueueTasks(own, { queue: 'team-b/secret-16', payloads: Array.from({ length: 8 }, () => ({ ms: 1_500 })) });
      await eventually('work in flight', async () => ((await getPool(NS.b, 'secret-16'))?.status.invocations?.running ?? 0) > 0);
      expect((await kubectl(['delete', 'secret', 'own-db', '-n', NS.b])).code).to.equal(0);
      await readyReason(NS.b, 'secret-16', 'SecretNotFound');
      const rows = async () => (await own.query<{ n: number }>(`SELECT count(*)::int AS n FROM ltp.invocations`)).rows[0]?.n ?? 0;
      const before = await rows();
      await new Promise((r) => setTimeout(r, 4_000));
      expect(await rows(), 'no invocation dispatched without the Secret').to.equal(before);
      await secret('own-db', { url: ownUrl });
      await readyReason(NS.b, 'secret-16', 'Reconciled', 60_000);
      await eventually(
        'all 8 tasks done',
        async () => {
          const r = await own.query<{ n: number }>(`SELECT count(*)::int AS n FROM ltp.tasks WHERE id = ANY($1) AND status = 'done'`, [
            ids,
          ]);
          return r.rows[0]?.n === 8;
        },
        90_000,
      );
      const runs = await own.query<{ n: number }>(`SELECT count(*)::int AS n FROM public.executions WHERE task_id = ANY($1)`, [ids]);
      expect(runs.rows[0]?.n, 'each task ran once').to.equal(8);
      expect(condition(await getPool(NS.b, 'secret-16'), 'Ready')?.status).to.equal('True');
    });
  });

  it('the healthy pool kept dispatching and finishing its tasks, each exactly once, while this group ran', async () => {
    await probe.check();
  });
});
