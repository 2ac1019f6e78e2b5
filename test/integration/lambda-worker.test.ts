// The worker SDK behind the local Lambda runtime, driven by the real @aws-sdk/client-lambda and the
// controller's own dispatch pass, against a real Postgres. The faults of asynchronous Lambda (docs/architecture.md §3)
// are switched on one at a time; what is asserted is the rows and the journal, never the calls made.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvokeCommand, LambdaClient, TooManyRequestsException } from '@aws-sdk/client-lambda';
import { expect } from 'chai';
import type { Pool, PoolSpec } from '../../src/api/types.ts';
import { runDispatchPass, templateFor, type DispatchPassOptions, type DispatchPassResult } from '../../src/controller/dispatch-pass.ts';
import { createInvoker, type Invoker } from '../../src/lambda/invoker.ts';
import { type FunctionRegistration, type LambdaRuntime, startLambdaRuntime } from '../../dev/src/lambda-runtime/index.ts';
import { silentLogger } from '../../src/ops/logger.ts';
import { endInvocations, getInvocation, insertInvocations, loadLiveInvocations } from '../../src/store/invocation-store.ts';
import { countTasksByState, enqueueTasks } from '../../src/store/task-store.ts';
import { workerEventPayload } from '../../packages/worker/src/event.ts';
import { freshDatabase, type TestDatabase } from '../support/postgres.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const WORKER = `${path.resolve(here, '../fixtures/functions/worker-journal.ts')}#handler`;
const CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' };
const PASS_OPTIONS: DispatchPassOptions = {
  reinvokeGraceMs: 10_000,
  rejectionBackoffMs: 30_000,
  limits: { resyncMs: 30_000, minRequeueMs: 200 },
};

interface JournalRow {
  taskId: number;
  invocationId: number;
  attempt: number;
  phase: 'started' | 'ok' | 'threw';
}

interface TaskView {
  id: number;
  status: string;
  attempts: number;
  invocationId: number | null;
  lastError: string | null;
  updatedAt: Date;
}

