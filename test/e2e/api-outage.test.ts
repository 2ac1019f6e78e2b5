// The kube-apiserver down for two minutes under a controller that runs as its own process with leader
// election: the controller neither exits nor crash-loops; it stops dispatching while it cannot hold its
// Lease, and dispatches again within seconds of the API server's return.
import { expect } from 'chai';
import { countTasksByState, enqueueTasks } from '../../src/store/task-store.ts';
import { startControllerProcess, type ControllerProcess } from '../support/controller-process.ts';
import { sharedControlPlane } from '../support/kube.ts';
import { applyPool, condition, eventually, getPool, startSystem, type TestSystem } from '../support/system.ts';

const NS = `e2e-outage-${process.pid}`;
const OUTAGE_MS = 120_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('kube-apiserver outage (a real controller process with leader election)', function () {
  this.timeout(360_000);
  let sys: TestSystem;
  let controller: ControllerProcess | undefined;

  before(async function () {
    this.timeout(180_000);
    sys = await startSystem({ namespaces: [NS], controller: false });
  });
  after(async function () {
    this.timeout(60_000);
    await (await sharedControlPlane()).startApiServer();
    await controller?.stop();
    await sys?.stop();
  });

  const invocationCount = async () =>
    (await sys.database.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ltp.invocations WHERE queue = 'outage'`)).rows[0]?.n ?? 0;
  const leader = async () => {
    const text = await (await fetch(`http://127.0.0.1:${controller?.port}/metrics`)).text();
    return /^ltp_leader 1$/m.test(text);
  };

  it('survives two minutes without the API server, pauses dispatch while it has no Lease, and resumes within 5 s of its return', async () => {
    const cp = await sharedControlPlane();
    controller = await startControllerProcess({
      kubeconfig: sys.controllerConfig.kubeconfig ?? '',
      databaseUrl: sys.database.url,
      lambdaEndpoint: sys.lambda.endpoint,
      namespaces: [NS],
      leaderElect: { leaseNamespace: NS, identity: 'outage-controller' },
    });
    const pid = controller.child.pid;
    await applyPool({ namespace: NS, name: 'outage', queue: 'outage', maxConcurrency: 3, tasksPerInvocation: 3 });
    await eventually('the pool to be Ready', async () => condition(await getPool(NS, 'outage'), 'Ready')?.status === 'True', 60_000);
    await enqueueTasks(sys.database.db, { queue: 'outage', payloads: Array.from({ length: 9 }, () => ({ ms: 100 })) });
    await eventually('the first 9 tasks done', async () => (await countTasksByState(sys.database.db, 'outage')).done === 9, 60_000);
    expect(await leader()).to.equal(true);

    await cp.stopApiServer();
    const down = Date.now();
    // Once the Lease can no longer be renewed (10 s), the replica stops dispatching.
    await eventually('the controller to give up leadership', async () => !(await leader()), 30_000, 500);
    const before = await invocationCount();
    await enqueueTasks(sys.database.db, { queue: 'outage', payloads: Array.from({ length: 9 }, () => ({ ms: 100 })) });
    while (Date.now() - down < OUTAGE_MS) {
      expect(controller.alive(), 'the controller process stays up').to.equal(true);
      expect((await fetch(`http://127.0.0.1:${controller.port}/healthz`)).status, 'healthz while the API server is down').to.equal(200);
      expect(await invocationCount(), 'nothing dispatched without the Lease').to.equal(before);
      await sleep(2_000);
    }

    await cp.startApiServer();
    const back = Date.now();
    const first = await eventually(
      'a new invocation after the API server is back',
      async () => {
        const row = (
          await sys.database.db.query<{ created_at: Date }>(
            `SELECT min(created_at) AS created_at FROM ltp.invocations WHERE queue = 'outage' HAVING count(*) > $1`,
            [before],
          )
        ).rows[0];
        return row?.created_at;
      },
      30_000,
      100,
    );
    const resumedAfterMs = first.getTime() - back;
    expect(resumedAfterMs, `dispatch resumed ${resumedAfterMs} ms after the API server was back`).to.be.at.most(5_000);
    await eventually('all 18 tasks done', async () => (await countTasksByState(sys.database.db, 'outage')).done === 18, 60_000);
    expect(controller.child.pid).to.equal(pid);
    expect(controller.alive()).to.equal(true);
    expect(controller.output()).to.include('"lost leadership').and.include('"became leader');
  });
});
