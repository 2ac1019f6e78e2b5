// The controller as its own process (`lambda-task-pool controller`), killed with SIGKILL in the middle of
// dispatching and started again: nothing is lost and nothing is dispatched twice.
import type { ChildProcess } from 'node:child_process';
import { expect } from 'chai';
import { waitForExit } from '../../dev/src/processes.ts';
import { startControllerProcess as startProcess } from '../support/controller-process.ts';
import { insertInvocations } from '../../src/store/invocation-store.ts';
import { countTasksByState, enqueueTasks } from '../../src/store/task-store.ts';
import { kubectl } from '../support/kube.ts';
import { applyPool, condition, eventually, getPool, startSystem, type TestSystem } from '../support/system.ts';

const NS = `e2e-crash-${process.pid}`;

describe('controller crash and restart (a real controller process, SIGKILL)', function () {
  this.timeout(240_000);
  let sys: TestSystem;
  let controller: ChildProcess | undefined;

  const startControllerProcess = async () => {
    const started = await startProcess({
      kubeconfig: sys.controllerConfig.kubeconfig ?? '',
      databaseUrl: sys.database.url,
      lambdaEndpoint: sys.lambda.endpoint,
      namespaces: [NS],
    });
    controller = started.child;
    return started.child;
  };

  before(async function () {
    this.timeout(180_000);
    sys = await startSystem({ namespaces: [NS], controller: false });
  });
  after(async function () {
    this.timeout(60_000);
    if (controller && controller.exitCode === null) {
      controller.kill('SIGTERM');
      await waitForExit(controller, 15_000);
    }
    await sys?.stop();
  });

  it('a SIGKILL mid-dispatch and a restart lose no task and dispatch nothing twice', async () => {
    const first = await startControllerProcess();
    await applyPool({ namespace: NS, name: 'crashy', queue: 'crashy', maxConcurrency: 10, tasksPerInvocation: 3 });
    await eventually('the pool to be reconciled', async () => (await getPool(NS, 'crashy'))?.status.observedGeneration === 1);
    await sys.database.db.query(`INSERT INTO ltp.tasks (queue, payload) SELECT 'crashy', '{"ms": 400}' FROM generate_series(1, 90)`);
    // Kill the moment the first invocation rows are committed: the invokes are being sent right then.
    await eventually(
      'the first invocation rows',
      async () => {
        const rows = await sys.database.db.query(`SELECT count(*)::int AS n FROM ltp.invocations WHERE queue = 'crashy'`);
        return rows.rows[0].n > 0;
      },
      30_000,
      5,
    );
    first.kill('SIGKILL');
    expect(await waitForExit(first, 10_000)).to.equal(null);
    const atKill = await sys.database.db.query<{ status: string; n: number }>(
      `SELECT status, count(*)::int AS n FROM ltp.invocations WHERE queue = 'crashy' GROUP BY status ORDER BY status`,
    );

    await startControllerProcess();
    await eventually(
      'all 90 tasks done after the restart',
      async () => (await countTasksByState(sys.database.db, 'crashy')).done === 90,
      120_000,
    );

    const runs = await sys.database.db.query<{ task_id: number; n: number }>(
      `SELECT e.task_id, count(*)::int AS n FROM public.executions e JOIN ltp.tasks t ON t.id = e.task_id WHERE t.queue = 'crashy' GROUP BY e.task_id`,
    );
    expect(runs.rows, `rows at the kill: ${JSON.stringify(atKill.rows)}`).to.have.length(90);
    expect(
      runs.rows.every((r) => r.n === 1),
      'every task ran exactly once',
    ).to.equal(true);
    const invocations = await sys.database.db.query<{ status: string; n: number; leased: number }>(
      `SELECT status, count(*)::int AS n, sum(tasks_leased)::int AS leased FROM ltp.invocations WHERE queue = 'crashy' GROUP BY status`,
    );
    expect(invocations.rows, 'exactly backlog / tasksPerInvocation invocations, all succeeded').to.deep.equal([
      { status: 'succeeded', n: 30, leased: 90 },
    ]);
  });

  it('invocation rows committed but never invoked (a crash between commit and invoke) are invoked again with the same ids', async () => {
    if (!controller || controller.exitCode !== null || controller.signalCode !== null) await startControllerProcess();
    await applyPool({ namespace: NS, name: 'crashy', queue: 'crashy', maxConcurrency: 10, tasksPerInvocation: 3 });
    await eventually('the pool to be reconciled', async () => (await getPool(NS, 'crashy'))?.status.observedGeneration === 1);
    controller?.kill('SIGKILL');
    if (controller) await waitForExit(controller, 10_000);
    const pool = await kubectl(['get', 'ltp', 'crashy', '-n', NS, '-o', 'jsonpath={.metadata.uid}']);
    const uid = pool.stdout.trim();
    const doneBefore = (await countTasksByState(sys.database.db, 'crashy')).done;
    await enqueueTasks(sys.database.db, { queue: 'crashy', payloads: Array.from({ length: 6 }, () => ({ ms: 100 })) });
    const stranded = await insertInvocations(sys.database.db, {
      template: {
        pool: { namespace: NS, name: 'crashy', uid },
        queue: 'crashy',
        functionName: 'e2e-worker',
        tasksPerInvocation: 3,
        maxTaskAttempts: 3,
        heartbeatTimeoutSeconds: 120,
        retryInitialDelayMs: 0,
        retryMaxDelayMs: 0,
      },
      count: 2,
      invokeAfterMs: 0,
    });
    await startControllerProcess();
    await eventually(
      'the 6 new tasks done',
      async () => (await countTasksByState(sys.database.db, 'crashy')).done === doneBefore + 6,
      60_000,
    );
    const rows = await sys.database.db.query<{ id: number; status: string; tasks_leased: number }>(
      `SELECT id, status, tasks_leased FROM ltp.invocations WHERE queue = 'crashy' AND id >= $1 ORDER BY id`,
      [stranded[0]],
    );
    expect(rows.rows).to.deep.equal(stranded.map((id) => ({ id, status: 'succeeded', tasks_leased: 3 })));
  });

  it('a controller that never saw the database of a deleted pool keeps the finalizer and says how to let go', async () => {
    if (!controller || controller.exitCode !== null || controller.signalCode !== null) await startControllerProcess();
    await kubectl(['create', 'secret', 'generic', 'own-db', '-n', NS, '--from-literal', `url=${sys.database.url}`]);
    await applyPool({
      namespace: NS,
      name: 'orphan-db',
      queue: 'orphan-db',
      maxConcurrency: 2,
      tasksPerInvocation: 1,
      extraSpec: { database: { secretRef: { name: 'own-db' } } },
    });
    await eventually(
      'the pool reconciled through its Secret',
      async () => (await getPool(NS, 'orphan-db'))?.status.observedGeneration === 1,
    );
    controller?.kill('SIGKILL');
    if (controller) await waitForExit(controller, 10_000);
    await kubectl(['delete', 'secret', 'own-db', '-n', NS]);
    await kubectl(['delete', 'ltp', 'orphan-db', '-n', NS, '--wait=false']);
    await startControllerProcess();
    const waiting = await eventually('Ready=False Deleting', async () => {
      const pool = await getPool(NS, 'orphan-db');
      return condition(pool, 'Ready')?.reason === 'Deleting' ? pool : undefined;
    });
    expect(condition(waiting, 'Ready')?.message).to.include(`Secret ${NS}/own-db was not found`);
    expect(condition(waiting, 'Ready')?.message).to.include('remove the finalizer lambda.taskpool.io/finalizer');
    await kubectl(['create', 'secret', 'generic', 'own-db', '-n', NS, '--from-literal', `url=${sys.database.url}`]);
    await eventually('the pool finalized once the Secret is back', async () => (await getPool(NS, 'orphan-db')) === undefined, 60_000);
    const claims = await sys.database.db.query(`SELECT count(*)::int AS n FROM ltp.queue_claims WHERE queue = 'orphan-db'`);
    expect(claims.rows[0].n).to.equal(0);
  });
});
