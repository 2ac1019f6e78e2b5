// Every CLI command against the real stack (kube-apiserver + etcd, Postgres, the local Lambda runtime and the
// controller), run as a user runs it: its own process, its output parsed. A function fails the first time it
// tries a piece of work and succeeds after; `retry` gets that work done with a new task.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import type { PoolSummary } from '../../src/cli/pool-summary.ts';
import type { CancelOutcome, RetryOutcome } from '../../src/cli/task-outcomes.ts';
import type { TaskRow } from '../../src/store/task-store.ts';
import { cliJson, runCli } from '../support/cli.ts';
import { startControllerProcess } from '../support/controller-process.ts';
import { kubectl, sharedControlPlane } from '../support/kube.ts';
import { applyPool, condition, eventually, getPool, startSystem, type TestSystem } from '../support/system.ts';

const NS = `e2e-cli-${process.pid}`;
const FAILS_ONCE = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'functions', 'fails-once-worker.ts');

interface TraceJson {
  id: number;
  decidedAt: string;
  inputs: { backlog: number; headroom: number; want: number };
  outcome: { dispatched: number };
  reason: string;
  invocations: Array<{ id: number; status: string; tasksStarted: number }>;
}

type TaskJson = Omit<TaskRow, 'createdAt' | 'runAfter' | 'leasedAt' | 'startedAt' | 'finishedAt'> & {
  createdAt: string;
  finishedAt: string | null;
  updatedAt?: string;
  retriedBy?: number | null;
};