interface InvocationView {
  id: number;
  status: string;
  requestId: string | null;
  deliveries: number;
  tasksLeased: number;
  invokeAttempts: number;
  errorCode: string | null;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function poolFor(name: string, spec: Partial<PoolSpec> & Pick<PoolSpec, 'queue'>): Pool {
  return {
    meta: { namespace: 'default', name, uid: `uid-${name}`, generation: 1, finalizers: [] },
    spec: {
      function: { name },
      maxConcurrency: 10,
      tasksPerInvocation: 1,
      startTimeoutSeconds: 60,
      heartbeatTimeoutSeconds: 30,
      maxTaskAttempts: 3,
      retry: { initialDelaySeconds: 0, maxDelaySeconds: 0 },
      suspend: false,
      ...spec,
    },
    status: {},
  };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to fail');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('worker SDK behind the local Lambda runtime (real SDK, real processes, real Postgres)', function () {
  this.timeout(60_000);
  let t: TestDatabase;
  let runtime: LambdaRuntime;
  let invoker: Invoker;
  let lambda: LambdaClient;

  function register(name: string, settings: Omit<FunctionRegistration, 'name' | 'handler'> = {}): void {
    runtime.register({
      name,
      handler: WORKER,
      timeoutSeconds: 60,
      ...settings,
      environment: { DATABASE_URL: t.url, ...settings.environment },
    });
  }

  const pass = (pool: Pool): Promise<DispatchPassResult> =>
    runDispatchPass({ db: t.db, pool, invoker, options: PASS_OPTIONS, connectedForMs: Number.POSITIVE_INFINITY });

  /** What the controller does: a dispatch pass every ~200 ms until no task waits and no invocation is live. */
  async function driveUntilDrained(pool: Pool, timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    let passes = 0;
    for (;;) {
      await pass(pool);
      passes += 1;
      const tasks = await countTasksByState(t.db, pool.spec.queue);
      const live = await loadLiveInvocations(t.db, pool.meta.uid);
      if (tasks.created === 0 && tasks.leased === 0 && live.length === 0) return passes;
      if (Date.now() > deadline) {
        throw new Error(
          `queue ${pool.spec.queue} not drained after ${timeoutMs} ms: tasks ${JSON.stringify(tasks)}, ${live.length} live invocations`,
        );
      }
      await sleep(200);
    }
  }

  async function journal(queue: string): Promise<JournalRow[]> {
    const result = await t.db.query<JournalRow>(
      `SELECT e.task_id AS "taskId", e.invocation_id AS "invocationId", e.attempt, e.phase
         FROM public.executions e JOIN ltp.tasks t ON t.id = e.task_id WHERE t.queue = $1 ORDER BY e.id`,
      [queue],
    );
    return result.rows;
  }

  async function tasks(queue: string): Promise<TaskView[]> {
    const result = await t.db.query<TaskView>(
      `SELECT id, status, attempts, invocation_id AS "invocationId", last_error AS "lastError", updated_at AS "updatedAt"
         FROM ltp.tasks WHERE queue = $1 ORDER BY id`,
      [queue],
    );
    return result.rows;
  }

  async function invocations(pool: Pool): Promise<InvocationView[]> {
    const result = await t.db.query<InvocationView>(
      `SELECT id, status, request_id AS "requestId", deliveries, tasks_leased AS "tasksLeased",
              invoke_attempts AS "invokeAttempts", error_code AS "errorCode"
         FROM ltp.invocations WHERE pool_uid = $1 ORDER BY id`,
      [pool.meta.uid],
    );
    return result.rows;
  }

  function countBy<T>(items: readonly T[], key: (item: T) => number): Map<number, number> {
    const counts = new Map<number, number>();
    for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
    return counts;
  }

  before(async function () {
    this.timeout(120_000);
    t = await freshDatabase('lambda_worker');
    await t.db.query(`CREATE TABLE public.executions (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, task_id bigint NOT NULL, invocation_id bigint NOT NULL,
      attempt integer NOT NULL, phase text NOT NULL, pid integer NOT NULL, at timestamptz NOT NULL DEFAULT now())`);
    runtime = await startLambdaRuntime({ seed: 7, logger: silentLogger(), concurrencyLimit: 32 });
    invoker = createInvoker({ defaultRegion: 'us-east-1', endpoint: runtime.endpoint, credentials: CREDENTIALS, parallelism: 16 });
    lambda = new LambdaClient({ endpoint: runtime.endpoint, region: 'us-east-1', credentials: CREDENTIALS, maxAttempts: 1 });
  });

  after(async function () {
    this.timeout(60_000);
    invoker?.close();
    lambda?.destroy();
    const pids = runtime?.pids() ?? [];
    await runtime?.stop();
    await t?.close();
    expect(runtime?.pids() ?? [], 'function processes the runtime still tracks').to.deep.equal([]);
    expect(pids.filter(alive), 'function processes still alive after stop()').to.deep.equal([]);
  });

  it('processes 500 tasks exactly once each through duplicate deliveries, Lambda retries and task retries', async function () {
    this.timeout(120_000);
    const pool = poolFor('worker-bulk', { queue: 'q-bulk', tasksPerInvocation: 5, maxConcurrency: 20, maxTaskAttempts: 3 });
    register('worker-bulk', {
      environment: { FAIL_AFTER_SUCCESS_EVERY: '20' },
      async: { duplicateRate: 0.05, maximumRetryAttempts: 2, retryDelaysMs: [200, 400] },
    });
    // Every 50th task throws on its first attempt: ten task-level retries with a known answer.
    const payloads = Array.from({ length: 500 }, (_, i) => ({ ms: 5, failOnFirstAttempt: i % 50 === 7 }));
    const ids = await enqueueTasks(t.db, { queue: 'q-bulk', payloads });
    const flaky = new Set(ids.filter((_, i) => i % 50 === 7));

    await driveUntilDrained(pool, 90_000);
    await runtime.idle(30_000); // late duplicates and retries of finished runs still arrive

    const rows = await tasks('q-bulk');
    expect(rows.filter((r) => r.status !== 'done')).to.deep.equal([]);
    const entries = await journal('q-bulk');
    const ok = entries.filter((e) => e.phase === 'ok');
    const okByTask = countBy(ok, (e) => e.taskId);
    expect(
      ids.filter((id) => okByTask.get(id) !== 1),
      'tasks without exactly one successful execution',
    ).to.deep.equal([]);
    // The task row names the invocation and the attempt that did the work.
    const okOf = new Map(ok.map((e) => [e.taskId, e]));
    expect(rows.filter((r) => okOf.get(r.id)?.invocationId !== r.invocationId || okOf.get(r.id)?.attempt !== r.attempts)).to.deep.equal([]);
    expect(
      rows.filter((r) => r.attempts !== (flaky.has(r.id) ? 2 : 1)).map((r) => r.id),
      'tasks with unexpected attempts',
    ).to.deep.equal([]);
    const threw = entries.filter((e) => e.phase === 'threw');
    expect(threw.map((e) => [e.taskId, e.attempt])).to.have.deep.members([...flaky].map((id) => [id, 1]));

    // The runtime really delivered duplicates and retried events, and each row counted every delivery.
    const events = runtime.events('worker-bulk');
    const stats = runtime.stats('worker-bulk');
    const duplicated = events.filter((e) => e.deliveries.some((d) => d.duplicate));
    const retried = events.filter((e) => e.deliveries.some((d) => d.attempt > 1));
    expect(duplicated.length, 'events delivered twice').to.be.greaterThan(0);
    expect(retried.length, 'events Lambda retried').to.be.greaterThan(0);
    expect(stats).to.include({ duplicates: duplicated.length, crashed: 0, timedOut: 0 });
    const invs = await invocations(pool);
    expect(invs.filter((i) => i.status !== 'succeeded')).to.deep.equal([]);
    expect(invs).to.have.length(events.length);
    const byRequest = new Map(invs.map((i) => [i.requestId, i]));
    for (const event of events) {
      expect(byRequest.get(event.requestId)?.deliveries, `deliveries of ${event.requestId}`).to.equal(event.deliveries.length);
    }
    expect(duplicated.every((e) => (byRequest.get(e.requestId)?.deliveries ?? 0) >= 2)).to.equal(true);

    // No invocation leased twice: each lease counted one attempt, and each row leased at most one batch.
    const leases = invs.reduce((sum, i) => sum + i.tasksLeased, 0);
    expect(leases).to.equal(rows.reduce((sum, r) => sum + r.attempts, 0));
    expect(entries.filter((e) => e.phase === 'started')).to.have.length(leases);
    expect(invs.filter((i) => i.tasksLeased > 5)).to.deep.equal([]);
    const startedPairs = countBy(
      entries.filter((e) => e.phase === 'started'),
      (e) => e.invocationId * 1_000_000 + e.taskId,
    );
    expect([...startedPairs.values()].filter((n) => n !== 1)).to.deep.equal([]);
    runtime.unregister('worker-bulk');
  });

  it('a late arrival of an orphaned invocation touches nothing', async () => {
    const pool = poolFor('worker-late', { queue: 'q-late', tasksPerInvocation: 3 });
    register('worker-late');
    await enqueueTasks(t.db, { queue: 'q-late', payloads: [{}, {}, {}] });
    const before = await tasks('q-late');
    const [id = 0] = await insertInvocations(t.db, {
      template: {
        pool: pool.meta,
        queue: 'q-late',
        functionName: 'worker-late',
        tasksPerInvocation: 3,
        maxTaskAttempts: 3,
        heartbeatTimeoutSeconds: 30,
        retryInitialDelayMs: 0,
        retryMaxDelayMs: 0,
      },
      count: 1,
      invokeAfterMs: 0,
    });
    expect(
      await endInvocations(t.db, { ids: [id], from: ['created', 'pending'], to: 'orphaned', code: 'StartTimeout', message: 'test' }),
    ).to.deep.equal([id]);

    const out = await lambda.send(
      new InvokeCommand({ FunctionName: 'worker-late', InvocationType: 'Event', Payload: Buffer.from(workerEventPayload(id)) }),
    );
    expect(out.StatusCode).to.equal(202);
    await runtime.idle(30_000);

    const [event] = runtime.events('worker-late');
    expect(event?.deliveries.map((d) => d.outcome)).to.deep.equal(['success']);
    expect(await tasks('q-late')).to.deep.equal(before);
    expect(await journal('q-late')).to.deep.equal([]);
    expect(await getInvocation(t.db, id)).to.include({ status: 'orphaned', deliveries: 1, tasksLeased: 0, errorCode: 'StartTimeout' });
    runtime.unregister('worker-late');
  });

  it('a crash mid-task uses up the attempt of the task it was running; the task it never started goes back at no cost', async function () {
    this.timeout(60_000);
    const pool = poolFor('worker-crash', {
      queue: 'q-crash',
      tasksPerInvocation: 2,
      maxConcurrency: 1,
      heartbeatTimeoutSeconds: 5,
      maxTaskAttempts: 2,
    });
    register('worker-crash', { async: { crashRate: 1, crashAfterMs: 1_500, maximumRetryAttempts: 0 } });
    const [slow = 0] = await enqueueTasks(t.db, { queue: 'q-crash', payloads: [{ ms: 30_000 }], maxAttempts: 1 });
    const [last = 0] = await enqueueTasks(t.db, { queue: 'q-crash', payloads: [{}], maxAttempts: 1 });

    const first = await pass(pool);
    expect(first.dispatched).to.have.length(1);
    const [id = 0] = first.dispatched;
    await runtime.idle(30_000);

    const [event] = runtime.events('worker-crash');
    expect(event?.deliveries.map((d) => d.outcome)).to.deep.equal(['crash']);
    expect(await journal('q-crash')).to.deep.equal([{ taskId: slow, invocationId: id, attempt: 1, phase: 'started' }]);
    expect(await getInvocation(t.db, id)).to.include({ status: 'running', tasksLeased: 2 });
    expect((await tasks('q-crash')).map((r) => [r.status, r.attempts])).to.deep.equal([
      ['leased', 1],
      ['leased', 0],
    ]);

    // The controller gives up on the silent invocation only once the heartbeat timeout has passed.
    const crashedAt = Date.now();
    let orphanedAfterMs: number | undefined;
    while (orphanedAfterMs === undefined) {
      const result = await pass(pool);
      if (result.orphaned.includes(id)) orphanedAfterMs = Date.now() - crashedAt;
      else expect((await getInvocation(t.db, id))?.status).to.equal('running');
      if (Date.now() - crashedAt > 20_000) throw new Error('the crashed invocation was never orphaned');
      await sleep(250);
    }
    const row = await getInvocation(t.db, id);
    expect(row).to.include({ status: 'orphaned', errorCode: 'HeartbeatLost' });
    const after = await tasks('q-crash');
    expect(after.find((r) => r.id === slow)).to.include({ status: 'failed', attempts: 1 });
    expect(after.find((r) => r.id === last)).to.include({ status: 'created', attempts: 0 });
    expect(after.every((r) => r.lastError === 'released: its invocation ended before finishing it')).to.equal(true);
    runtime.unregister('worker-crash');
  });

  it('throttled invokes surface as TooManyRequestsException and the rows are invoked again once throttling stops', async function () {
    this.timeout(60_000);
    register('worker-throttled', { async: { throttleRate: 1 } });
    const error = await rejection(
      lambda.send(
        new InvokeCommand({ FunctionName: 'worker-throttled', InvocationType: 'Event', Payload: Buffer.from(workerEventPayload(1)) }),
      ),
    );
    expect(error).to.be.instanceOf(TooManyRequestsException);
    expect(error).to.include({ name: 'TooManyRequestsException', retryAfterSeconds: '1' });
    expect(error).to.have.nested.property('$metadata.httpStatusCode', 429);

    const pool = poolFor('worker-throttled', { queue: 'q-throttled', tasksPerInvocation: 2, maxConcurrency: 4 });
    await enqueueTasks(t.db, { queue: 'q-throttled', payloads: [{}, {}, {}, {}] });
    const first = await pass(pool);
    expect(first.dispatched).to.have.length(2);
    expect(first.invoke.accepted).to.equal(0);
    expect(first.invoke.deferred?.ids).to.deep.equal(first.dispatched);
    expect(first.invoke.deferred?.failure).to.include({ kind: 'throttled', code: 'TooManyRequestsException', retryAfterMs: 1_000 });
    const deferred = await invocations(pool);
    expect(deferred.map((i) => [i.status, i.errorCode, i.invokeAttempts])).to.deep.equal([
      ['created', 'TooManyRequestsException', 1],
      ['created', 'TooManyRequestsException', 1],
    ]);
    // The throttled rows are still the supply for the backlog: a pass right away adds none.
    expect((await pass(pool)).dispatched).to.deep.equal([]);
    expect(runtime.stats('worker-throttled').accepted).to.equal(0);

    register('worker-throttled', { async: { throttleRate: 0 } });
    await driveUntilDrained(pool, 30_000);
    expect((await invocations(pool)).map((i) => [i.id, i.status, i.errorCode, i.invokeAttempts])).to.deep.equal(
      first.dispatched.map((id) => [id, 'succeeded', null, 2]),
    );
    expect(await countTasksByState(t.db, 'q-throttled')).to.deep.equal({ created: 0, leased: 0, done: 4, failed: 0, cancelled: 0 });
    runtime.unregister('worker-throttled');
  });

  it('an invocation running out of time releases the tasks it has not started without counting an attempt', async function () {
    this.timeout(30_000);
    const pool = poolFor('worker-timeout', { queue: 'q-timeout', tasksPerInvocation: 5, maxConcurrency: 1 });
    register('worker-timeout', { timeoutSeconds: 3, environment: { MIN_TIME_TO_START_TASK_MS: '1500' } });
    await enqueueTasks(t.db, { queue: 'q-timeout', payloads: Array.from({ length: 5 }, () => ({ ms: 1_000 })) });

    const [id = 0] = (await pass(pool)).dispatched;
    await runtime.idle(20_000);

    const [event] = runtime.events('worker-timeout');
    expect(event?.deliveries.map((d) => d.outcome)).to.deep.equal(['success']);
    expect(await getInvocation(t.db, id)).to.include({ status: 'succeeded', tasksLeased: 5 });
    const rows = await tasks('q-timeout');
    const done = rows.filter((r) => r.status === 'done');
    const released = rows.filter((r) => r.status === 'created');
    expect(done.length).to.be.within(1, 2);
    expect(done.length + released.length).to.equal(5);
    // Either check may see the time run out first (a loaded machine runs the task slower): the next task does
    // not start, or the worker stops itself just before the deadline. Both release without counting an attempt.
    const outOfTime = [
      'released unstarted: the function had too little time left to start it',
      'released unstarted: the function was about to time out',
    ];
    for (const r of released) {
      expect(r.attempts).to.equal(0);
      expect(outOfTime).to.include(r.lastError);
    }
    expect((await journal('q-timeout')).filter((e) => e.phase === 'started').map((e) => e.taskId)).to.deep.equal(done.map((r) => r.id));
    runtime.unregister('worker-timeout');
  });

  it('invokes a recorded row again at the function it was dispatched to, not at a changed spec.function', async function () {
    this.timeout(30_000);
    register('worker-before');
    register('worker-after');
    const before = poolFor('worker-before', { queue: 'q-moved-fn', tasksPerInvocation: 1, maxConcurrency: 1 });
    await enqueueTasks(t.db, { queue: 'q-moved-fn', payloads: [{}] });
    // A row recorded for worker-before whose Invoke never happened (the controller died after the commit).
    const [id = 0] = await insertInvocations(t.db, { template: templateFor(before), count: 1, invokeAfterMs: 0 });
    const after = { ...before, spec: { ...before.spec, function: { name: 'worker-after' } } };
    const result = await pass(after);
    expect(result.plan.reinvoke).to.deep.equal([id]);
    expect(result.dispatched).to.deep.equal([]);
    await runtime.idle(20_000);
    expect(runtime.stats('worker-before').accepted).to.equal(1);
    expect(runtime.stats('worker-after').accepted).to.equal(0);
    expect(await getInvocation(t.db, id)).to.include({ status: 'succeeded', functionName: 'worker-before', tasksStarted: 1 });
    runtime.unregister('worker-before');
    runtime.unregister('worker-after');
  });

  it('two workers never lease the same task: 30 invocations racing for 60 tasks', async function () {
    this.timeout(90_000);
    const pool = poolFor('worker-race', { queue: 'q-race', tasksPerInvocation: 3, maxConcurrency: 30 });
    register('worker-race');
    const ids = await enqueueTasks(t.db, { queue: 'q-race', payloads: Array.from({ length: 60 }, () => ({ ms: 50 })) });
    const invs = await insertInvocations(t.db, {
      template: {
        pool: pool.meta,
        queue: 'q-race',
        functionName: 'worker-race',
        tasksPerInvocation: 3,
        maxTaskAttempts: 3,
        heartbeatTimeoutSeconds: 30,
        retryInitialDelayMs: 0,
        retryMaxDelayMs: 0,
      },
      count: 30,
      invokeAfterMs: 0,
    });
    const results = await invoker.invokeBatch({ name: 'worker-race' }, invs);
    expect(results.filter((r) => !r.accepted)).to.deep.equal([]);
    await runtime.idle(80_000);

    const rows = await tasks('q-race');
    expect(rows.map((r) => [r.status, r.attempts])).to.deep.equal(ids.map(() => ['done', 1]));
    const started = (await journal('q-race')).filter((e) => e.phase === 'started');
    const startedByTask = countBy(started, (e) => e.taskId);
    expect(
      ids.filter((id) => startedByTask.get(id) !== 1),
      'tasks not executed exactly once',
    ).to.deep.equal([]);
    const ranBy = new Map(started.map((e) => [e.taskId, e.invocationId]));
    expect(rows.filter((r) => ranBy.get(r.id) !== r.invocationId)).to.deep.equal([]);
    const after = await invocations(pool);
    expect(after.map((i) => i.status)).to.deep.equal(invs.map(() => 'succeeded'));
    expect(after.reduce((sum, i) => sum + i.tasksLeased, 0)).to.equal(60);
    expect(after.filter((i) => i.tasksLeased > 3)).to.deep.equal([]);
    const leasedBy = countBy(rows, (r) => r.invocationId ?? 0);
    expect(after.filter((i) => (leasedBy.get(i.id) ?? 0) !== i.tasksLeased)).to.deep.equal([]);
    expect(runtime.stats('worker-race').maxConcurrent, 'executions seen at once').to.be.greaterThan(1);
    runtime.unregister('worker-race');
  });
});
