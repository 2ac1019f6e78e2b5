// Each failure path of issue 7 on the real stack (kube-apiserver, Postgres, the local Lambda runtime
// running real worker processes behind the AWS SDK, the controller), judged from outside: the workers'
// own journal and the rows' own timestamps.
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import pg from 'pg';
import { startTcpProxy, type TcpProxy } from '../../dev/src/tcp-proxy.ts';
import { countTasksByState, enqueueTasks } from '../../src/store/task-store.ts';
import { executions, overlappingExecutions, peakLiveByPool, readJournal } from '../support/journal.ts';
import { kubectl } from '../support/kube.ts';
import { applyPool, condition, eventually, getPool, startSystem, type TestSystem } from '../support/system.ts';

const NS = `e2e-faults-${process.pid}`;
const here = path.dirname(fileURLToPath(import.meta.url));
const FILE_WORKER = path.join(here, '..', 'fixtures', 'functions', 'file-journal-worker.ts');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('faults end to end (real kube-apiserver, Postgres and Lambda runtime)', function () {
  this.timeout(240_000);
  let sys: TestSystem;
  let dir: string;

  before(async function () {
    this.timeout(180_000);
    dir = await mkdtemp(path.join(os.tmpdir(), 'ltp-faults-'));
    // A long resync: every wake-up these tests rely on must come from a deadline or a notification.
    sys = await startSystem({ namespaces: [NS], controllerOverrides: { resyncMs: 120_000 } });
  });
  after(async function () {
    this.timeout(60_000);
    await sys?.stop();
  });

  /** Registers a function running the journaling worker; returns its journal file. */
  function journalingFunction(
    name: string,
    settings: {
      databaseUrl?: string;
      timeoutSeconds?: number;
      minTimeToStartMs?: number;
      startDelayMs?: number | { min: number; max: number };
    } = {},
  ): string {
    const journal = path.join(dir, `${name}.jsonl`);
    sys.lambda.register({
      name,
      handler: FILE_WORKER,
      timeoutSeconds: settings.timeoutSeconds ?? 60,
      environment: {
        DATABASE_URL: settings.databaseUrl ?? sys.database.url,
        JOURNAL_FILE: journal,
        MIN_TIME_TO_START_TASK_MS: String(settings.minTimeToStartMs ?? 1_000),
        LTP_LOG_LEVEL: 'warn',
      },
      async: { startDelayMs: settings.startDelayMs ?? { min: 200, max: 600 }, retryDelaysMs: [1_000, 2_000] },
    });
    return journal;
  }

  const poolUid = async (name: string) => (await kubectl(['get', 'ltp', name, '-n', NS, '-o', 'jsonpath={.metadata.uid}'])).stdout.trim();
  const rowsOf = async (queue: string) =>
    (
      await sys.database.db.query<{
        id: number;
        status: string;
        error_code: string | null;
        created_at: Date;
        finished_at: Date | null;
        tasks_started: number;
      }>(`SELECT id, status, error_code, created_at, finished_at, tasks_started FROM ltp.invocations WHERE queue = $1 ORDER BY id`, [queue])
    ).rows;

  it('counts a row a late worker claimed while the sweep was orphaning it as live: the cap holds', async () => {
    // The worker starts 11 s after the invoke, the start timeout is 10 s: the sweep means to orphan it.
    journalingFunction('race-worker', { startDelayMs: 11_000 });
    await applyPool({
      namespace: NS,
      name: 'race',
      functionName: 'race-worker',
      queue: 'race',
      maxConcurrency: 1,
      tasksPerInvocation: 1,
      extraSpec: { startTimeoutSeconds: 10 },
    });
    await eventually('the pool to be Ready', async () => condition(await getPool(NS, 'race'), 'Ready')?.status === 'True');
    // Test instrumentation in the database: the controller's invocation UPDATEs wait while the test holds lock 4242.
    await sys.database.db.query(`CREATE OR REPLACE FUNCTION public.hold_controller_updates() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF current_setting('application_name') = 'lambda-task-pool-controller' THEN
          PERFORM pg_advisory_lock(4242);
          PERFORM pg_advisory_unlock(4242);
        END IF;
        RETURN NULL;
      END $$`);
    await sys.database.db.query(`CREATE TRIGGER hold_controller_updates BEFORE UPDATE ON ltp.invocations
      FOR EACH STATEMENT EXECUTE FUNCTION public.hold_controller_updates()`);
    const holder = new pg.Client({ connectionString: sys.database.url });
    await holder.connect();
    try {
      await enqueueTasks(sys.database.db, { queue: 'race', payloads: [{ ms: 3_000 }] });
      const [first] = await eventually(
        'the first invocation to be pending',
        async () => {
          const rows = await rowsOf('race');
          return rows.length === 1 && rows[0]?.status === 'pending' ? rows : undefined;
        },
        20_000,
      );
      await holder.query('SELECT pg_advisory_lock(4242)');
      // The controller's pass at the start deadline blocks in its orphaning UPDATE; the worker claims meanwhile.
      await eventually(
        'the controller to wait in its orphaning UPDATE',
        async () => {
          const waiting = await sys.database.db.query(
            `SELECT 1 FROM pg_stat_activity WHERE application_name = 'lambda-task-pool-controller' AND wait_event = 'advisory'
              AND query LIKE 'UPDATE ltp.invocations SET status = $3%'`,
          );
          return waiting.rows.length > 0;
        },
        20_000,
        100,
      );
      await eventually('the late worker to claim the row', async () => (await rowsOf('race'))[0]?.status === 'running', 20_000, 100);
      await holder.query('SELECT pg_advisory_unlock(4242)');
      await eventually('the task to be done', async () => (await countTasksByState(sys.database.db, 'race')).done === 1, 30_000);
      await sleep(1_000);
      const rows = await rowsOf('race');
      expect(rows.map((r) => [r.id, r.status])).to.deep.equal([[first?.id, 'succeeded']]);
      expect((await peakLiveByPool(sys.database.db)).get(`${NS}/race`)).to.equal(1);
    } finally {
      await sys.database.db.query('DROP TRIGGER hold_controller_updates ON ltp.invocations');
      await holder.end();
    }
  });

  describe('a worker cut off from Postgres alone', () => {
    let proxy: TcpProxy;
    before(async () => {
      const url = new URL(sys.database.url);
      proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port) });
    });
    after(async () => {
      proxy.heal('reset');
      await proxy.close();
    });

    it('stops before the controller orphans it, and its tasks finish elsewhere, never run twice at once', async () => {
      const url = new URL(sys.database.url);
      url.host = `${proxy.host}:${proxy.port}`;
      const journal = journalingFunction('cut-worker', { databaseUrl: url.toString() });
      await applyPool({
        namespace: NS,
        name: 'cut',
        functionName: 'cut-worker',
        queue: 'cut',
        maxConcurrency: 2,
        tasksPerInvocation: 1,
        extraSpec: { heartbeatTimeoutSeconds: 6, retry: { initialDelaySeconds: 0, maxDelaySeconds: 0 } },
      });
      await eventually('the pool to be Ready', async () => condition(await getPool(NS, 'cut'), 'Ready')?.status === 'True');
      await enqueueTasks(sys.database.db, { queue: 'cut', payloads: [{ ms: 12_000 }, { ms: 12_000 }] });
      await eventually(
        'both tasks to start',
        async () => (await readJournal(journal)).filter((l) => l.phase === 'start').length === 2,
        30_000,
        100,
      );
      const cutAt = Date.now();
      proxy.partition();
      // The controller, which still reaches Postgres, orphans both after the heartbeat timeout.
      await eventually(
        'the cut-off invocations to be orphaned',
        async () => (await rowsOf('cut')).filter((r) => r.error_code === 'HeartbeatLost').length === 2,
        30_000,
      );
      const orphanedAt = Date.now();
      proxy.heal('resume');
      await eventually(
        'both tasks done by later invocations',
        async () => (await countTasksByState(sys.database.db, 'cut')).done === 2,
        60_000,
      );

      const runs = executions(
        await readJournal(journal),
        sys.lambda.events('cut-worker').flatMap((e) => e.deliveries),
      );
      expect(overlappingExecutions(runs), 'executions of one task overlapping in time').to.deep.equal([]);
      const cut = runs.filter((r) => r.start < cutAt);
      expect(cut.map((r) => r.outcome)).to.deep.equal(['aborted', 'aborted']);
      const rows = await rowsOf('cut');
      for (const run of cut) {
        const row = rows.find((r) => r.id === run.invocation);
        // Fencing: each cut-off handler stopped before the controller gave its invocation up.
        expect(row?.status).to.equal('orphaned');
        expect(run.end).to.be.below(row?.finished_at?.getTime() ?? 0);
      }
      expect(orphanedAt - cutAt).to.be.at.least(5_000);
      expect((await countTasksByState(sys.database.db, 'cut')).failed).to.equal(0);
    });
  });

  it('retries a completion write the database dropped, and the task ends done after one execution', async () => {
    const journal = journalingFunction('complete-worker');
    await sys.database.db.query(`CREATE SEQUENCE public.e2e_complete_failures`);
    await sys.database.db.query(`CREATE FUNCTION public.e2e_drop_first_completion() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.status = 'done' AND NEW.queue = 'complete' AND nextval('public.e2e_complete_failures') = 1 THEN
          PERFORM pg_terminate_backend(pg_backend_pid());
        END IF;
        RETURN NEW;
      END $$`);
    await sys.database.db.query(
      `CREATE TRIGGER e2e_drop_first_completion BEFORE UPDATE ON ltp.tasks FOR EACH ROW EXECUTE FUNCTION public.e2e_drop_first_completion()`,
    );
    try {
      await applyPool({
        namespace: NS,
        name: 'complete',
        functionName: 'complete-worker',
        queue: 'complete',
        maxConcurrency: 1,
        tasksPerInvocation: 1,
      });
      await enqueueTasks(sys.database.db, { queue: 'complete', payloads: [{ ms: 200 }] });
      await eventually('the task to be done', async () => (await countTasksByState(sys.database.db, 'complete')).done === 1, 30_000);
      const task = (await sys.database.db.query(`SELECT status, attempts, last_error FROM ltp.tasks WHERE queue = 'complete'`)).rows[0];
      expect(task).to.deep.equal({ status: 'done', attempts: 1, last_error: null });
      const runs = executions(await readJournal(journal), []);
      expect(runs.map((r) => r.outcome)).to.deep.equal(['ok']);
      expect((await sys.database.db.query(`SELECT last_value::int AS n FROM public.e2e_complete_failures`)).rows[0].n).to.be.at.least(2);
    } finally {
      await sys.database.db.query(`DROP TRIGGER e2e_drop_first_completion ON ltp.tasks`);
    }
  });

  it('does not loop when the function times out before a task can start: Degraded, and a handful of invocations in 60 s', async function () {
    this.timeout(120_000);
    journalingFunction('short-worker', { timeoutSeconds: 3, minTimeToStartMs: 60_000 });
    await applyPool({
      namespace: NS,
      name: 'short',
      functionName: 'short-worker',
      queue: 'short',
      maxConcurrency: 4,
      tasksPerInvocation: 3,
    });
    await eventually('the pool to be Ready', async () => condition(await getPool(NS, 'short'), 'Ready')?.status === 'True');
    await enqueueTasks(sys.database.db, { queue: 'short', payloads: Array.from({ length: 10 }, () => ({ ms: 100 })) });
    const started = Date.now();
    const degraded = await eventually(
      'Degraded=True FunctionTimeoutTooShort',
      async () => {
        const c = condition(await getPool(NS, 'short'), 'Degraded');
        return c?.status === 'True' && c.reason === 'FunctionTimeoutTooShort' ? c : undefined;
      },
      30_000,
    );
    expect(degraded.message)
      .to.include('minTimeToStartTaskMs')
      .and.include('60000 ms')
      .and.match(/started no task/);
    await sleep(Math.max(0, 60_000 - (Date.now() - started)));
    const rows = await rowsOf('short');
    // 4 at first, then the pause (15 s, doubling) and one probe at a time: about 6. The old loop made thousands.
    expect(rows.length, `invocations in 60 s: ${rows.length}`).to.be.within(4, 9);
    expect(rows.every((r) => r.tasks_started === 0)).to.equal(true);
    expect(rows.filter((r) => r.error_code === 'NoTimeToStart').length).to.be.at.least(rows.length - 1);
    expect(await countTasksByState(sys.database.db, 'short')).to.deep.equal({ created: 10, leased: 0, done: 0, failed: 0, cancelled: 0 });
    const attempts = await sys.database.db.query(`SELECT max(attempts)::int AS n FROM ltp.tasks WHERE queue = 'short'`);
    expect(attempts.rows[0].n).to.equal(0);
    await kubectl(['patch', 'ltp', 'short', '-n', NS, '--type=merge', '-p', '{"spec":{"suspend":true}}']);
  });

  it('runs a failed task again only after its retry delay, woken by the due time rather than a poll', async () => {
    const journal = journalingFunction('retry-worker');
    await applyPool({
      namespace: NS,
      name: 'retry',
      functionName: 'retry-worker',
      queue: 'retry',
      maxConcurrency: 2,
      tasksPerInvocation: 1,
      extraSpec: { retry: { initialDelaySeconds: 6, maxDelaySeconds: 60 } },
    });
    await eventually('the pool to be Ready', async () => condition(await getPool(NS, 'retry'), 'Ready')?.status === 'True');
    await enqueueTasks(sys.database.db, { queue: 'retry', payloads: [{ ms: 100, failAttempts: 1 }] });
    await eventually('the task to be done', async () => (await countTasksByState(sys.database.db, 'retry')).done === 1, 40_000);
    const runs = executions(await readJournal(journal), []);
    expect(runs.map((r) => [r.attempt, r.outcome])).to.deep.equal([
      [1, 'threw'],
      [2, 'ok'],
    ]);
    const [first, second] = runs;
    const gap = (second?.start ?? 0) - (first?.end ?? 0);
    // The first retry waits between 3 and 6 s (equal jitter), plus a dispatch and a 0.2-0.6 s start.
    expect(gap, `gap between attempts: ${gap} ms`).to.be.within(3_000, 9_000);
  });

  it('refuses a change of spec.queue with a clear message', async () => {
    await applyPool({ namespace: NS, name: 'fixed', queue: 'fixed-queue', maxConcurrency: 1 });
    const patched = await kubectl(['patch', 'ltp', 'fixed', '-n', NS, '--type=merge', '-p', '{"spec":{"queue":"other-queue"}}']);
    expect(patched.code).to.not.equal(0);
    expect(patched.stderr).to.include('spec.queue is immutable');
    expect((await kubectl(['get', 'ltp', 'fixed', '-n', NS, '-o', 'jsonpath={.spec.queue}'])).stdout).to.equal('fixed-queue');
  });

  it('ends the invocations of a pool whose finalizer was removed by hand, and gives its tasks back', async () => {
    const journal = journalingFunction('gone-worker');
    await applyPool({
      namespace: NS,
      name: 'gone',
      functionName: 'gone-worker',
      queue: 'gone',
      maxConcurrency: 1,
      tasksPerInvocation: 2,
      extraSpec: { heartbeatTimeoutSeconds: 5 },
    });
    await eventually('the pool to be Ready', async () => condition(await getPool(NS, 'gone'), 'Ready')?.status === 'True');
    const uid = await poolUid('gone');
    await enqueueTasks(sys.database.db, { queue: 'gone', payloads: [{ ms: 60_000 }, { ms: 100 }] });
    await eventually('the task to start', async () => (await readJournal(journal)).some((l) => l.phase === 'start'), 30_000, 100);

    // The controller is down while someone removes the finalizer and deletes the pool.
    await sys.controller?.stop();
    expect((await kubectl(['patch', 'ltp', 'gone', '-n', NS, '--type=merge', '-p', '{"metadata":{"finalizers":null}}'])).code).to.equal(0);
    expect((await kubectl(['delete', 'ltp', 'gone', '-n', NS])).code).to.equal(0);
    const { startController } = await import('../../src/controller/controller.ts');
    sys.controller = await startController({ ...sys.controllerConfig, metricsPort: 0 });

    const ended = await eventually(
      "the orphaned pool's invocation to be terminated",
      async () => {
        const row = (await sys.database.db.query(`SELECT status, error_code, finished_at FROM ltp.invocations WHERE pool_uid = $1`, [uid]))
          .rows[0];
        return row?.status === 'terminated' ? row : undefined;
      },
      30_000,
    );
    expect(ended.error_code).to.equal('PoolGone');
    // Its worker learns at its next heartbeat and stops; no task stays leased under the ended invocation.
    await eventually('its tasks to be given back', async () => (await countTasksByState(sys.database.db, 'gone')).leased === 0, 30_000);
    const runs = executions(
      await readJournal(journal),
      sys.lambda.events('gone-worker').flatMap((e) => e.deliveries),
    );
    expect(runs.map((r) => r.outcome)).to.deep.equal(['aborted']);
    expect(await countTasksByState(sys.database.db, 'gone')).to.deep.equal({ created: 2, leased: 0, done: 0, failed: 0, cancelled: 0 });
  });
});
