// The worker SDK in AWS's own Lambda runtime, run as AWS's public Node.js base images run it outside
// Lambda: aws-lambda-rie (the Runtime Interface Emulator, built from Go modules) starts aws-lambda-ric (the
// Node.js runtime interface client from npm, with its native Runtime API client), which loads the worker
// bundled by esbuild into one file. The worker talks to a real Postgres. Nothing here is our own Lambda
// code: the event, the context (request id, function ARN, getRemainingTimeInMillis) and the function
// timeout are AWS's. See docs/rie.md. Needs test/env/rie/build-rie.sh and install-ric.sh run first; when
// either is missing every test here fails, saying which and how to get it.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { insertInvocations, markInvoked, type InvocationTemplate } from '../../src/store/invocation-store.ts';
import { enqueueTasks } from '../../src/store/task-store.ts';
import { freshDatabase, type TestDatabase } from '../support/postgres.ts';
import { MIN_TIME_TO_START_TASK_MS } from './fixtures/rie-worker.ts';
import { bundleFunction, findRieTools, RieFunction, type RieTools } from './rie.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const ENTRY = path.join(here, 'fixtures/rie-worker.ts');
const FUNCTION_NAME = 'ltp-rie-worker';
const LONG_TIMEOUT_S = 30;
const SHORT_TIMEOUT_S = 3;

interface InvocationView {
  status: string;
  requestId: string | null;
  deliveries: number;
  tasksLeased: number;
  tasksStarted: number;
  readyAt: Date | null;
  runningAt: Date | null;
  finishedAt: Date | null;
  errorCode: string | null;
  errorMessage: string | null;
}

interface TaskView {
  id: number;
  status: string;
  attempts: number;
  invocationId: number | null;
  result: { doubled: number; remainingMs: number } | null;
}

