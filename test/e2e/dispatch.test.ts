// End to end on the real stack: kube-apiserver + etcd, Postgres, the local Lambda runtime running worker
// processes behind the real AWS SDK (with a start delay of 1-3 s), and the controller.
import { expect } from 'chai';
import { enqueueTasks, countTasksByState } from '../../src/store/task-store.ts';
import { kubectl, sharedControlPlane } from '../support/kube.ts';
import { installCrd } from '../../dev/src/crd.ts';
import { loadKubeConfig } from '../../src/controller/kube.ts';
import {
  applyPool,
  condition,
  E2E_WORKER,
  eventually,
  getPool,
  maxConcurrentLive,
  startSystem,
  type TestSystem,
} from '../support/system.ts';

const NS = `e2e-dispatch-${process.pid}`;

describe('controller end to end (real kube-apiserver, Postgres and Lambda runtime)', function () {
  this.timeout(240_000);
  let sys: TestSystem;

  before(async function () {
    this.timeout(180_000);
    sys = await startSystem({ namespaces: [NS] });
  });
  after(async function () {
    this.timeout(60_000);
    await sys?.stop();
  });

  it('works 300 tasks exactly once with exactly 100 invocations, never more than 10 live, none wasted', async () => {
    await applyPool({ namespace: NS, name: 'bulk', queue: 'bulk', maxConcurrency: 10, tasksPerInvocation: 3 });
    await eventually('the pool to be Ready', async () => condition(await getPool(NS, 'bulk'), 'Ready')?.status === 'True');
    await sys.database.db.query(
      `INSERT INTO ltp.tasks (queue, payload) SELECT 'bulk', jsonb_build_object('ms', 150) FROM generate_series(1, 300)`,
    );
    const seen = { backlog: new Set<number>(), running: new Set<number>() };
    await eventually(
      'all 300 tasks done',
      async () => {
        const pool = await getPool(NS, 'bulk');
        if (pool?.status.backlog !== undefined) seen.backlog.add(pool.status.backlog);
        if (pool?.status.invocations?.running !== undefined) seen.running.add(pool.status.invocations.running);
        return pool?.status.tasks?.done === 300 && pool.status.backlog === 0 ? pool : undefined;
      },
      180_000,
      500,
    );

    const executions = await sys.database.db.query<{ task_id: number; n: number }>(
      `SELECT task_id, count(*)::int AS n FROM public.executions e JOIN ltp.tasks t ON t.id = e.task_id WHERE t.queue = 'bulk' GROUP BY task_id`,
    );
    expect(executions.rows).to.have.length(300);
    expect(
      executions.rows.every((r) => r.n === 1),
      'every task ran once',
    ).to.equal(true);
    expect(await countTasksByState(sys.database.db, 'bulk')).to.deep.equal({ created: 0, leased: 0, done: 300, failed: 0, cancelled: 0 });

    const invocations = await sys.database.db.query<{ status: string; n: number; leased: number }>(
      `SELECT status, count(*)::int AS n, sum(tasks_leased)::int AS leased FROM ltp.invocations WHERE queue = 'bulk' GROUP BY status`,
    );
    expect(invocations.rows).to.deep.equal([{ status: 'succeeded', n: 100, leased: 300 }]);
    const wasted = await sys.database.db.query(`SELECT count(*)::int AS n FROM ltp.invocations WHERE queue = 'bulk' AND tasks_leased = 0`);
    expect(wasted.rows[0].n, 'wasted invocations').to.equal(0);
    expect(await maxConcurrentLive(sys.database.db))
      .to.be.at.most(10)
      .and.at.least(5);

    // What a user watching `kubectl get ltp` saw: counts moving, then settling with the right conditions.
    expect(seen.backlog.size, 'distinct backlog values seen').to.be.greaterThan(2);
    expect(
      [...seen.running].some((n) => n > 0),
      'saw running invocations',
    ).to.equal(true);
    const settled = await eventually('the pool to settle idle', async () => {
      const pool = await getPool(NS, 'bulk');
      return condition(pool, 'Active')?.status === 'False' ? pool : undefined;
    });
    expect(condition(settled, 'Ready')).to.include({ status: 'True', reason: 'Reconciled' });
    expect(condition(settled, 'Degraded')).to.include({ status: 'False' });
    expect(settled.status.invocations).to.include({ succeeded: 100, created: 0, pending: 0, ready: 0, running: 0 });
    const table = await kubectl(['get', 'ltp', 'bulk', '-n', NS]);
    expect(table.stdout).to.match(/bulk\s+bulk\s+10\s+0\s+0\s+0\s+True/);

    // What an operator's Prometheus sees.
    const port = sys.controller?.healthPort;
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).to.include(`ltp_invocations_dispatched_total{namespace="${NS}",pool="bulk",result="accepted"} 100`);
    expect(metrics).to.include(`ltp_invocations{namespace="${NS}",pool="bulk",state="succeeded"} 100`);
    // None wasted: the counter never moved (a counter appears once incremented), and the status count agrees.
    expect(metrics).to.not.include(`ltp_invocations_wasted_total{namespace="${NS}",pool="bulk"}`);
    expect((settled.status as { wastedInvocations?: number }).wastedInvocations).to.equal(0);
    expect(metrics).to.include(`ltp_tasks_finished_total{namespace="${NS}",pool="bulk",result="done"} 300`);
    expect(metrics).to.include(`ltp_invocation_duration_seconds_count{namespace="${NS}",pool="bulk",outcome="succeeded"} 100`);
    expect(metrics).to.include(`ltp_backlog_tasks{namespace="${NS}",pool="bulk"} 0`);
    expect(metrics).to.match(/ltp_task_wait_seconds_count\{namespace="[^"]+",pool="bulk"\} \d+/);
    expect(metrics).to.match(/ltp_reconcile_duration_seconds_count\{outcome="success"\} \d+/);
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).to.equal(200);
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).to.equal(200);
  });

  it('suspending stops dispatch and terminates queued invocations; resuming finishes the work', async () => {
    await applyPool({ namespace: NS, name: 'pausable', queue: 'pausable', maxConcurrency: 4, tasksPerInvocation: 1 });
    await enqueueTasks(sys.database.db, { queue: 'pausable', payloads: Array.from({ length: 40 }, () => ({ ms: 300 })) });
    await eventually('invocations in flight', async () => ((await getPool(NS, 'pausable'))?.status.tasks?.done ?? 0) > 0);
    await kubectl(['patch', 'ltp', 'pausable', '-n', NS, '--type=merge', '-p', '{"spec":{"suspend":true}}']);
    const suspended = await eventually('Suspended=True with nothing queued', async () => {
      const pool = await getPool(NS, 'pausable');
      const inv = pool?.status.invocations;
      return condition(pool, 'Suspended')?.status === 'True' &&
        inv &&
        (inv.created ?? 0) + (inv.pending ?? 0) + (inv.ready ?? 0) + (inv.running ?? 0) === 0
        ? pool
        : undefined;
    });
    expect(condition(suspended, 'Suspended')?.reason).to.equal('SuspendedBySpec');
    const before = await sys.database.db.query(`SELECT count(*)::int AS n FROM ltp.invocations WHERE queue = 'pausable'`);
    await new Promise((r) => setTimeout(r, 3_000));
    const after = await sys.database.db.query(`SELECT count(*)::int AS n FROM ltp.invocations WHERE queue = 'pausable'`);
    expect(after.rows[0].n, 'no invocation created while suspended').to.equal(before.rows[0].n);
    expect((await countTasksByState(sys.database.db, 'pausable')).created).to.be.greaterThan(0);

    await kubectl(['patch', 'ltp', 'pausable', '-n', NS, '--type=merge', '-p', '{"spec":{"suspend":false}}']);
    await eventually('all 40 done after resuming', async () => (await countTasksByState(sys.database.db, 'pausable')).done === 40, 120_000);
    const runs = await sys.database.db.query(
      `SELECT count(*)::int AS n FROM public.executions e JOIN ltp.tasks t ON t.id = e.task_id WHERE t.queue = 'pausable'`,
    );
    expect(runs.rows[0].n).to.equal(40);
  });

  it('deleting a pool terminates its live invocations, returns its tasks to the queue and keeps every task', async () => {
    await applyPool({ namespace: NS, name: 'doomed', queue: 'doomed', maxConcurrency: 3, tasksPerInvocation: 2 });
    await enqueueTasks(sys.database.db, { queue: 'doomed', payloads: Array.from({ length: 30 }, () => ({ ms: 2_000 })) });
    await eventually('work in flight', async () => ((await getPool(NS, 'doomed'))?.status.invocations?.running ?? 0) > 0);
    const result = await kubectl(['delete', 'ltp', 'doomed', '-n', NS, '--timeout=60s']);
    expect(result.code, result.stderr).to.equal(0);
    expect(await getPool(NS, 'doomed')).to.equal(undefined);
    const live = await sys.database.db.query(
      `SELECT count(*)::int AS n FROM ltp.invocations WHERE queue = 'doomed' AND status IN ('created','pending','ready','running')`,
    );
    expect(live.rows[0].n).to.equal(0);
    const terminated = await sys.database.db.query(
      `SELECT count(*)::int AS n FROM ltp.invocations WHERE queue = 'doomed' AND status = 'terminated'`,
    );
    expect(terminated.rows[0].n).to.be.greaterThan(0);
    // A running worker learns of the termination at its next heartbeat, stops, and gives its tasks back; the
    // controller itself gives back what a dead worker still holds one heartbeat timeout after the end.
    const tasks = await eventually(
      'no task left leased',
      async () => {
        const counts = await countTasksByState(sys.database.db, 'doomed');
        return counts.leased === 0 ? counts : undefined;
      },
      60_000,
    );
    expect(tasks.created + tasks.done + tasks.failed).to.equal(30);
    const claims = await sys.database.db.query(`SELECT count(*)::int AS n FROM ltp.queue_claims WHERE queue = 'doomed'`);
    expect(claims.rows[0].n).to.equal(0);
  });

  it('a second pool claiming the same queue gets Ready=False QueueConflict and dispatches nothing', async () => {
    await applyPool({ namespace: NS, name: 'owner', queue: 'shared', maxConcurrency: 2, tasksPerInvocation: 1 });
    await eventually('owner Ready', async () => condition(await getPool(NS, 'owner'), 'Ready')?.status === 'True');
    await applyPool({ namespace: NS, name: 'intruder', queue: 'shared', maxConcurrency: 2, tasksPerInvocation: 1 });
    const intruder = await eventually('intruder blocked', async () => {
      const pool = await getPool(NS, 'intruder');
      return condition(pool, 'Ready')?.reason === 'QueueConflict' ? pool : undefined;
    });
    expect(condition(intruder, 'Ready')?.message).to.include(`${NS}/owner`);
    await enqueueTasks(sys.database.db, { queue: 'shared', payloads: [{}, {}, {}] });
    await eventually('owner finishes the shared queue', async () => (await countTasksByState(sys.database.db, 'shared')).done === 3);
    const byPool = await sys.database.db.query(`SELECT DISTINCT pool_name FROM ltp.invocations WHERE queue = 'shared'`);
    expect(byPool.rows.map((r: { pool_name: string }) => r.pool_name)).to.deep.equal(['owner']);
    // The claim carries the owner's retention, for every controller that sweeps this database: the
    // controller's default while the pool names none, then the pool's own as soon as it names one.
    const recorded = async () =>
      (
        await sys.database.db.query<{ seconds: number | null }>(
          `SELECT retention_seconds AS seconds FROM ltp.queue_claims WHERE queue = 'shared'`,
        )
      ).rows[0]?.seconds;
    expect(await recorded(), "the controller's default retention on the owner's claim").to.equal(sys.controllerConfig.retentionSeconds);
    await applyPool({
      namespace: NS,
      name: 'owner',
      queue: 'shared',
      maxConcurrency: 2,
      tasksPerInvocation: 1,
      extraSpec: { retentionSeconds: 0 },
    });
    await eventually("the owner's own retention (for ever) on its claim", async () => (await recorded()) === 0);
  });

  it('a missing function becomes Ready=False FunctionNotFound without an endless retry, and other pools keep working', async () => {
    await applyPool({
      namespace: NS,
      name: 'ghost',
      queue: 'ghost',
      functionName: 'no-such-function',
      maxConcurrency: 5,
      tasksPerInvocation: 1,
    });
    await enqueueTasks(sys.database.db, { queue: 'ghost', payloads: Array.from({ length: 10 }, () => ({})) });
    const ghost = await eventually('FunctionNotFound', async () => {
      const pool = await getPool(NS, 'ghost');
      return condition(pool, 'Ready')?.reason === 'FunctionNotFound' ? pool : undefined;
    });
    expect(condition(ghost, 'Ready')?.message).to.match(/ResourceNotFoundException/);
    const first = await sys.database.db.query(`SELECT count(*)::int AS n FROM ltp.invocations WHERE queue = 'ghost'`);
    await new Promise((r) => setTimeout(r, 4_000));
    const later = await sys.database.db.query(`SELECT count(*)::int AS n FROM ltp.invocations WHERE queue = 'ghost'`);
    expect(later.rows[0].n, 'no new invocations during the rejection backoff').to.equal(first.rows[0].n);
    expect((await countTasksByState(sys.database.db, 'ghost')).created, 'no task lost').to.equal(10);
    const events = await kubectl(['get', 'events', '-n', NS, '--field-selector', 'involvedObject.name=ghost', '-o', 'json']);
    expect(events.stdout).to.include('InvokeRejected');

    await applyPool({ namespace: NS, name: 'healthy', queue: 'healthy', maxConcurrency: 2, tasksPerInvocation: 1 });
    await enqueueTasks(sys.database.db, { queue: 'healthy', payloads: [{}, {}] });
    await eventually(
      'the healthy pool works beside the broken one',
      async () => (await countTasksByState(sys.database.db, 'healthy')).done === 2,
    );
  });

  it('a pool whose database Secret is missing gets Ready=False SecretNotFound and recovers when the Secret appears', async () => {
    await applyPool({
      namespace: NS,
      name: 'byo-db',
      queue: 'byo',
      maxConcurrency: 2,
      tasksPerInvocation: 1,
      extraSpec: { database: { secretRef: { name: 'byo-db' } } },
    });
    const blocked = await eventually('SecretNotFound', async () => {
      const pool = await getPool(NS, 'byo-db');
      return condition(pool, 'Ready')?.reason === 'SecretNotFound' ? pool : undefined;
    });
    expect(condition(blocked, 'Ready')?.message).to.equal(`Secret ${NS}/byo-db was not found`);
    // It never had a database, so it dispatched nothing there, and carries no finalizer yet.
    expect(blocked.metadata.finalizers ?? []).to.deep.equal([]);
    await kubectl(['create', 'secret', 'generic', 'byo-db', '-n', NS, '--from-literal', 'url=not a url']);
    const invalid = await eventually('SecretInvalid', async () => {
      const pool = await getPool(NS, 'byo-db');
      return condition(pool, 'Ready')?.reason === 'SecretInvalid' ? pool : undefined;
    });
    expect(JSON.stringify(invalid.status)).not.to.include('not a url');
    await kubectl(['delete', 'secret', 'byo-db', '-n', NS]);
    await kubectl(['create', 'secret', 'generic', 'byo-db', '-n', NS, '--from-literal', `url=${sys.database.url}`]);
    await enqueueTasks(sys.database.db, { queue: 'byo', payloads: [{}, {}] });
    const ready = await eventually(
      'Ready through the Secret',
      async () => {
        const pool = await getPool(NS, 'byo-db');
        return condition(pool, 'Ready')?.status === 'True' && pool?.status.tasks?.done === 2 ? pool : undefined;
      },
      60_000,
    );
    expect(JSON.stringify(ready.status)).not.to.include('postgres:');
    expect(condition(ready, 'Ready')?.message).not.to.include(':postgres@');
    expect(ready.metadata.finalizers, 'the finalizer, once it had a database').to.deep.equal(['lambda.taskpool.io/finalizer']);
  });

  it('a pool whose Secret never existed is deleted at once: it never had a database, so nothing waits for one', async () => {
    await applyPool({
      namespace: NS,
      name: 'misspelt-db',
      queue: 'misspelt',
      maxConcurrency: 2,
      tasksPerInvocation: 1,
      extraSpec: { database: { secretRef: { name: 'no-such-secret' } } },
    });
    await eventually('SecretNotFound', async () => condition(await getPool(NS, 'misspelt-db'), 'Ready')?.reason === 'SecretNotFound');
    // Before, the finalizer went on first, and deleting the pool waited for ever for the missing Secret.
    const deleted = await kubectl(['delete', 'ltp', 'misspelt-db', '-n', NS, '--timeout=20s']);
    expect(deleted.code, deleted.stderr).to.equal(0);
    expect(await getPool(NS, 'misspelt-db')).to.equal(undefined);
  });

  it('a pool deleted after its database Secret is finalized through the database it last used', async () => {
    await kubectl(['create', 'secret', 'generic', 'gone-db', '-n', NS, '--from-literal', `url=${sys.database.url}`]);
    await applyPool({
      namespace: NS,
      name: 'gone',
      queue: 'gone',
      maxConcurrency: 2,
      tasksPerInvocation: 1,
      extraSpec: { database: { secretRef: { name: 'gone-db' } } },
    });
    await enqueueTasks(sys.database.db, { queue: 'gone', payloads: Array.from({ length: 6 }, () => ({ ms: 3_000 })) });
    await eventually('work in flight', async () => ((await getPool(NS, 'gone'))?.status.invocations?.running ?? 0) > 0);
    await kubectl(['delete', 'secret', 'gone-db', '-n', NS]);
    const result = await kubectl(['delete', 'ltp', 'gone', '-n', NS, '--timeout=60s']);
    expect(result.code, result.stderr).to.equal(0);
    const live = await sys.database.db.query(
      `SELECT count(*)::int AS n FROM ltp.invocations WHERE queue = 'gone' AND status IN ('created','pending','ready','running')`,
    );
    expect(live.rows[0].n).to.equal(0);
    const tasks = await eventually(
      'no task left leased',
      async () => {
        const counts = await countTasksByState(sys.database.db, 'gone');
        return counts.leased === 0 ? counts : undefined;
      },
      60_000,
    );
    expect(tasks.created + tasks.done + tasks.failed).to.equal(6);
  });

  it('Invoke throttles show as Degraded=Throttled, the same rows are invoked again, and the pool recovers', async () => {
    const fn = (throttleRate: number) => ({
      name: 'throttled-worker',
      handler: E2E_WORKER,
      timeoutSeconds: 60,
      environment: { DATABASE_URL: sys.database.url, LTP_LOG_LEVEL: 'warn' },
      async: { startDelayMs: 200, throttleRate },
    });
    sys.lambda.register(fn(1));
    await applyPool({
      namespace: NS,
      name: 'throttled',
      queue: 'throttled',
      functionName: 'throttled-worker',
      maxConcurrency: 3,
      tasksPerInvocation: 1,
    });
    await enqueueTasks(sys.database.db, { queue: 'throttled', payloads: [{}, {}, {}] });
    const degraded = await eventually('Degraded=Throttled', async () => {
      const pool = await getPool(NS, 'throttled');
      return condition(pool, 'Degraded')?.reason === 'Throttled' ? pool : undefined;
    });
    expect(condition(degraded, 'Degraded')?.message).to.include('TooManyRequestsException');
    expect(condition(degraded, 'Ready')?.status, 'a throttle is not a broken pool').to.equal('True');
    sys.lambda.register(fn(0));
    await eventually('the throttled tasks done', async () => (await countTasksByState(sys.database.db, 'throttled')).done === 3, 60_000);
    const rows = await sys.database.db.query(`SELECT count(*)::int AS n FROM ltp.invocations WHERE queue = 'throttled'`);
    expect(rows.rows[0].n, 'throttled rows were invoked again, not replaced').to.equal(3);
    await eventually('Degraded=False again', async () => condition(await getPool(NS, 'throttled'), 'Degraded')?.status === 'False');
  });

  it('events Lambda drops are orphaned at their start deadline, their work is dispatched again, and no task runs twice', async () => {
    const fn = (dropRate: number) => ({
      name: 'lossy-worker',
      handler: E2E_WORKER,
      timeoutSeconds: 60,
      environment: { DATABASE_URL: sys.database.url, LTP_LOG_LEVEL: 'warn' },
      async: { startDelayMs: 200, dropRate },
    });
    sys.lambda.register(fn(1));
    await applyPool({
      namespace: NS,
      name: 'lossy',
      queue: 'lossy',
      functionName: 'lossy-worker',
      maxConcurrency: 2,
      tasksPerInvocation: 1,
      extraSpec: { startTimeoutSeconds: 10 },
    });
    await enqueueTasks(sys.database.db, { queue: 'lossy', payloads: [{}, {}] });
    const degraded = await eventually(
      'Degraded=InvocationsOrphaned',
      async () => {
        const pool = await getPool(NS, 'lossy');
        return condition(pool, 'Degraded')?.reason === 'InvocationsOrphaned' ? pool : undefined;
      },
      60_000,
    );
    expect(degraded.status.invocations?.orphaned).to.be.at.least(2);
    sys.lambda.register(fn(0));
    await eventually('the lossy tasks done', async () => (await countTasksByState(sys.database.db, 'lossy')).done === 2, 60_000);
    const runs = await sys.database.db.query(
      `SELECT count(*)::int AS n FROM public.executions e JOIN ltp.tasks t ON t.id = e.task_id WHERE t.queue = 'lossy'`,
    );
    expect(runs.rows[0].n).to.equal(2);
    const orphaned = await sys.database.db.query(
      `SELECT count(*)::int AS n FROM ltp.invocations WHERE queue = 'lossy' AND status = 'orphaned' AND error_code = 'StartTimeout'`,
    );
    expect(orphaned.rows[0].n).to.be.at.least(2);
  });

  it('a pool stored before the schema tightened gets Ready=False InvalidSpec, and the controller keeps serving the others', async () => {
    // Loosen the real CRD, store a pool the strict schema would refuse, then put the strict CRD back.
    const crd = JSON.parse((await kubectl(['get', 'crd', 'lambdataskpools.lambda.taskpool.io', '-o', 'json'])).stdout);
    const spec = crd.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties;
    delete spec.maxConcurrency.minimum;
    delete spec.queue.pattern;
    try {
      const loosened = await kubectl(['replace', '-f', '-'], { input: JSON.stringify(crd) });
      expect(loosened.code, loosened.stderr).to.equal(0);
      await eventually(
        'the loose schema to be served',
        async () => {
          const created = await kubectl(['apply', '-f', '-'], {
            input: JSON.stringify({
              apiVersion: 'lambda.taskpool.io/v1alpha1',
              kind: 'LambdaTaskPool',
              metadata: { name: 'legacy', namespace: NS },
              spec: { function: { name: 'e2e-worker' }, queue: 'bad queue!', maxConcurrency: 0 },
            }),
          });
          return created.code === 0;
        },
        20_000,
      );
    } finally {
      await installCrd(loadKubeConfig((await sharedControlPlane()).kubeconfigPath));
    }
    const legacy = await eventually('InvalidSpec', async () => {
      const pool = await getPool(NS, 'legacy');
      return condition(pool, 'Ready')?.reason === 'InvalidSpec' ? pool : undefined;
    });
    const message = condition(legacy, 'Ready')?.message ?? '';
    expect(message).to.include('spec.queue');
    expect(message).to.include('spec.maxConcurrency must be an integer from 1 to 1000');
    expect(legacy.status.observedGeneration).to.equal(legacy.metadata.generation);
    const rows = await sys.database.db.query(`SELECT count(*)::int AS n FROM ltp.invocations WHERE pool_name = 'legacy'`);
    expect(rows.rows[0].n).to.equal(0);

    await applyPool({ namespace: NS, name: 'sane', queue: 'sane', maxConcurrency: 2, tasksPerInvocation: 1 });
    await enqueueTasks(sys.database.db, { queue: 'sane', payloads: [{}, {}] });
    await eventually('another pool keeps working', async () => (await countTasksByState(sys.database.db, 'sane')).done === 2, 60_000);
  });
});