describe('the CLI on the real stack', function () {
  this.timeout(300_000);
  let sys: TestSystem;
  let env: Record<string, string>;

  before(async function () {
    this.timeout(180_000);
    sys = await startSystem({ namespaces: [NS] });
    await sys.database.db.query(
      'CREATE TABLE public.tries (key text NOT NULL, task_id bigint NOT NULL, at timestamptz NOT NULL DEFAULT now())',
    );
    sys.lambda.register({
      name: 'flaky-worker',
      handler: FAILS_ONCE,
      timeoutSeconds: 60,
      environment: { DATABASE_URL: sys.database.url, LTP_LOG_LEVEL: 'warn' },
      async: { startDelayMs: { min: 100, max: 500 }, maximumRetryAttempts: 0 },
    });
    const cp = await sharedControlPlane();
    env = { KUBECONFIG: cp.kubeconfigPath, DATABASE_URL: sys.database.url };
    // One attempt per task: the first try of a key fails the task for good, so only a re-run can do the work.
    await applyPool({
      namespace: NS,
      name: 'flaky',
      queue: 'cli-flaky',
      functionName: 'flaky-worker',
      maxConcurrency: 3,
      tasksPerInvocation: 1,
      extraSpec: { maxTaskAttempts: 1 },
    });
    // Suspended: its tasks wait in created, for cancel.
    await applyPool({ namespace: NS, name: 'held', queue: 'cli-held', suspend: true });
    await eventually('both pools to be reconciled', async () => {
      const [flaky, held] = await Promise.all([getPool(NS, 'flaky'), getPool(NS, 'held')]);
      return condition(flaky, 'Ready')?.status === 'True' && condition(held, 'Ready')?.status === 'True';
    });
  });
  after(async function () {
    this.timeout(60_000);
    await sys?.stop();
  });

  const enqueue = async (queue: string, payload: unknown, count = 1) =>
    (
      await cliJson<{ queue: string; count: number; ids: number[] }>(
        ['enqueue', '--queue', queue, '--count', String(count), '--payload', JSON.stringify(payload)],
        env,
      )
    ).ids;
  const task = (id: number) => cliJson<TaskJson>(['tasks', String(id)], env);

  it('status lists the pools with their counts and conditions, as a table and as JSON', async () => {
    const pools = await cliJson<PoolSummary[]>(['status', '-n', NS], env);
    expect(pools.map((p) => [p.name, p.queue, p.ready, p.suspend])).to.deep.equal([
      ['flaky', 'cli-flaky', 'True', false],
      ['held', 'cli-held', 'True', true],
    ]);
    const flaky = pools[0];
    expect(flaky?.function).to.equal('flaky-worker');
    expect(flaky?.tasks).to.include.keys('created', 'leased', 'done', 'failed', 'cancelled');
    expect(flaky?.conditions.map((c) => c.type)).to.include.members(['Ready', 'Active', 'Degraded', 'Suspended']);

    const table = await runCli(['status', '-n', NS], env);
    expect(table.code, table.stderr).to.equal(0);
    const [header, ...rows] = table.stdout.trim().split('\n');
    expect(header).to.match(/^NAME\s+QUEUE\s+READY\s+REASON\s+BACKLOG\s+QUEUED\s+RUNNING\s+DONE\s+FAILED\s+CANCELLED\s+SUSPENDED\s+AGE$/);
    expect(rows.map((r) => r.split(/\s+/).slice(0, 4))).to.deep.equal([
      ['flaky', 'cli-flaky', 'True', 'Reconciled'],
      ['held', 'cli-held', 'True', 'Reconciled'],
    ]);

    const one = await cliJson<PoolSummary>(['status', '-n', NS, 'held'], env);
    expect(one).to.include({ name: 'held', suspend: true });
    const detail = await runCli(['status', '-n', NS, 'held'], env);
    expect(detail.stdout)
      .to.include('Pool:')
      .and.include(`${NS}/held`)
      .and.match(/Suspended\s+True\s+SuspendedBySpec/);

    const all = await cliJson<PoolSummary[]>(['status', '-A'], env);
    expect(all.filter((p) => p.namespace === NS)).to.have.length(2);

    const missing = await runCli(['status', '-n', NS, 'nope'], env);
    expect(missing.code).to.equal(1);
    expect(missing.stderr).to.include(`no LambdaTaskPool ${NS}/nope`);
    const unreachable = await runCli(['status', '-n', NS], { KUBECONFIG: '/nonexistent/kubeconfig' });
    expect(unreachable.code).to.equal(2);
    expect(unreachable.stderr).to.include('KUBECONFIG names no kubeconfig that exists (/nonexistent/kubeconfig)');
    // As kubectl: a KUBECONFIG list whose first file is not made yet still reads the next one.
    const listed = await cliJson<PoolSummary[]>(['status', '-n', NS], { ...env, KUBECONFIG: `/nonexistent/kubeconfig:${env.KUBECONFIG}` });
    expect(listed.map((p) => p.name)).to.deep.equal(['flaky', 'held']);
  });

  it('retry gets the work of a failed task done with a new task, and leaves the failed one as it was', async () => {
    const [id = 0] = await enqueue('cli-flaky', { key: 'invoice-1' });
    const failed = await eventually('the task to fail on its first try', async () => {
      const t = await task(id);
      return t.status === 'failed' ? t : undefined;
    });
    expect(failed).to.include({ attempts: 1, maxAttempts: null, retryOf: null, retriedBy: null });
    expect(failed.lastError).to.include('the service it calls is down');

    const listed = await cliJson<TaskJson[]>(['tasks', '--queue', 'cli-flaky', '--status', 'failed'], env);
    expect(listed.map((t) => t.id)).to.include(id);
    const table = await runCli(['tasks', '--queue', 'cli-flaky', '--status', 'failed'], env);
    expect(table.stdout).to.match(new RegExp(`^${id}\\s+failed\\s+1/pool\\s`, 'm'));
    const before = await sys.database.db.query('SELECT to_jsonb(t) AS row FROM ltp.tasks t WHERE id = $1', [id]);

    const dry = await cliJson<RetryOutcome[]>(['retry', String(id), '--dry-run'], env);
    expect(dry).to.deep.equal([{ id, outcome: 'would-retry' }]);
    const rows = await sys.database.db.query('SELECT id FROM ltp.tasks WHERE retry_of = $1', [id]);
    expect(rows.rowCount, 'a dry run adds no task').to.equal(0);

    const [outcome] = await cliJson<RetryOutcome[]>(['retry', String(id)], env);
    if (outcome?.outcome !== 'retried') throw new Error(`expected the task to be re-run, got ${JSON.stringify(outcome)}`);
    const done = await eventually('the re-run to be done', async () => {
      const t = await task(outcome.retryId);
      return t.status === 'done' ? t : undefined;
    });
    expect(done).to.include({ retryOf: id, attempts: 1, lastError: null });
    expect(done.payload).to.deep.equal({ key: 'invoice-1' });
    expect(done.result).to.deep.equal({ key: 'invoice-1', try: 2 });

    const after = await sys.database.db.query('SELECT to_jsonb(t) AS row FROM ltp.tasks t WHERE id = $1', [id]);
    expect(after.rows[0]).to.deep.equal(before.rows[0]);
    expect((await task(id)).retriedBy).to.equal(outcome.retryId);

    const again = await runCli(['retry', String(id)], env);
    expect(again.code).to.equal(1);
    expect(again.stdout).to.include(`already re-run as task ${outcome.retryId}`);
    expect(again.stderr).to.include('1 task was not re-run');

    const pool = await eventually('status to count the done and the failed task', async () => {
      const [p] = await cliJson<PoolSummary[]>(['status', '-n', NS], env);
      return p?.tasks?.done === 1 && p.tasks.failed === 1 ? p : undefined;
    });
    expect(pool.tasks).to.include({ done: 1, failed: 1, cancelled: 0 });
  });

  it('retry by filter re-runs the failed tasks whose error matches, and their work gets done', async () => {
    const ids = await Promise.all([enqueue('cli-flaky', { key: 'invoice-2' }), enqueue('cli-flaky', { key: 'invoice-3' })]).then((l) =>
      l.flat(),
    );
    await eventually('both tasks to fail', async () => {
      const failed = await cliJson<TaskJson[]>(['tasks', '--queue', 'cli-flaky', '--status', 'failed'], env);
      return ids.every((id) => failed.some((t) => t.id === id));
    });
    const none = await cliJson<RetryOutcome[]>(['retry', '--queue', 'cli-flaky', '--error-contains', 'no such error text'], env);
    expect(none).to.deep.equal([]);
    const outcomes = await cliJson<RetryOutcome[]>(['retry', '--queue', 'cli-flaky', '--error-contains', 'SERVICE IT CALLS'], env);
    expect(outcomes.map((o) => [o.id, o.outcome]).sort()).to.deep.equal(ids.map((id) => [id, 'retried']).sort());
    const retryIds = outcomes.flatMap((o) => (o.outcome === 'retried' ? [o.retryId] : []));
    await eventually('both re-runs to be done', async () => (await Promise.all(retryIds.map(task))).every((t) => t.status === 'done'));
    expect(await cliJson<RetryOutcome[]>(['retry', '--queue', 'cli-flaky'], env), 'nothing is left to re-run').to.deep.equal([]);
    const text = await runCli(['retry', '--queue', 'cli-flaky'], env);
    expect(text.stdout.trim()).to.equal('no failed task of queue cli-flaky is waiting to be re-run');
  });

  it('trace shows why each invocation of a pool was started, and how it ended, agreeing with the ledger', async () => {
    const uid = (await kubectl(['get', 'ltp', 'flaky', '-n', NS, '-o', 'jsonpath={.metadata.uid}'])).stdout;
    const entries = await cliJson<TraceJson[]>(['trace', `${NS}/flaky`, '--since', '30m'], env);
    const started = entries.flatMap((e) => e.invocations);
    const ledger = await sys.database.db.query<{ id: string; status: string; decision_id: string | null }>(
      'SELECT id, status, decision_id FROM ltp.invocations WHERE pool_uid = $1 ORDER BY id',
      [uid],
    );
    // Every invocation the pool started was started by a recorded decision, and the trace shows each once, as the row ended.
    expect(ledger.rowCount).to.be.greaterThan(0);
    expect(ledger.rows.every((r) => r.decision_id !== null)).to.equal(true);
    expect(started.map((i) => [i.id, i.status])).to.deep.equal(ledger.rows.map((r) => [Number(r.id), r.status]));
    for (const e of entries) {
      expect(e.invocations.length, `decision ${e.id} lists the invocations it dispatched`).to.equal(e.outcome.dispatched);
      expect(e.outcome.dispatched, `decision ${e.id} never dispatches past its headroom`).to.be.at.most(e.inputs.headroom);
      expect(e.reason).to.match(/\w{5}/);
    }
    expect(entries.map((e) => Date.parse(e.decidedAt))).to.deep.equal(entries.map((e) => Date.parse(e.decidedAt)).sort((a, b) => a - b));

    const text = await runCli(['trace', 'flaky', '-n', NS, '--since', '30m'], env);
    expect(text.code, text.stderr).to.equal(0);
    expect(text.stdout)
      .to.match(/decision \d+: dispatched 1/)
      .and.match(/^ {4}saw: backlog \d+/m)
      .and.match(/^ {4}why: /m);
    expect(text.stdout).to.match(/started 1 \(ids \d+\): 1 succeeded; 1 tasks? started/);
    const latest = await cliJson<TraceJson[]>(['trace', `${NS}/flaky`, '--limit', '1'], env);
    expect(latest.map((e) => e.id)).to.deep.equal(entries.slice(-1).map((e) => e.id));

    const missing = await runCli(['trace', `${NS}/nope`], env);
    expect(missing.code).to.equal(1);
    expect(missing.stderr).to.include(`no LambdaTaskPool ${NS}/nope`);
    const bad = await runCli(['trace', 'a/b/c'], env);
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.include('NAMESPACE/NAME');
  });

  it('cancel with --dry-run changes nothing; without it, ends waiting tasks with the reason, and status counts them', async () => {
    const ids = await enqueue('cli-held', { n: 1 }, 4);
    const dry = await cliJson<CancelOutcome[]>(['cancel', '--queue', 'cli-held', '--reason', 'try', '--dry-run'], env);
    expect(dry).to.deep.equal(ids.map((id) => ({ id, outcome: 'would-cancel' })));
    const dryText = await runCli(['cancel', String(ids[0]), '--reason', 'try', '--dry-run'], env);
    expect(dryText.stdout).to.include('would cancel 1 task');
    expect((await cliJson<TaskJson[]>(['tasks', '--queue', 'cli-held', '--status', 'created'], env)).length, 'still waiting').to.equal(4);

    const [first = 0, ...rest] = ids;
    expect(await cliJson<CancelOutcome[]>(['cancel', String(first), '--reason', 'duplicate upload'], env)).to.deep.equal([
      { id: first, outcome: 'cancelled' },
    ]);
    expect(await task(first)).to.include({ status: 'cancelled', cancelReason: 'duplicate upload' });
    const flushed = await cliJson<CancelOutcome[]>(
      ['cancel', '--queue', 'cli-held', '--reason', 'campaign withdrawn', '--limit', '2'],
      env,
    );
    expect(flushed).to.deep.equal(rest.slice(0, 2).map((id) => ({ id, outcome: 'cancelled' })));

    const again = await runCli(['cancel', String(first), '--reason', 'again'], env);
    expect(again.code).to.equal(1);
    expect(again.stdout).to.include('it was already cancelled');
    const shown = await runCli(['tasks', '--queue', 'cli-held', '--status', 'cancelled'], env);
    expect(shown.stdout).to.include('duplicate upload').and.include('campaign withdrawn');

    const pool = await eventually('status to count the cancelled tasks', async () => {
      const p = await cliJson<PoolSummary>(['status', '-n', NS, 'held'], env);
      return p.tasks?.cancelled === 3 ? p : undefined;
    });
    expect(pool.tasks).to.include({ created: 1, cancelled: 3 });

    // A cancelled task can be re-run.
    const [rerun] = await cliJson<RetryOutcome[]>(['retry', String(first)], env);
    expect(rerun?.outcome).to.equal('retried');
  });

  it('cancel leaves a leased task to its worker', async () => {
    await enqueue('cli-held', {});
    // A worker of the held pool that has started and leases one task (the suspended pool leaves started ones be).
    const uid = (await kubectl(['get', 'ltp', 'held', '-n', NS, '-o', 'jsonpath={.metadata.uid}'])).stdout;
    const leased = await sys.database.db.query<{ id: number }>(
      `WITH inv AS (
         INSERT INTO ltp.invocations (pool_namespace, pool_name, pool_uid, queue, status, function_name, tasks_per_invocation,
                                      max_task_attempts, heartbeat_timeout_seconds, ready_at, heartbeat_at)
         VALUES ($1, 'held', $2, 'cli-held', 'ready', 'e2e-worker', 1, 1, 3600, now(), now()) RETURNING id)
       SELECT id FROM ltp.worker_lease((SELECT id FROM inv))`,
      [NS, uid],
    );
    const id = leased.rows[0]?.id ?? 0;
    expect((await task(id)).status).to.equal('leased');
    const result = await runCli(['cancel', String(id), '--reason', 'too late', '-o', 'json'], env);
    expect(result.code).to.equal(1);
    expect(JSON.parse(result.stdout)).to.deep.equal([
      { id, outcome: 'skipped', reason: 'it is leased: a worker is on it, and it ends done or failed' },
    ]);
    expect((await task(id)).status).to.equal('leased');
  });

  it('enqueue and migrate print JSON a script can use', async () => {
    const out = await cliJson<{ queue: string; count: number; ids: number[] }>(
      ['enqueue', '--queue', 'cli-other', '--count', '3', '--delay-seconds', '3600'],
      env,
    );
    expect(out).to.include({ queue: 'cli-other', count: 3 });
    expect(out.ids).to.have.length(3);
    const migrated = await cliJson<{ database: string; applied: string[] }>(['migrate'], env);
    expect(migrated.applied).to.deep.equal([]);
    expect(migrated.database).to.match(/^127\.0\.0\.1:\d+\//);
    expect(JSON.stringify(migrated)).not.to.include('postgres:');

    // Least-privilege roles: printed for a DBA without touching the database, or created (roles are per server: own prefix).
    const prefix = `cli_e2e_${process.pid}`;
    const sql = await runCli(['migrate', '--print-roles-sql', '--role-prefix', prefix], {});
    expect(sql.code, sql.stderr).to.equal(0);
    expect(sql.stdout)
      .to.include(`CREATE ROLE ${prefix}_worker NOLOGIN`)
      .and.include(`GRANT SELECT, INSERT ON ltp.tasks TO ${prefix}_producer`);
    const roles = async () =>
      (
        await sys.database.db.query<{ rolname: string }>('SELECT rolname FROM pg_roles WHERE rolname LIKE $1 ORDER BY 1', [`${prefix}%`])
      ).rows.map((r) => r.rolname);
    expect(await roles(), '--print-roles-sql creates nothing').to.deep.equal([]);
    const created = await cliJson<{ applied: string[]; roles: boolean }>(['migrate', '--create-roles', '--role-prefix', prefix], env);
    expect(created).to.include({ roles: true });
    expect(await roles()).to.deep.equal([`${prefix}_controller`, `${prefix}_producer`, `${prefix}_worker`]);
  });

  it('runs the controller with its own Lease name (--lease-name, or LEASE_NAME)', async () => {
    const cp = await sharedControlPlane();
    const controller = await startControllerProcess({
      kubeconfig: cp.kubeconfigPath,
      databaseUrl: sys.database.url,
      lambdaEndpoint: sys.lambda.endpoint,
      namespaces: [`${NS}-nothing`],
      leaderElect: { leaseNamespace: NS, identity: 'cli-e2e', leaseName: 'release-b-lambda-task-pool' },
    });
    try {
      const holder = await eventually('the Lease to be held', async () => {
        const lease = await kubectl(['get', 'lease', 'release-b-lambda-task-pool', '-n', NS, '-o', 'jsonpath={.spec.holderIdentity}']);
        return lease.code === 0 && lease.stdout === 'cli-e2e' ? lease.stdout : undefined;
      });
      expect(holder).to.equal('cli-e2e');
      const defaultLease = await kubectl(['get', 'lease', 'lambda-task-pool-controller', '-n', NS]);
      expect(defaultLease.code, 'no Lease under the default name').not.to.equal(0);
    } finally {
      await controller.stop();
    }
  });
});
