// Leader election on a real coordination.k8s.io Lease: one leader at a time, and a hand-over when it stops.
import { expect } from 'chai';
import type { CoordinationV1Api } from '@kubernetes/client-node';
import { LeaderElector } from '../../src/controller/leader-election.ts';
import { KubeApi, loadKubeConfig } from '../../src/controller/kube.ts';
import { silentLogger } from '../../src/ops/logger.ts';
import { kubectl, sharedControlPlane } from '../support/kube.ts';

const NS = `le-${process.pid}`;

describe('leader election (real kube-apiserver)', function () {
  this.timeout(60_000);
  let coordination: CoordinationV1Api;
  let kube: KubeApi;

  before(async function () {
    this.timeout(120_000);
    const cp = await sharedControlPlane();
    kube = new KubeApi(loadKubeConfig(cp.kubeconfigPath));
    coordination = kube.coordination;
    await kubectl(['create', 'namespace', NS]);
  });
  after(async () => {
    await kube.close();
    await kubectl(['delete', 'namespace', NS, '--wait=false']);
  });

  const candidate = (identity: string, log: string[]) =>
    new LeaderElector({
      coordination,
      requestOptions: kube.options,
      namespace: NS,
      name: 'lambda-task-pool-controller',
      identity,
      // Generous against a busy 2-core machine: a renewal may be slow without leadership being lost.
      leaseDurationMs: 8_000,
      renewDeadlineMs: 6_000,
      retryPeriodMs: 250,
      logger: silentLogger(),
      onStartedLeading: () => log.push(`${identity} leads`),
      onStoppedLeading: () => log.push(`${identity} lost`),
    });

  it('elects exactly one of two candidates, and hands over when the leader stops', async () => {
    const log: string[] = [];
    const a = candidate('replica-a', log);
    const b = candidate('replica-b', log);
    a.start();
    b.start();
    const deadline = Date.now() + 10_000;
    while (!a.isLeader && !b.isLeader && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 1_000));
    expect([a.isLeader, b.isLeader].filter(Boolean), 'leaders after a second of contention').to.have.length(1);
    const [leader, standby] = a.isLeader ? [a, b] : [b, a];
    const lease = await coordination.readNamespacedLease({ namespace: NS, name: 'lambda-task-pool-controller' });
    expect(lease.spec?.holderIdentity).to.equal(leader === a ? 'replica-a' : 'replica-b');

    await leader.stop();
    const handover = Date.now() + 15_000;
    while (!standby.isLeader && Date.now() < handover) await new Promise((r) => setTimeout(r, 50));
    expect(standby.isLeader, 'the standby took over').to.equal(true);
    const after = await coordination.readNamespacedLease({ namespace: NS, name: 'lambda-task-pool-controller' });
    expect(after.spec?.holderIdentity).to.equal(standby === a ? 'replica-a' : 'replica-b');
    expect(after.spec?.leaseTransitions).to.be.at.least(1);
    await standby.stop();
    expect(log, JSON.stringify(log)).to.deep.equal([
      leader === a ? 'replica-a leads' : 'replica-b leads',
      standby === a ? 'replica-a leads' : 'replica-b leads',
    ]);
  });
});