describe('the worker SDK under AWS Lambda RIE and aws-lambda-ric (real Postgres)', function () {
  this.timeout(120_000);
  let tools: RieTools;
  let t: TestDatabase;
  let taskRoot: string;
  const functions: RieFunction[] = [];

  const template = (queue: string, overrides: Partial<InvocationTemplate> = {}): InvocationTemplate => ({
    pool: { namespace: 'default', name: queue, uid: `uid-${queue}` },
    queue,
    functionName: FUNCTION_NAME,
    tasksPerInvocation: 3,
    maxTaskAttempts: 3,
    heartbeatTimeoutSeconds: 60,
    retryInitialDelayMs: 0,
    retryMaxDelayMs: 0,
    ...overrides,
  });

  /** One invocation row, dispatched as the controller does it: inserted, then marked invoked (pending). */
  async function dispatch(queue: string, overrides: Partial<InvocationTemplate> = {}): Promise<number> {
    const [id] = await insertInvocations(t.db, { template: template(queue, overrides), count: 1, invokeAfterMs: 0 });
    if (id === undefined) throw new Error('no invocation row inserted');
    await markInvoked(t.db, [{ id }]);
    return id;
  }

  async function invocation(id: number): Promise<InvocationView> {
    const result = await t.db.query<InvocationView>(
      `SELECT status::text, request_id AS "requestId", deliveries, tasks_leased AS "tasksLeased", tasks_started AS "tasksStarted",
              ready_at AS "readyAt", running_at AS "runningAt", finished_at AS "finishedAt",
              error_code AS "errorCode", error_message AS "errorMessage"
         FROM ltp.invocations WHERE id = $1`,
      [id],
    );
    const row = result.rows[0];
    if (!row) throw new Error(`no invocation ${id}`);
    return row;
  }

  async function tasks(queue: string): Promise<TaskView[]> {
    const result = await t.db.query<TaskView>(
      `SELECT id, status::text, attempts, invocation_id AS "invocationId", result FROM ltp.tasks WHERE queue = $1 ORDER BY id`,
      [queue],
    );
    return result.rows;
  }

  async function startFunction(timeoutSeconds: number): Promise<RieFunction> {
    const fn = await RieFunction.start({
      tools,
      taskRoot,
      handler: 'index.handler',
      functionName: FUNCTION_NAME,
      timeoutSeconds,
      environment: { DATABASE_URL: t.url },
    });
    functions.push(fn);
    return fn;
  }

  /** On a failed assertion, what the emulator and the runtime printed. */
  function withLog<T>(fn: RieFunction, check: () => T): T {
    try {
      return check();
    } catch (error) {
      if (error instanceof Error) error.message += `\n--- aws-lambda-rie output ---\n${fn.log()}`;
      throw error;
    }
  }

  before(async function () {
    tools = findRieTools(); // throws, saying what is missing: this suite never skips
    taskRoot = mkdtempSync(path.join(os.tmpdir(), 'ltp-rie-task-'));
    await bundleFunction(ENTRY, taskRoot);
    t = await freshDatabase('rie');
  });

  after(async () => {
    await Promise.all(functions.splice(0).map((fn) => fn.stop()));
    await t?.close();
    if (taskRoot) rmSync(taskRoot, { recursive: true, force: true });
  });

  describe(`with a ${LONG_TIMEOUT_S} s function timeout`, () => {
    let fn: RieFunction;
    before(async () => {
      fn = await startFunction(LONG_TIMEOUT_S);
    });

    it('claims its invocation (ready, running, succeeded), leases a batch, runs each task and records its result', async () => {
      await enqueueTasks(t.db, { queue: 'rie-basic', payloads: [{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }] });
      const id = await dispatch('rie-basic');
      expect((await invocation(id)).status).to.equal('pending');

      const out = await fn.invoke({ invocationId: String(id) });
      withLog(fn, () => {
        expect(out.status).to.equal(200);
        expect(out.body).to.include({ invocationId: id, outcome: 'succeeded', leased: 3, started: 3, done: 3, failed: 0, released: 0 });
      });

      const row = await invocation(id);
      expect(row).to.include({ status: 'succeeded', deliveries: 1, tasksLeased: 3, tasksStarted: 3, errorCode: null });
      // The runtime's context carried the emulator's request id to the claim.
      expect(row.requestId).to.equal(out.requestId);
      // It went through every state: claimed (ready), leased (running), then finished.
      expect(row.readyAt).to.be.instanceOf(Date);
      expect(row.runningAt).to.be.instanceOf(Date);
      expect(row.finishedAt).to.be.instanceOf(Date);
      expect(row.readyAt!.getTime()).to.be.at.most(row.runningAt!.getTime());
      expect(row.runningAt!.getTime()).to.be.at.most(row.finishedAt!.getTime());

      const rows = await tasks('rie-basic');
      expect(rows.map((r) => [r.status, r.attempts, r.invocationId, r.result?.doubled ?? null])).to.deep.equal([
        ['done', 1, id, 2],
        ['done', 1, id, 4],
        ['done', 1, id, 6],
        ['created', 0, null, null],
      ]);
      // ctx.remainingTimeMs() is the runtime's getRemainingTimeInMillis: finite, below the function timeout,
      // and above the worker's minimum time to start a task (or the task would not have started).
      for (const r of rows.slice(0, 3)) {
        expect(r.result?.remainingMs).to.be.a('number');
        expect(r.result?.remainingMs)
          .to.be.above(MIN_TIME_TO_START_TASK_MS)
          .and.at.most(LONG_TIMEOUT_S * 1000);
      }
    });

    it('a second delivery of a finished invocation to the warm function touches nothing', async () => {
      await enqueueTasks(t.db, { queue: 'rie-dup', payloads: [{ n: 10 }, { n: 20 }] });
      const id = await dispatch('rie-dup');
      const first = await fn.invoke({ invocationId: String(id) });
      withLog(fn, () => expect(first.body).to.include({ outcome: 'succeeded', done: 2 }));
      const before = await tasks('rie-dup');

      const second = await fn.invoke({ invocationId: String(id) });
      withLog(fn, () => expect(second.body).to.include({ outcome: 'skipped', reason: 'succeeded', leased: 0, started: 0 }));
      expect(await tasks('rie-dup')).to.deep.equal(before);
      expect(await invocation(id)).to.include({ status: 'succeeded', deliveries: 2, requestId: first.requestId });
    });

    it("refuses an invocation dispatched to another function (checked against the runtime's function name) and touches nothing", async () => {
      await enqueueTasks(t.db, { queue: 'rie-other', payloads: [{ n: 1 }] });
      const id = await dispatch('rie-other', { functionName: 'some-other-function' });
      const out = await fn.invoke({ invocationId: String(id) });
      withLog(fn, () => expect(out.body).to.include({ outcome: 'skipped', reason: 'WrongFunction', leased: 0 }));
      expect(await invocation(id)).to.include({ status: 'pending', deliveries: 0, readyAt: null });
      expect((await tasks('rie-other')).map((r) => [r.status, r.attempts, r.invocationId])).to.deep.equal([['created', 0, null]]);
    });

    it("answers a malformed event with the SDK's error, reported through the Runtime API", async () => {
      const out = await fn.invoke({ hello: 'world' });
      withLog(fn, () => {
        expect(out.body).to.include({ errorType: 'WorkerEventError' });
        expect((out.body as { errorMessage: string }).errorMessage).to.match(/malformed worker event/);
      });
    });
  });

  describe(`with a ${SHORT_TIMEOUT_S} s function timeout, shorter than minTimeToStartTaskMs (${MIN_TIME_TO_START_TASK_MS} ms)`, () => {
    let fn: RieFunction;
    before(async () => {
      fn = await startFunction(SHORT_TIMEOUT_S);
    });

    it('ends the invocation failed with NoTimeToStart, says how much time it had, and leases no task', async () => {
      await enqueueTasks(t.db, { queue: 'rie-short', payloads: [{ n: 1 }, { n: 2 }, { n: 3 }] });
      const id = await dispatch('rie-short');
      const out = await fn.invoke({ invocationId: String(id) });
      withLog(fn, () => {
        expect(out.status).to.equal(200);
        expect(out.body).to.include({ invocationId: id, outcome: 'failed', reason: 'NoTimeToStart', leased: 0, started: 0 });
      });

      const row = await invocation(id);
      expect(row).to.include({ status: 'failed', errorCode: 'NoTimeToStart', tasksLeased: 0, tasksStarted: 0, runningAt: null });
      expect(row.readyAt).to.be.instanceOf(Date);
      // The message quotes the time the runtime said was left: less than the 3 s timeout, more than nothing.
      const left = Number(/(\d+) ms of the function's time was left/.exec(row.errorMessage ?? '')?.[1]);
      expect(left, row.errorMessage ?? '')
        .to.be.above(0)
        .and.at.most(SHORT_TIMEOUT_S * 1000);
      expect(row.errorMessage).to.contain(`${MIN_TIME_TO_START_TASK_MS} ms`);

      expect((await tasks('rie-short')).map((r) => [r.status, r.attempts, r.invocationId])).to.deep.equal([
        ['created', 0, null],
        ['created', 0, null],
        ['created', 0, null],
      ]);
    });
  });
});
