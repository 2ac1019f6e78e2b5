// The Helm chart against a real kube-apiserver: it lints, its values schema refuses typos, it installs the
// controller with a hardened pod and least-privilege RBAC, and it uninstalls cleanly. There is no kubelet,
// so no pod ever runs; the suite never waits for one.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { helm, kubectl, sharedControlPlane, type CommandResult } from '../support/kube.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CHART = path.join(ROOT, 'charts', 'lambda-task-pool');
const CRD_NAME = 'lambdataskpools.lambda.taskpool.io';
const POOLS = 'lambdataskpools.lambda.taskpool.io';

interface JsonObject {
  [key: string]: unknown;
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function at(value: unknown, ...keys: Array<string | number>): unknown {
  let current = value;
  for (const key of keys) {
    if (typeof key === 'number') {
      if (!Array.isArray(current)) return undefined;
      current = current[key];
    } else {
      if (!isObject(current)) return undefined;
      current = current[key];
    }
  }
  return current;
}

function ok(result: CommandResult, what: string): string {
  expect(result.code, `${what} failed: ${result.stderr}`).to.equal(0);
  return result.stdout;
}

/** `kubectl auth can-i` as the controller's ServiceAccount: true for "yes", false for "no". */
async function canI(serviceAccount: string, verb: string, resource: string, namespace: string, subresource?: string): Promise<boolean> {
  const args = ['auth', 'can-i', verb, resource, '-n', namespace, `--as=${serviceAccount}`];
  if (subresource) args.push(`--subresource=${subresource}`);
  const result = await kubectl(args);
  const answer = result.stdout.trim();
  expect(answer, `can-i ${args.join(' ')}: ${result.stderr}`).to.be.oneOf(['yes', 'no']);
  return answer === 'yes';
}

describe('Helm chart lambda-task-pool (real kube-apiserver)', function () {
  const suffix = randomBytes(3).toString('hex');
  const namespace = `ltp-helm-${suffix}`;
  const scopedNamespace = `ltp-helm-${suffix}-scoped`;
  const watched = [`ltp-helm-${suffix}-a`, `ltp-helm-${suffix}-b`];
  const unwatched = `ltp-helm-${suffix}-c`;
  const release = `ltp-${suffix}`;
  const scopedRelease = `ltp-scoped-${suffix}`;
  const fullname = `${release}-lambda-task-pool`;
  const scopedFullname = `${scopedRelease}-lambda-task-pool`;
  const serviceAccount = `system:serviceaccount:${namespace}:${fullname}`;
  const scopedServiceAccount = `system:serviceaccount:${scopedNamespace}:${scopedFullname}`;
  const allNamespaces = [namespace, scopedNamespace, ...watched, unwatched];
  const releases: Array<{ name: string; namespace: string }> = [];

  before(async function () {
    this.timeout(120_000);
    await sharedControlPlane();
    for (const ns of allNamespaces) ok(await kubectl(['create', 'namespace', ns]), `create namespace ${ns}`);
    // A placeholder URL: nothing connects to it, the Deployment only references the Secret.
    ok(
      await kubectl(['create', 'secret', 'generic', 'db', '-n', namespace, '--from-literal=url=postgres://USER:PASSWORD@HOST:5432/DB']),
      'create secret',
    );
  });

  after(async function () {
    this.timeout(60_000);
    for (const r of releases) await helm(['uninstall', r.name, '-n', r.namespace]);
    await kubectl(['delete', 'secret', 'db', '-n', namespace, '--ignore-not-found']);
    // There is no namespace controller, so the namespaces stay Terminating; the control plane is throwaway.
    await kubectl(['delete', 'namespace', ...allNamespaces, '--wait=false', '--ignore-not-found']);
  });

  it('helm lint passes', async () => {
    const result = await helm(['lint', CHART]);
    expect(result.code, result.stdout + result.stderr).to.equal(0);
    expect(result.stdout).to.contain('0 chart(s) failed');
  });

  it('helm template refuses a mistyped value key (values.schema.json)', async () => {
    const typo = await helm(['template', 'typo', CHART, '--set', 'replicaCuont=2']);
    expect(typo.code).to.not.equal(0);
    expect(typo.stderr).to.match(/additional properties 'replicaCuont' not allowed/);
    const nested = await helm(['template', 'typo', CHART, '--set', 'database.url=postgres://u:p@h/db']);
    expect(nested.code, 'a plain database URL value must not exist').to.not.equal(0);
    expect(nested.stderr).to.match(/\/database.*additional properties 'url' not allowed/);
  });

  it('helm install creates the Deployment, ServiceAccount and RBAC bindings without waiting for pods', async () => {
    const result = await helm(['install', release, CHART, '-n', namespace, '--set', 'database.secretRef.name=db', '--wait=false']);
    expect(result.code, result.stderr).to.equal(0);
    releases.push({ name: release, namespace });
    expect(ok(await helm(['status', release, '-n', namespace, '-o', 'json']), 'helm status')).to.contain('"status":"deployed"');

    ok(await kubectl(['get', 'deployment', fullname, '-n', namespace]), 'get deployment');
    ok(await kubectl(['get', 'serviceaccount', fullname, '-n', namespace]), 'get serviceaccount');
    const binding: unknown = JSON.parse(ok(await kubectl(['get', 'clusterrolebinding', fullname, '-o', 'json']), 'get clusterrolebinding'));
    expect(at(binding, 'roleRef')).to.deep.include({ kind: 'ClusterRole', name: fullname });
    expect(at(binding, 'subjects')).to.deep.equal([{ kind: 'ServiceAccount', name: fullname, namespace }]);
    ok(await kubectl(['get', 'clusterrole', fullname]), 'get clusterrole');
    const leaderBinding: unknown = JSON.parse(
      ok(
        await kubectl(['get', 'rolebinding', `${fullname}-leader-election`, '-n', namespace, '-o', 'json']),
        'get leader-election rolebinding',
      ),
    );
    expect(at(leaderBinding, 'roleRef')).to.deep.include({ kind: 'Role', name: `${fullname}-leader-election` });
    expect(at(leaderBinding, 'subjects')).to.deep.equal([{ kind: 'ServiceAccount', name: fullname, namespace }]);
    // The CRD was already there; helm skipped crds/ and left it alone.
    ok(await kubectl(['get', 'crd', CRD_NAME]), 'get crd');
  });

  it('the controller pod runs as non-root with a read-only root filesystem and no capabilities', async () => {
    const deployment: unknown = JSON.parse(
      ok(await kubectl(['get', 'deployment', fullname, '-n', namespace, '-o', 'json']), 'get deployment'),
    );
    const pod = at(deployment, 'spec', 'template', 'spec');
    expect(at(pod, 'serviceAccountName')).to.equal(fullname);
    expect(at(pod, 'securityContext', 'runAsNonRoot')).to.equal(true);
    const containers = at(pod, 'containers');
    expect(containers).to.be.an('array').with.lengthOf(1);
    const container = at(containers, 0);
    expect(at(container, 'securityContext', 'runAsNonRoot')).to.equal(true);
    expect(at(container, 'securityContext', 'readOnlyRootFilesystem')).to.equal(true);
    expect(at(container, 'securityContext', 'allowPrivilegeEscalation')).to.equal(false);
    expect(at(container, 'securityContext', 'capabilities', 'drop')).to.deep.equal(['ALL']);
    expect(at(container, 'securityContext', 'capabilities', 'add')).to.equal(undefined);
  });

  it('the controller takes DATABASE_URL from a secretKeyRef, never from a plain value', async () => {
    const deployment: unknown = JSON.parse(
      ok(await kubectl(['get', 'deployment', fullname, '-n', namespace, '-o', 'json']), 'get deployment'),
    );
    const env = at(deployment, 'spec', 'template', 'spec', 'containers', 0, 'env');
    expect(env).to.be.an('array');
    const entries = Array.isArray(env) ? env : [];
    const databaseUrl = entries.filter((e) => at(e, 'name') === 'DATABASE_URL');
    expect(databaseUrl).to.deep.equal([{ name: 'DATABASE_URL', valueFrom: { secretKeyRef: { name: 'db', key: 'url' } } }]);
    const manifest = ok(await helm(['get', 'manifest', release, '-n', namespace]), 'helm get manifest');
    expect(manifest).to.not.contain('postgres://');
  });

  it('no controller pod runs, because there is no kubelet (and the suite does not wait for one)', async () => {
    const pods = ok(await kubectl(['get', 'pods', '-n', namespace, '-o', 'name']), 'get pods');
    expect(pods.trim()).to.equal('');
  });

  it("the controller's ServiceAccount can do exactly what reconciling needs", async () => {
    const elsewhere = unwatched;
    const checks: Array<[verb: string, resource: string, ns: string, subresource?: string]> = [
      ['get', POOLS, elsewhere],
      ['list', POOLS, elsewhere],
      ['watch', POOLS, elsewhere],
      ['patch', POOLS, elsewhere],
      ['patch', POOLS, elsewhere, 'status'],
      ['update', POOLS, elsewhere, 'finalizers'],
      ['get', 'secrets', elsewhere],
      ['create', 'events', elsewhere],
      ['get', 'leases.coordination.k8s.io/lambda-task-pool-controller', namespace],
      ['create', 'leases.coordination.k8s.io', namespace],
      ['update', 'leases.coordination.k8s.io/lambda-task-pool-controller', namespace],
    ];
    for (const [verb, resource, ns, subresource] of checks) {
      expect(
        await canI(serviceAccount, verb, resource, ns, subresource),
        `${verb} ${resource}${subresource ? '/' + subresource : ''} in ${ns}`,
      ).to.equal(true);
    }
  });

  it("the controller's ServiceAccount cannot list or watch secrets, delete pools, create pods, or touch leases elsewhere", async () => {
    const checks: Array<[verb: string, resource: string, ns: string]> = [
      ['list', 'secrets', unwatched],
      ['watch', 'secrets', unwatched],
      ['list', 'secrets', namespace],
      ['delete', POOLS, unwatched],
      ['create', POOLS, unwatched],
      ['create', 'pods', namespace],
      ['create', 'pods', unwatched],
      ['delete', 'leases.coordination.k8s.io', namespace],
      ['get', 'leases.coordination.k8s.io', unwatched],
      ['create', 'leases.coordination.k8s.io', unwatched],
      ['update', 'leases.coordination.k8s.io', unwatched],
      ['create', 'secrets', namespace],
      ['update', POOLS, unwatched],
      ['update', 'leases.coordination.k8s.io/another-controller', namespace],
      ['get', 'leases.coordination.k8s.io/another-controller', namespace],
    ];
    for (const [verb, resource, ns] of checks) {
      expect(await canI(serviceAccount, verb, resource, ns), `${verb} ${resource} in ${ns}`).to.equal(false);
    }
  });

  it('with watchNamespaces set, the controller gets secrets and pools only in those namespaces', async () => {
    const result = await helm([
      'install',
      scopedRelease,
      CHART,
      '-n',
      scopedNamespace,
      '--set',
      `watchNamespaces={${watched.join(',')}}`,
      '--wait=false',
    ]);
    expect(result.code, result.stderr).to.equal(0);
    releases.push({ name: scopedRelease, namespace: scopedNamespace });

    for (const ns of watched) {
      expect(await canI(scopedServiceAccount, 'get', 'secrets', ns), `get secrets in ${ns}`).to.equal(true);
      expect(await canI(scopedServiceAccount, 'watch', POOLS, ns), `watch pools in ${ns}`).to.equal(true);
      expect(await canI(scopedServiceAccount, 'list', 'secrets', ns), `list secrets in ${ns}`).to.equal(false);
    }
    for (const ns of [unwatched, scopedNamespace, namespace]) {
      expect(await canI(scopedServiceAccount, 'get', 'secrets', ns), `get secrets in ${ns}`).to.equal(false);
      expect(await canI(scopedServiceAccount, 'list', POOLS, ns), `list pools in ${ns}`).to.equal(false);
    }
    // Leader election still happens in the release namespace.
    expect(await canI(scopedServiceAccount, 'update', 'leases.coordination.k8s.io/lambda-task-pool-controller', scopedNamespace)).to.equal(
      true,
    );
    // No cluster-wide grant at all.
    const clusterRole = await kubectl(['get', 'clusterrole', scopedFullname, '--ignore-not-found', '-o', 'name']);
    expect(clusterRole.stdout.trim()).to.equal('');
    const deployment: unknown = JSON.parse(
      ok(await kubectl(['get', 'deployment', scopedFullname, '-n', scopedNamespace, '-o', 'json']), 'get deployment'),
    );
    const env = at(deployment, 'spec', 'template', 'spec', 'containers', 0, 'env');
    expect(Array.isArray(env) ? env : []).to.deep.include({ name: 'WATCH_NAMESPACES', value: watched.join(',') });
  });

  it('helm uninstall removes the release and every object it created, but keeps the CRD', async () => {
    for (const r of releases.splice(0)) ok(await helm(['uninstall', r.name, '-n', r.namespace, '--wait']), `uninstall ${r.name}`);
    const left = await kubectl([
      'get',
      'deployment,serviceaccount,role,rolebinding,service',
      '-n',
      namespace,
      '-l',
      `app.kubernetes.io/instance=${release}`,
      '-o',
      'name',
    ]);
    expect(left.stdout.trim()).to.equal('');
    const cluster = await kubectl(['get', 'clusterrole,clusterrolebinding', '-l', `app.kubernetes.io/instance=${release}`, '-o', 'name']);
    expect(cluster.stdout.trim()).to.equal('');
    for (const ns of watched) {
      const roles = await kubectl(['get', 'role,rolebinding', '-n', ns, '-l', `app.kubernetes.io/instance=${scopedRelease}`, '-o', 'name']);
      expect(roles.stdout.trim(), `roles left in ${ns}`).to.equal('');
    }
    expect(await canI(serviceAccount, 'get', POOLS, unwatched)).to.equal(false);
    expect((await helm(['list', '-n', namespace, '-q'])).stdout.trim()).to.equal('');
    ok(await kubectl(['get', 'crd', CRD_NAME]), 'the CRD is still there');
  });
});
