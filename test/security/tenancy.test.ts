// The tenancy policy end to end: the chart renders it, the controller runs with exactly what the chart
// rendered (stack.ts), a pool outside its namespace's rules gets Ready=False FunctionNotAllowed or
// QueueNotAllowed naming the rule and dispatches nothing (the local Lambda runtime sees no invoke), while a
// pool inside them works. Also: a queue claimed by two pools, a malformed policy at start, and an invocation
// row forged in the database. See docs/security.md (TEN-*).
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { parseTenancyPolicy } from '../../src/api/tenancy.ts';
import { insertInvocations } from '../../src/store/invocation-store.ts';
import { enqueueTasks } from '../../src/store/task-store.ts';
import { helm, kubectl } from '../support/kube.ts';
import { applyPool, eventually, getPool, condition } from '../support/system.ts';
import {
  CHART,
  deletePools,
  removePools,
  HEALTHY,
  HealthyProbe,
  invocationRowsOf,
  NS,
  readyReason,
  renderTenancyPolicy,
  securityStack,
  tenancyValues,
  type SecurityStack,
} from './stack.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const runFile = promisify(execFile);

async function tasksDone(stack: SecurityStack, ids: number[]): Promise<boolean> {
  const r = await stack.database.db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM ltp.tasks WHERE id = ANY($1) AND status = 'done'`,
    [ids],
  );
  return r.rows[0]?.n === ids.length;
}

async function statuses(stack: SecurityStack, ids: number[]): Promise<string[]> {
  const r = await stack.database.db.query<{ status: string }>(`SELECT status FROM ltp.tasks WHERE id = ANY($1) ORDER BY id`, [ids]);
  return r.rows.map((row) => row.status);
}

describe('security: the tenancy policy end to end (rendered by the chart, enforced by the controller)', function () {
  this.timeout(120_000);
  let stack: SecurityStack;
  let probe: HealthyProbe;

  before(async function () {
    this.timeout(240_000);
    stack = await securityStack();
    probe = new HealthyProbe(stack).start();
  });

  after(async function () {
    this.timeout(120_000);
    await removePools(NS.a, ['team-a-jobs', 'shared-owner']);
    await removePools(NS.b, [
      'team-b-jobs',
      'borrow-function',
      'borrow-arn',
      'borrow-suffix-arn',
      'own-partial-arn',
      'borrow-queue',
      'shared-second',
      'turncoat',
    ]);
    await removePools(NS.outsider, ['outsider']);
  });

  it('[TEN-01] helm template renders a restrictive policy into TENANCY_POLICY exactly, and its notes stop warning that nothing is restricted', async () => {
    const values = tenancyValues();
    const { env } = await renderTenancyPolicy(values);
    expect(parseTenancyPolicy(env)).to.deep.equal(values);
    expect(env).to.equal(stack.renderedPolicy);
    // The suite's CRD comes from crds/ (the harness applies it), so the chart leaves CRDs alone here.
    const open = await helm(['install', 'sec-open', CHART, '--dry-run=client', '--namespace', 'ltp-system', '--set', 'crds.enabled=false']);
    expect(open.code, open.stderr).to.equal(0);
    expect(open.stdout).to.include('WARNING: no tenancy policy restricts anything');
    const restricted = await helm([
      'install',
      'sec-restricted',
      CHART,
      '--dry-run=client',
      '--namespace',
      'ltp-system',
      '--set',
      'crds.enabled=false',
      '--set-json',
      `tenancy=${JSON.stringify(values)}`,
    ]);
    expect(restricted.code, restricted.stderr).to.equal(0);
    expect(restricted.stdout).to.not.include('no tenancy policy restricts anything');
    const typo = await helm(['template', 'sec-typo', CHART, '--set-json', 'tenancy={"default":{"function":["*"]}}']);
    expect(typo.code, 'a misspelt policy key is refused by the values schema').to.not.equal(0);
    expect(typo.stderr).to.match(/additional properties 'function' not allowed/);
  });

  it('[TEN-02] a pool naming another team’s function is Ready=False FunctionNotAllowed naming the rule, and the function is never invoked; an allowed pool next to it finishes its tasks', async () => {
    await applyPool({
      namespace: NS.b,
      name: 'borrow-function',
      functionName: 'team-a-billing',
      queue: 'team-b/billing',
      maxConcurrency: 3,
      tasksPerInvocation: 1,
    });
    await applyPool({
      namespace: NS.b,
      name: 'team-b-jobs',
      functionName: 'team-b-worker',
      queue: 'team-b/jobs',
      maxConcurrency: 3,
      tasksPerInvocation: 1,
    });
    const refusedTasks = await enqueueTasks(stack.database.db, { queue: 'team-b/billing', payloads: [{}, {}, {}] });
    const allowedTasks = await enqueueTasks(stack.database.db, { queue: 'team-b/jobs', payloads: [{}, {}, {}] });
    const ready = await readyReason(NS.b, 'borrow-function', 'FunctionNotAllowed');
    expect(ready.status).to.equal('False');
    expect(ready.message).to.equal(
      `namespace ${NS.b} may invoke only functions matching "team-b-*", "*-team-b" (tenancy.namespaces.${NS.b}.functions); team-a-billing does not match`,
    );
    await eventually('the allowed pool to finish its tasks', async () => tasksDone(stack, allowedTasks));
    expect(condition(await getPool(NS.b, 'team-b-jobs'), 'Ready')?.status).to.equal('True');
    // Give the refused pool time to do something it should not.
    await new Promise((r) => setTimeout(r, 3_000));
    expect(stack.lambda.events('team-a-billing'), 'invokes of team-a-billing').to.have.length(0);
    expect(await invocationRowsOf(stack, NS.b, 'borrow-function')).to.equal(0);
    expect(await statuses(stack, refusedTasks)).to.deep.equal(['created', 'created', 'created']);
    const events = await kubectl(['get', 'events', '-n', NS.b, '--field-selector', 'involvedObject.name=borrow-function', '-o', 'json']);
    expect(events.stdout).to.include('FunctionNotAllowed');
  });

  it('[TEN-03] the same function by its full ARN is refused too: a name pattern never matches an ARN', async () => {
    await applyPool({
      namespace: NS.b,
      name: 'borrow-arn',
      functionName: 'arn:aws:lambda:us-east-1:123456789012:function:team-a-billing',
      queue: 'team-b/billing-arn',
    });
    const ready = await readyReason(NS.b, 'borrow-arn', 'FunctionNotAllowed');
    expect(ready.message).to.include('arn:aws:lambda:us-east-1:123456789012:function:team-a-billing does not match');
    expect(stack.lambda.events('team-a-billing')).to.have.length(0);
    // A name pattern that starts with * ("*-team-b") does not reach past the ARN's colons either: the
    // function named here ends in -team-b, but it is another account's (was a defect: it was invoked).
    const foreign = 'arn:aws:lambda:us-east-1:999999999999:function:evil-team-b';
    const waiting = await enqueueTasks(stack.database.db, { queue: 'team-b/suffix-arn', payloads: [{}, {}] });
    await applyPool({ namespace: NS.b, name: 'borrow-suffix-arn', functionName: foreign, queue: 'team-b/suffix-arn' });
    const suffix = await readyReason(NS.b, 'borrow-suffix-arn', 'FunctionNotAllowed');
    expect(suffix.message).to.include(`${foreign} does not match`);
    expect(await invocationRowsOf(stack, NS.b, 'borrow-suffix-arn')).to.equal(0);
    expect(await statuses(stack, waiting)).to.deep.equal(['created', 'created']);
  });

  it('[TEN-04] its own function written as a partial ARN is refused: the policy is matched against the string as written', async () => {
    await applyPool({
      namespace: NS.b,
      name: 'own-partial-arn',
      functionName: '123456789012:function:team-b-worker',
      queue: 'team-b/partial',
    });
    const ready = await readyReason(NS.b, 'own-partial-arn', 'FunctionNotAllowed');
    expect(ready.message).to.include('123456789012:function:team-b-worker does not match');
    expect(await invocationRowsOf(stack, NS.b, 'own-partial-arn')).to.equal(0);
  });

  it('[TEN-05] a pool claiming another team’s queue in the default database is Ready=False QueueNotAllowed, and that team’s own pool gets every one of its tasks', async () => {
    const teamA = await enqueueTasks(stack.database.db, { queue: 'team-a/jobs', payloads: [{}, {}, {}, {}] });
    await applyPool({
      namespace: NS.b,
      name: 'borrow-queue',
      functionName: 'team-b-worker',
      queue: 'team-a/jobs',
      maxConcurrency: 3,
      tasksPerInvocation: 1,
    });
    const ready = await readyReason(NS.b, 'borrow-queue', 'QueueNotAllowed');
    expect(ready.message).to.equal(
      `namespace ${NS.b} may claim only queues matching "team-b/*", "shared/*" in the default database (tenancy.namespaces.${NS.b}.queues); team-a/jobs does not match`,
    );
    await new Promise((r) => setTimeout(r, 2_000));
    expect(await statuses(stack, teamA)).to.deep.equal(['created', 'created', 'created', 'created']);
    expect(await invocationRowsOf(stack, NS.b, 'borrow-queue')).to.equal(0);
    const claims = await stack.database.db.query(`SELECT pool_namespace FROM ltp.queue_claims WHERE queue = 'team-a/jobs'`);
    expect(claims.rows, 'a refused pool claims nothing').to.deep.equal([]);
    await applyPool({
      namespace: NS.a,
      name: 'team-a-jobs',
      functionName: 'team-a-worker',
      queue: 'team-a/jobs',
      maxConcurrency: 3,
      tasksPerInvocation: 2,
    });
    await eventually('team A to finish its own tasks', async () => tasksDone(stack, teamA));
    const byPool = await stack.database.db.query<{ pool_namespace: string }>(
      `SELECT DISTINCT pool_namespace FROM ltp.invocations WHERE queue = 'team-a/jobs'`,
    );
    expect(byPool.rows).to.deep.equal([{ pool_namespace: NS.a }]);
  });

  it('[TEN-06] a namespace the policy does not list gets tenancy.default, which here allows nothing', async () => {
    await applyPool({ namespace: NS.outsider, name: 'outsider', functionName: 'sec-healthy', queue: 'healthy-outsider' });
    const ready = await readyReason(NS.outsider, 'outsider', 'FunctionNotAllowed');
    expect(ready.message).to.equal(
      `namespace ${NS.outsider} may invoke only functions matching nothing (an empty list) (tenancy.default.functions); sec-healthy does not match`,
    );
    expect(await invocationRowsOf(stack, NS.outsider, 'outsider')).to.equal(0);
  });

  it('[TEN-07] a queue claimed by two allowed pools of two namespaces: the second is Ready=False QueueConflict naming the first, takes over when it goes, and every task runs exactly once', async () => {
    await applyPool({
      namespace: NS.a,
      name: 'shared-owner',
      functionName: 'team-a-worker',
      queue: 'shared/jobs',
      maxConcurrency: 2,
      tasksPerInvocation: 1,
    });
    await readyReason(NS.a, 'shared-owner', 'Reconciled');
    await applyPool({
      namespace: NS.b,
      name: 'shared-second',
      functionName: 'team-b-worker',
      queue: 'shared/jobs',
      maxConcurrency: 2,
      tasksPerInvocation: 1,
    });
    const conflict = await readyReason(NS.b, 'shared-second', 'QueueConflict');
    expect(conflict.message).to.match(new RegExp(`queue shared/jobs in .* is already served by pool ${NS.a}/shared-owner`));
    const first = await enqueueTasks(stack.database.db, { queue: 'shared/jobs', payloads: [{}, {}, {}] });
    await eventually('the owner to finish the shared tasks', async () => tasksDone(stack, first));
    expect(await invocationRowsOf(stack, NS.b, 'shared-second'), 'the second pool dispatched nothing').to.equal(0);
    await deletePools(NS.a, ['shared-owner']);
    await readyReason(NS.b, 'shared-second', 'Reconciled', 60_000);
    const second = await enqueueTasks(stack.database.db, { queue: 'shared/jobs', payloads: [{}, {}, {}] });
    await eventually('the second pool to finish the shared tasks', async () => tasksDone(stack, second));
    const runs = await stack.database.db.query<{ task_id: number; n: number }>(
      `SELECT task_id, count(*)::int AS n FROM public.executions WHERE task_id = ANY($1) GROUP BY task_id`,
      [[...first, ...second]],
    );
    expect(runs.rows.map((r) => r.n)).to.deep.equal([1, 1, 1, 1, 1, 1]);
  });

  it('[TEN-08] a working pool patched to another team’s function stops dispatching with FunctionNotAllowed; that function is never invoked', async () => {
    await applyPool({
      namespace: NS.b,
      name: 'turncoat',
      functionName: 'team-b-worker',
      queue: 'team-b/turncoat',
      maxConcurrency: 2,
      tasksPerInvocation: 1,
    });
    await readyReason(NS.b, 'turncoat', 'Reconciled');
    const recorded = async () =>
      (
        await stack.database.db.query<{ seconds: number | null }>(
          `SELECT retention_seconds AS seconds FROM ltp.queue_claims WHERE queue = 'team-b/turncoat'`,
        )
      ).rows[0]?.seconds;
    expect(await recorded(), 'the retention recorded on its claim while it is allowed').to.be.a('number');
    const patched = await kubectl([
      'patch',
      'ltp',
      'turncoat',
      '-n',
      NS.b,
      '--type=merge',
      '-p',
      '{"spec":{"function":{"name":"team-a-billing"}}}',
    ]);
    expect(patched.code, patched.stderr).to.equal(0);
    await readyReason(NS.b, 'turncoat', 'FunctionNotAllowed');
    // Refused, it no longer sets its queue's retention for the other controllers on this database.
    expect(await recorded(), 'the retention on its claim once refused').to.equal(null);
    const ids = await enqueueTasks(stack.database.db, { queue: 'team-b/turncoat', payloads: [{}, {}] });
    await new Promise((r) => setTimeout(r, 3_000));
    expect(stack.lambda.events('team-a-billing')).to.have.length(0);
    expect(await statuses(stack, ids)).to.deep.equal(['created', 'created']);
  });

  it('[TEN-09] an invocation row forged in the database for a real pool, naming another team’s function: ended as FunctionNotAllowed, never invoked', async () => {
    const uid = JSON.parse((await kubectl(['get', 'ltp', HEALTHY.name, '-n', HEALTHY.namespace, '-o', 'json'])).stdout).metadata
      .uid as string;
    const [forged = 0] = await insertInvocations(stack.database.db, {
      template: {
        pool: { namespace: HEALTHY.namespace, name: HEALTHY.name, uid },
        queue: HEALTHY.queue,
        functionName: 'team-a-billing',
        tasksPerInvocation: 1,
        maxTaskAttempts: 3,
        heartbeatTimeoutSeconds: 60,
        retryInitialDelayMs: 0,
        retryMaxDelayMs: 0,
      },
      count: 1,
      // Due for a re-invoke at once: as if the controller had crashed between the insert and the invoke.
      invokeAfterMs: -60_000,
    });
    await enqueueTasks(stack.database.db, { queue: HEALTHY.queue, payloads: [{}] });
    const ended = await eventually('the forged row to be ended', async () => {
      const r = await stack.database.db.query<{ status: string; error_code: string | null }>(
        `SELECT status, error_code FROM ltp.invocations WHERE id = $1`,
        [forged],
      );
      const row = r.rows[0];
      return row && row.status !== 'created' ? row : undefined;
    });
    expect(ended).to.deep.equal({ status: 'terminated', error_code: 'FunctionNotAllowed' });
    expect(stack.lambda.events('team-a-billing'), 'invokes of team-a-billing').to.have.length(0);
  });

  it('[TEN-10] a malformed tenancy policy: the controller refuses to start, naming the problem', async () => {
    const cli = path.join(ROOT, 'src', 'cli.ts');
    const cases: Array<[string, RegExp]> = [
      ['{"default": {"functions": "*"}}', /tenancy\.default\.functions must be a list of patterns/],
      ['{"namespaces": {"Team_A": {"functions": ["*"]}}}', /"Team_A" is not a namespace name/],
      ['{"defaults": {}}', /unknown keys: defaults/],
      ['not json', /the tenancy policy is not JSON/],
      ['{"default": {"functions": ["*"], "roleArn": "arn:aws:iam::1:role/x"}}', /roleArn must be an IAM role ARN/],
    ];
    for (const [policy, message] of cases) {
      const result = await runFile(process.execPath, ['--import', 'tsx', cli, 'controller', '--tenancy-policy', policy], {
        cwd: ROOT,
        env: { ...process.env, DATABASE_URL: '' },
      }).then(
        () => ({ code: 0, stderr: '' }),
        (e: { code?: number; stderr?: string }) => ({ code: e.code ?? 1, stderr: e.stderr ?? '' }),
      );
      expect(result.code, policy).to.equal(2);
      expect(result.stderr, policy).to.match(message);
    }
  });

  it('the healthy pool kept dispatching and finishing its tasks, each exactly once, while this group ran', async () => {
    await probe.check();
  });
});
