// Issue 11 on the real stack: the FunctionReady guard reading the local runtime's Lambda API (each reason,
// a missing permission, Managed async config), the decision trace accounting for every invocation, the cost
// metrics on /metrics, and conditions that never contradict each other.
import { expect } from 'chai';
import { GetFunctionEventInvokeConfigCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { enqueueTasks, countTasksByState } from '../../src/store/task-store.ts';
import { loadTrace } from '../../src/trace/trace.ts';
import { applyPool, condition, E2E_WORKER, eventually, getPool, startSystem, type PoolView, type TestSystem } from '../support/system.ts';
import { kubectl } from '../support/kube.ts';

const NS = 'guard-e2e';

describe('function guard, decision trace and cost metrics end to end (real kube-apiserver, Postgres and Lambda runtime)', function () {
  this.timeout(180_000);
  let sys: TestSystem;

  const register = (name: string, over: Record<string, unknown> = {}) =>
    sys.lambda.register({
      name,
      handler: E2E_WORKER,
      timeoutSeconds: 60,
      memoryMb: 512,
      environment: { DATABASE_URL: sys.database.url, LTP_LOG_LEVEL: 'warn' },
      async: { startDelayMs: { min: 200, max: 600 }, maximumRetryAttempts: 0, maximumEventAgeSeconds: 3600 },
      ...over,
    });

  const functionReady = async (name: string, reason: string, timeoutMs = 30_000): Promise<PoolView> =>
    eventually(
      `FunctionReady reason ${reason} on ${name}`,
      async () => {
        const pool = await getPool(NS, name);
        return condition(pool, 'FunctionReady')?.reason === reason ? pool : undefined;
      },
      timeoutMs,
    );

  /** The pool of the two asyncConfig tests, Managed or not, with a start timeout of 600 s. */
  const applyGuardManaged = (asyncConfig: 'Managed' | 'Unmanaged') =>
    applyPool({
      namespace: NS,
      name: 'guard-managed',
      queue: 'guard-managed',
      functionName: 'guard-managed',
      maxConcurrency: 5,
      extraSpec: { function: { name: 'guard-managed', asyncConfig }, startTimeoutSeconds: 600 },
    });

  /** The function's async invoke config as Lambda (the local runtime) reports it. */
  const asyncConfigOf = async (name: string) => {
    const client = new LambdaClient({
      region: 'us-east-1',
      endpoint: sys.lambda.endpoint,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    try {
      const config = await client.send(new GetFunctionEventInvokeConfigCommand({ FunctionName: name }));
      return { retries: config.MaximumRetryAttempts, age: config.MaximumEventAgeInSeconds };
    } finally {
      client.destroy();
    }
  };

  /** No two conditions may tell different stories: checked on every status this test reads. */
  const consistent = (pool: PoolView | undefined) => {
    const ready = condition(pool, 'Ready');
    const active = condition(pool, 'Active');
    const degraded = condition(pool, 'Degraded');
    if (ready?.status === 'False') {
      expect(degraded?.status, `Degraded while Ready=False ${ready.reason}`).to.equal('True');
      if ((pool?.status.invocations?.running ?? 0) + (pool?.status.invocations?.ready ?? 0) === 0) {
        expect(active?.status, `Active while Ready=False ${ready.reason} and nothing runs`).to.equal('False');
      }
    }
  };

  before(async () => {
    sys = await startSystem({ namespaces: [NS], controllerOverrides: { functionCheckMs: 2_000, resyncMs: 2_000 } });
  });
  after(async () => {
    await sys?.stop();
  });

  it('reports FunctionConfigured for a function set up for exact counts, then each problem with its advice', async () => {
    register('guard-ok', { reservedConcurrency: 5 });
    await applyPool({ namespace: NS, name: 'guard-ok', queue: 'guard-ok', functionName: 'guard-ok', maxConcurrency: 5 });
    const ok = await functionReady('guard-ok', 'FunctionConfigured');
    expect(condition(ok, 'FunctionReady')?.status).to.equal('True');
    expect(condition(ok, 'FunctionReady')?.message).to.include('timeout 60s, memory 512 MB, reserved concurrency 5');

    // The function changes under the pool: the guard reads it again within its interval.
    register('guard-ok', { reservedConcurrency: 2 });
    const low = await functionReady('guard-ok', 'ReservedConcurrencyTooLow');
    expect(condition(low, 'FunctionReady')).to.include({ status: 'False' });
    expect(condition(low, 'FunctionReady')?.message).to.include('reserved concurrency 2, below maxConcurrency 5');

    register('guard-ok', { reservedConcurrency: 5, state: 'Pending' });
    const pending = await functionReady('guard-ok', 'FunctionNotActive');
    expect(condition(pending, 'FunctionReady')?.message).to.include('its state is Pending');
    expect(condition(pending, 'Degraded')).to.include({ status: 'True', reason: 'FunctionNotReady' });

    register('guard-ok', { reservedConcurrency: 5, async: { maximumRetryAttempts: 0, maximumEventAgeSeconds: 120 } });
    const age = await functionReady('guard-ok', 'EventAgeTooShort');
    expect(condition(age, 'FunctionReady')?.message).to.include('drops events older than 120s').and.include('startTimeoutSeconds');

    register('guard-ok', { reservedConcurrency: 5, async: { maximumRetryAttempts: 2 } });
    const retries = await functionReady('guard-ok', 'AsyncRetriesEnabled');
    expect(condition(retries, 'FunctionReady')?.message).to.include('retries failed events of guard-ok 2 times');
    expect(condition(retries, 'Degraded'), 'a configuration risk alone does not degrade the pool').to.include({ status: 'False' });
  });

  it('says a missing permission instead of failing, and checks again once it is granted', async () => {
    register('guard-perm', { reservedConcurrency: 5 });
    sys.lambda.identity.deny(['lambda:GetFunctionConcurrency']);
    try {
      await applyPool({ namespace: NS, name: 'guard-perm', queue: 'guard-perm', functionName: 'guard-perm', maxConcurrency: 5 });
      const denied = await functionReady('guard-perm', 'PermissionMissing');
      expect(condition(denied, 'FunctionReady')).to.include({ status: 'Unknown' });
      expect(condition(denied, 'FunctionReady')?.message).to.include('lambda:GetFunctionConcurrency').and.include('docs/deploy.md');
      // The pool still works.
      await enqueueTasks(sys.database.db, { queue: 'guard-perm', payloads: [{}, {}] });
      await eventually('guard-perm tasks done', async () => (await countTasksByState(sys.database.db, 'guard-perm')).done === 2, 30_000);
    } finally {
      sys.lambda.identity.allow(['lambda:GetFunctionConcurrency']);
    }
    await functionReady('guard-perm', 'FunctionConfigured');
  });

  it('Managed sets the function to retries 0 and an event age of the start timeout, as Lambda then reports it', async () => {
    register('guard-managed', {
      reservedConcurrency: 5,
      async: { startDelayMs: 200, maximumRetryAttempts: 2, maximumEventAgeSeconds: 21_600 },
    });
    await applyGuardManaged('Managed');
    await functionReady('guard-managed', 'FunctionConfigured');
    // An event older than the start timeout is orphaned already: Lambda may as well drop it.
    expect(await asyncConfigOf('guard-managed')).to.deep.equal({ retries: 0, age: 600 });
    // Someone changes it by hand: the next check puts it back.
    register('guard-managed', { reservedConcurrency: 5, async: { maximumRetryAttempts: 1, maximumEventAgeSeconds: 60 } });
    await eventually(
      'the event age raised to the start timeout',
      async () => {
        const config = await asyncConfigOf('guard-managed');
        return config.retries === 0 && config.age === 600;
      },
      30_000,
    );
    await functionReady('guard-managed', 'FunctionConfigured');
  });

  it('stops managing the async config once the pool says Unmanaged: a setting made by hand then stays', async () => {
    // The pool of the test above, switched to Unmanaged; then someone sets the function's async config by hand.
    await applyGuardManaged('Unmanaged');
    await eventually(
      'the pool observed at its new generation',
      async () => {
        const pool = await getPool(NS, 'guard-managed');
        return pool?.status.observedGeneration === pool?.metadata.generation;
      },
      30_000,
    );
    register('guard-managed', { reservedConcurrency: 5, async: { maximumRetryAttempts: 2, maximumEventAgeSeconds: 3_600 } });
    // Unmanaged only reports what it finds.
    await functionReady('guard-managed', 'AsyncRetriesEnabled');
    // Three more check intervals (2 s each): a guard still managing the function would have put it back by now.
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    expect(await asyncConfigOf('guard-managed')).to.deep.equal({ retries: 2, age: 3_600 });
  });

  it('says the timeout is too short for tasksPerInvocation tasks of the duration the ledger shows', async () => {
    register('guard-short', { timeoutSeconds: 4, reservedConcurrency: 5 });
    await applyPool({
      namespace: NS,
      name: 'guard-short',
      queue: 'guard-short',
      functionName: 'guard-short',
      maxConcurrency: 2,
      tasksPerInvocation: 3,
    });
    await functionReady('guard-short', 'FunctionConfigured');
    await enqueueTasks(sys.database.db, { queue: 'guard-short', payloads: Array.from({ length: 3 }, () => ({ ms: 1_500 })) });
    const short = await functionReady('guard-short', 'FunctionTimeoutTooShort', 60_000);
    expect(condition(short, 'FunctionReady')?.message)
      .to.include('guard-short times out after 4s, but 3 tasks of about')
      .and.include('raise its timeout to at least');
  });

  it('says when Managed cannot set the async config, with the error', async () => {
    register('guard-unmanaged', { reservedConcurrency: 5, async: { maximumRetryAttempts: 2 } });
    sys.lambda.identity.deny(['lambda:PutFunctionEventInvokeConfig']);
    try {
      await applyPool({
        namespace: NS,
        name: 'guard-unmanaged',
        queue: 'guard-unmanaged',
        functionName: 'guard-unmanaged',
        maxConcurrency: 5,
        extraSpec: { function: { name: 'guard-unmanaged', asyncConfig: 'Managed' } },
      });
      const failed = await functionReady('guard-unmanaged', 'AsyncConfigNotSet');
      expect(condition(failed, 'FunctionReady')?.message)
        .to.include('asyncConfig is Managed, but lambda:PutFunctionEventInvokeConfig failed: AccessDeniedException')
        .and.include('retries failed events of guard-unmanaged 2 times');
    } finally {
      sys.lambda.identity.allow(['lambda:PutFunctionEventInvokeConfig']);
    }
  });

  it('says invocations Lambda accepted are not starting, instead of waiting the whole start timeout in silence', async () => {
    register('guard-stuck', { reservedConcurrency: 5, async: { maximumRetryAttempts: 0, maximumEventAgeSeconds: 3600, dropRate: 1 } });
    await applyPool({
      namespace: NS,
      name: 'guard-stuck',
      queue: 'guard-stuck',
      functionName: 'guard-stuck',
      maxConcurrency: 2,
      extraSpec: { startTimeoutSeconds: 60 },
    });
    await enqueueTasks(sys.database.db, { queue: 'guard-stuck', payloads: [{}, {}] });
    const stuck = await functionReady('guard-stuck', 'InvocationsNotStarting', 45_000);
    expect(condition(stuck, 'FunctionReady')?.message).to.include('may be failing before it runs');
    expect(condition(stuck, 'Degraded')).to.include({ status: 'True', reason: 'FunctionNotReady' });
    consistent(stuck);
    await kubectl(['delete', 'ltp', 'guard-stuck', '-n', NS, '--wait=true']);
  });

  it('says the function timed out when heartbeats stop at its timeout, and advises on the timeout', async () => {
    register('guard-timeout', { timeoutSeconds: 8, reservedConcurrency: 5 });
    await applyPool({
      namespace: NS,
      name: 'guard-timeout',
      queue: 'guard-timeout',
      functionName: 'guard-timeout',
      maxConcurrency: 1,
      tasksPerInvocation: 1,
      extraSpec: { heartbeatTimeoutSeconds: 5, maxTaskAttempts: 1 },
    });
    await functionReady('guard-timeout', 'FunctionConfigured');
    await enqueueTasks(sys.database.db, { queue: 'guard-timeout', payloads: [{ ms: 30_000 }] });
    const row = await eventually(
      'the invocation orphaned',
      async () => {
        const r = await sys.database.db.query<{ error_code: string; error_message: string }>(
          `SELECT error_code, error_message FROM ltp.invocations WHERE queue = 'guard-timeout' AND status = 'orphaned'`,
        );
        return r.rows[0];
      },
      60_000,
    );
    expect(row.error_code).to.equal('FunctionTimedOut');
    expect(row.error_message).to.include("the function's timeout (8s)").and.include('Raise the function');
  });

  it('a missing function: Ready, Active, Degraded and FunctionReady all say so', async () => {
    await applyPool({ namespace: NS, name: 'guard-missing', queue: 'guard-missing', functionName: 'no-such-function' });
    await enqueueTasks(sys.database.db, { queue: 'guard-missing', payloads: [{}] });
    const pool = await eventually('FunctionNotFound everywhere', async () => {
      const p = await getPool(NS, 'guard-missing');
      return condition(p, 'Ready')?.reason === 'FunctionNotFound' && condition(p, 'FunctionReady')?.reason === 'FunctionNotFound'
        ? p
        : undefined;
    });
    expect(condition(pool, 'Degraded')).to.include({ status: 'True', reason: 'FunctionNotFound' });
    expect(condition(pool, 'Active')).to.include({ status: 'False', reason: 'NotDispatching' });
    expect(condition(pool, 'Active')?.message).to.include('1 task waiting, but nothing is dispatched');
    consistent(pool);
  });

  it('accounts for every invocation of a burst by a decision, and counts the cost on /metrics', async () => {
    register('guard-burst', { reservedConcurrency: 5 });
    await applyPool({
      namespace: NS,
      name: 'guard-burst',
      queue: 'guard-burst',
      functionName: 'guard-burst',
      maxConcurrency: 5,
      tasksPerInvocation: 3,
    });
    await functionReady('guard-burst', 'FunctionConfigured');
    const since = new Date(Date.now() - 1_000);
    await enqueueTasks(sys.database.db, { queue: 'guard-burst', payloads: Array.from({ length: 29 }, () => ({ ms: 300 })) });
    await enqueueTasks(sys.database.db, { queue: 'guard-burst', payloads: [{ fail: true }], maxAttempts: 1 });
    await eventually(
      'the burst finished',
      async () => {
        const c = await countTasksByState(sys.database.db, 'guard-burst');
        return c.done === 29 && c.failed === 1;
      },
      90_000,
    );
    const pool = await eventually('the pool idle', async () => {
      const p = await getPool(NS, 'guard-burst');
      return condition(p, 'Active')?.status === 'False' ? p : undefined;
    });
    consistent(pool);

    // The trace: every invocation of the pool was started by a recorded decision, and the decisions add up.
    const uid = (await kubectl(['get', 'ltp', 'guard-burst', '-n', NS, '-o', 'jsonpath={.metadata.uid}'])).stdout;
    const trace = await loadTrace(sys.database.db, { poolUid: uid, since, limit: 1000 });
    const rows = await sys.database.db.query<{ id: string; decision_id: string | null }>(
      `SELECT id, decision_id FROM ltp.invocations WHERE pool_uid = $1`,
      [uid],
    );
    expect(rows.rows.length).to.be.greaterThan(0);
    const decisionIds = new Set(trace.map((d) => d.id));
    for (const r of rows.rows) expect(decisionIds.has(Number(r.decision_id)), `invocation ${r.id} has a decision`).to.equal(true);
    expect(trace.reduce((n, d) => n + d.outcome.dispatched, 0)).to.equal(rows.rows.length);
    expect(trace.reduce((n, d) => n + d.invocations.length, 0)).to.equal(rows.rows.length);
    const first = trace.find((d) => d.outcome.dispatched > 0);
    expect(first?.reason).to.match(/^dispatched \d+/);

    // kubectl describe shows the last decision and the last task error.
    const described = (await kubectl(['describe', 'ltp', 'guard-burst', '-n', NS])).stdout;
    expect(described).to.include('Last Decision').and.include('Last Task Error').and.include('the task asked to fail');
    const wide = (await kubectl(['get', 'ltp', 'guard-burst', '-n', NS, '-o', 'wide'])).stdout;
    expect(wide.split('\n')[0]).to.include('WASTED');

    // The cost metrics.
    const metrics = await (await fetch(`http://127.0.0.1:${sys.controller?.healthPort}/metrics`)).text();
    const value = (name: string, labels: string) => {
      const line = metrics.split('\n').find((l) => l.startsWith(`${name}{`) && labels.split(',').every((p) => l.includes(p)));
      return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : undefined;
    };
    expect(value('ltp_tasks_finished_total', 'pool="guard-burst",result="done"')).to.equal(29);
    expect(value('ltp_tasks_finished_total', 'pool="guard-burst",result="failed"')).to.equal(1);
    const succeeded = rows.rows.length;
    expect(value('ltp_invocation_duration_seconds_count', 'pool="guard-burst",outcome="succeeded"')).to.equal(succeeded);
    const seconds = value('ltp_invocation_duration_seconds_sum', 'pool="guard-burst",outcome="succeeded"') ?? 0;
    expect(value('ltp_invocation_gb_seconds_total', 'pool="guard-burst"')).to.be.closeTo((seconds * 512) / 1024, 0.01);
    // Wasted invocations: the counter counts what the status count shows (both started with the pool).
    const status = pool.status as { wastedInvocations?: number };
    expect(status.wastedInvocations).to.be.a('number');
    expect(value('ltp_invocations_wasted_total', 'pool="guard-burst"') ?? 0).to.equal(status.wastedInvocations);
    expect(value('ltp_pool_ready', 'pool="guard-burst"')).to.equal(1);
    expect(value('ltp_function_ready', 'pool="guard-burst"')).to.equal(1);
  });
});
