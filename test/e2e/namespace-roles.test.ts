// Issue 10: a role per namespace. The tenancy policy names an IAM role for a namespace; the controller
// assumes it through STS (the local runtime answers AssumeRole and records which key signed each call)
// and invokes that namespace's functions with it, caching the credentials and assuming again before expiry.
import { expect } from 'chai';
import { enqueueTasks, countTasksByState } from '../../src/store/task-store.ts';
import { applyPool, E2E_WORKER, eventually, startSystem, type TestSystem } from '../support/system.ts';

const ROLE_A = 'arn:aws:iam::123456789012:role/team-a-invoker';
const ROLE_B = 'arn:aws:iam::123456789012:role/team-b-invoker';
const ROLE_D = 'arn:aws:iam::123456789012:role/team-d-invoker';

describe('a role per namespace (STS AssumeRole on the local runtime)', function () {
  this.timeout(120_000);
  let sys: TestSystem;

  before(async () => {
    sys = await startSystem({
      namespaces: ['roles-a', 'roles-b', 'roles-c', 'roles-d'],
      controllerOverrides: {
        tenancy: {
          default: { functions: ['*'], queues: ['*'] },
          namespaces: {
            'roles-a': { functions: ['team-a-*'], queues: ['*'], roleArn: ROLE_A },
            'roles-b': { functions: ['team-b-*'], queues: ['*'], roleArn: ROLE_B },
            'roles-d': { functions: ['*'], queues: ['*'], roleArn: ROLE_D },
          },
        },
      },
    });
    for (const name of ['team-a-worker', 'team-b-worker', 'shared-worker']) {
      sys.lambda.register({
        name,
        handler: E2E_WORKER,
        timeoutSeconds: 60,
        environment: { DATABASE_URL: sys.database.url, LTP_LOG_LEVEL: 'warn' },
        async: { startDelayMs: 200, maximumRetryAttempts: 0 },
      });
    }
  });
  after(async () => {
    await sys?.stop();
  });

  const invokes = (fn: string) =>
    sys.lambda.identity.signedCalls().filter((c) => c.action === 'lambda:InvokeFunction' && c.functionName === fn);

  it("invokes each namespace's functions as its own role, and the rest as the controller itself", async () => {
    await applyPool({ namespace: 'roles-a', name: 'a', queue: 'roles-a', functionName: 'team-a-worker', tasksPerInvocation: 1 });
    await applyPool({ namespace: 'roles-b', name: 'b', queue: 'roles-b', functionName: 'team-b-worker', tasksPerInvocation: 1 });
    await applyPool({ namespace: 'roles-c', name: 'c', queue: 'roles-c', functionName: 'shared-worker', tasksPerInvocation: 1 });
    for (const q of ['roles-a', 'roles-b', 'roles-c']) await enqueueTasks(sys.database.db, { queue: q, payloads: [{}, {}, {}, {}] });
    await eventually(
      'every task done',
      async () => {
        for (const q of ['roles-a', 'roles-b', 'roles-c']) if ((await countTasksByState(sys.database.db, q)).done !== 4) return false;
        return true;
      },
      60_000,
    );

    const assumed = sys.lambda.identity.assumedRoles();
    const keysOf = (role: string) => new Set(assumed.filter((a) => a.roleArn === role).map((a) => a.accessKeyId));
    expect(keysOf(ROLE_A).size, 'role A assumed').to.be.at.least(1);
    expect(keysOf(ROLE_B).size, 'role B assumed').to.be.at.least(1);
    expect(assumed.every((a) => a.sessionName === 'lambda-task-pool')).to.equal(true);

    expect(invokes('team-a-worker').length).to.be.at.least(4);
    expect(invokes('team-a-worker').every((c) => c.roleArn === ROLE_A && keysOf(ROLE_A).has(c.accessKeyId))).to.equal(true);
    expect(invokes('team-b-worker').every((c) => c.roleArn === ROLE_B && keysOf(ROLE_B).has(c.accessKeyId))).to.equal(true);
    // A namespace without a role: the controller's own credentials.
    expect(invokes('shared-worker').length).to.be.at.least(4);
    expect(invokes('shared-worker').every((c) => c.roleArn === undefined && c.accessKeyId === 'test')).to.equal(true);
    // The credentials are cached: not one AssumeRole per invoke.
    expect(keysOf(ROLE_A).size, 'AssumeRole calls for role A').to.be.at.most(2);
  });

  it('assumes the role again before its credentials expire, and keeps invoking', async () => {
    // Credentials that expire in 302 s are inside the SDK's five-minute refresh window two seconds later.
    sys.lambda.identity.credentialSeconds = 302;
    try {
      await applyPool({ namespace: 'roles-d', name: 'd', queue: 'roles-d', functionName: 'shared-worker', tasksPerInvocation: 1 });
      await enqueueTasks(sys.database.db, { queue: 'roles-d', payloads: [{}] });
      await eventually('the first task done', async () => (await countTasksByState(sys.database.db, 'roles-d')).done === 1, 30_000);
      const first = sys.lambda.identity.assumedRoles().filter((a) => a.roleArn === ROLE_D).length;
      expect(first).to.be.at.least(1);
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      await enqueueTasks(sys.database.db, { queue: 'roles-d', payloads: [{}, {}] });
      await eventually('the later tasks done', async () => (await countTasksByState(sys.database.db, 'roles-d')).done === 3, 30_000);
      const assumedD = sys.lambda.identity.assumedRoles().filter((a) => a.roleArn === ROLE_D);
      expect(assumedD.length, 'role D assumed again').to.be.greaterThan(first);
      const keys = new Set(assumedD.map((a) => a.accessKeyId));
      const calls = sys.lambda.identity.signedCalls().filter((c) => c.roleArn === ROLE_D && c.action === 'lambda:InvokeFunction');
      expect(calls.length).to.be.at.least(3);
      expect(calls.every((c) => keys.has(c.accessKeyId))).to.equal(true);
      // No call was refused as expired: every task was done by an invocation signed by a live key.
      expect(new Set(calls.map((c) => c.accessKeyId)).size, 'invokes signed by more than one key').to.be.greaterThan(1);
    } finally {
      sys.lambda.identity.credentialSeconds = undefined;
    }
  });
});
