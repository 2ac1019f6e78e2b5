// /readyz of a real controller process against a real kube-apiserver: not ready while its identity may not
// list the pools it watches (a rollout, or `helm install --wait`, must not call that a working controller),
// with the cause in its log; ready once RBAC lets it list and watch them. Probed over IPv6, as a kubelet on an
// IPv6-only cluster does, with the metrics address the chart gives (":PORT").
import { writeFile, mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { freshDatabase, type TestDatabase } from '../support/postgres.ts';
import { kubectl, sharedControlPlane } from '../support/kube.ts';
import { startControllerProcess, type ControllerProcess } from '../support/controller-process.ts';

const NS = `readiness-${process.pid}`;

describe('controller readiness (real kube-apiserver, Postgres and a controller process)', function () {
  this.timeout(120_000);
  let t: TestDatabase;
  let controller: ControllerProcess | undefined;

  before(async () => {
    t = await freshDatabase('readiness');
    await kubectl(['create', 'namespace', NS]);
  });
  after(async () => {
    await controller?.stop();
    await t?.close();
    await kubectl(['delete', 'namespace', NS, '--wait=false']);
  });

  // Over IPv6: with --metrics-addr :PORT, as the chart runs it, the controller listens on every address.
  const readyz = async () => (await fetch(`http://[::1]:${controller?.port}/readyz`)).status;

  it('is not ready while it may not list the pools, says why, and is ready once it may', async () => {
    // The control plane's "developer" user: authenticated, but bound to no role.
    const cp = await sharedControlPlane();
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ltp-readiness-'));
    const kubeconfig = path.join(dir, 'kubeconfig');
    await writeFile(kubeconfig, cp.kubeconfigFor('developer'), { mode: 0o600 });
    controller = await startControllerProcess({
      kubeconfig,
      databaseUrl: t.url,
      lambdaEndpoint: 'http://127.0.0.1:9',
      namespaces: [NS],
      metricsHost: '',
    });
    const seen: number[] = [];
    for (let i = 0; i < 10; i += 1) {
      seen.push(await readyz());
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    expect(seen, '/readyz while every list is refused').to.deep.equal(Array.from({ length: 10 }, () => 503));
    expect(controller.output()).to.include('pool watch failed').and.include('may not list and watch lambdataskpools');

    // What the chart's Role grants for pools, bound to the user.
    const role = {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: 'pools', namespace: NS },
      rules: [
        { apiGroups: ['lambda.taskpool.io'], resources: ['lambdataskpools'], verbs: ['get', 'list', 'watch', 'patch', 'update'] },
        { apiGroups: ['lambda.taskpool.io'], resources: ['lambdataskpools/status'], verbs: ['get', 'patch', 'update'] },
      ],
    };
    const binding = {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'pools', namespace: NS },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'pools' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'developer' }],
    };
    for (const manifest of [role, binding]) {
      const applied = await kubectl(['apply', '-f', '-'], { input: JSON.stringify(manifest) });
      expect(applied.code, applied.stderr).to.equal(0);
    }
    const until = Date.now() + 30_000;
    let status = await readyz();
    while (status !== 200 && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      status = await readyz();
    }
    expect(status, '/readyz once the pools may be listed').to.equal(200);
  });
});
