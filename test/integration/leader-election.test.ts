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

  const candidate = (identity: string, log: string[], more: { lease?: string; coordination?: CoordinationV1Api; now?: () => Date } = {}) =>
    new LeaderElector({
      coordination: more.coordination ?? coordination,
      requestOptions: kube.options,
      namespace: NS,
      name: more.lease ?? 'lambda-task-pool-controller',
      identity,
      ...(more.now ? { now: more.now } : {}),
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

  /** Samples both candidates every 50 ms for `ms`: the instants at which both led. */
  const bothLeading = async (a: LeaderElector, b: LeaderElector, ms: number) => {
    let both = 0;
    let bLed = 0;
    for (const end = Date.now() + ms; Date.now() < end;) {
      if (a.isLeader && b.isLeader) both += 1;
      if (b.isLeader) bLed += 1;
      await new Promise((r) => setTimeout(r, 50));
    }
    return { both, bLed };
  };

  const until = async (what: () => boolean, ms: number) => {
    for (const end = Date.now() + ms; !what() && Date.now() < end;) await new Promise((r) => setTimeout(r, 50));
    return what();
  };

  it('never takes a lease from a leader that renews it, however far its own clock runs ahead', async () => {
    const log: string[] = [];
    const lease = 'skew';
    const a = candidate('replica-a', log, { lease });
    a.start();
    expect(await until(() => a.isLeader, 10_000), 'replica-a leads').to.equal(true);
    // replica-b's clock is 16 s ahead: the leader's renewTime always looked older than the lease's 8 s.
    const b = candidate('replica-b', log, { lease, now: () => new Date(Date.now() + 16_000) });
    b.start();
    try {
      // Twice the lease's 8 s: a fresh standby waits one lease duration from when it first sees the lease,
      // so a shorter watch could not tell a standby that ignored the renewals from one that saw them.
      const seen = await bothLeading(a, b, 17_000);
      expect(seen.bLed, 'samples in which replica-b led').to.equal(0);
      expect(a.isLeader).to.equal(true);
    } finally {
      await b.stop();
      await a.stop();
    }
  });

  it('gives leadership up by its renew deadline on a slow API path, before a standby may take the lease', async () => {
    const log: string[] = [];
    const lease = 'slow-path';
    // replica-a reaches the API server through a slow path: 1.2 s each way on every call (a renewal, read and
    // replace, takes about 4.8 s of its 6 s deadline; each request stays within its own 3 s).
    const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const slow = new Proxy(coordination, {
      get(target, prop, receiver) {
        const value: unknown = Reflect.get(target, prop, receiver);
        if (typeof value !== 'function') return value;
        return async (...args: unknown[]) => {
          await delay(1_200);
          try {
            return (await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args)) as unknown;
          } finally {
            await delay(1_200);
          }
        };
      },
    });
    const a = candidate('replica-a', log, { lease, coordination: slow });
    a.start();
    expect(await until(() => a.isLeader, 20_000), 'replica-a leads').to.equal(true);
    const b = candidate('replica-b', log, { lease });
    b.start();
    try {
      const seen = await bothLeading(a, b, 16_000);
      expect(seen.both, 'samples (50 ms apart) in which both led').to.equal(0);
    } finally {
      await b.stop();
      await a.stop();
    }
  });
});
