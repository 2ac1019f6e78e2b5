// The Helm chart against a real kube-apiserver: it lints and renders with every option on, its values schema
// refuses typos, it installs the controller with a hardened pod and least-privilege RBAC (a Lease of its own per
// release), it installs, upgrades and keeps the CRD when asked to, and it uninstalls cleanly. There is no
// kubelet, so no pod ever runs; the suite never waits for one.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { parse, parseAllDocuments } from 'yaml';
import { ensureBinaries } from '../../dev/src/binaries.ts';
import { startControlPlane, type ControlPlane } from '../../dev/src/control-plane.ts';
import { helm, kubectl, sharedControlPlane, type CommandResult } from '../support/kube.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CHART = path.join(ROOT, 'charts', 'lambda-task-pool');
const CRD_FILE = path.join(ROOT, 'crds', 'lambdataskpools.yaml');
const CHART_CRD_FILE = path.join(CHART, 'files', 'crds', 'lambdataskpools.yaml');
const CRD_NAME = 'lambdataskpools.lambda.taskpool.io';
const POOLS = 'lambdataskpools.lambda.taskpool.io';

/** Every alert the chart can create, by its values key. */
const ALERTS: Record<string, string> = {
  backlogNotDraining: 'LambdaTaskPoolBacklogNotDraining',
  tasksFailing: 'LambdaTaskPoolTasksFailing',
  invocationsOrphaned: 'LambdaTaskPoolInvocationsOrphaned',
  throttled: 'LambdaTaskPoolInvokeThrottled',
  invocationsWasted: 'LambdaTaskPoolInvocationsWasted',
  poolNotReady: 'LambdaTaskPoolNotReady',
  functionNotReady: 'LambdaTaskPoolFunctionNotReady',
  reconcileErrors: 'LambdaTaskPoolReconcileErrors',
  controllerDown: 'LambdaTaskPoolControllerDown',
  noLeader: 'LambdaTaskPoolNoLeader',
};

/** Every switch of the chart on (the PodMonitor rather than the ServiceMonitor: the chart refuses both). */
const EVERY_OPTION_ON = {
  replicaCount: 2,
  crds: { enabled: true, keep: true },
  leaderElection: { enabled: true },
  database: { secretRef: { name: 'db', key: 'url' } },
  defaultDatabase: { allowedNamespaces: ['team-a'] },
  tenancy: {
    default: { functions: ['team-*'], queues: ['team-*'] },
    namespaces: { 'team-a': { functions: ['team-a-*'], queues: ['a/*'] } },
  },
  secrets: { namespaces: ['team-a'] },
  aws: { region: 'eu-west-1', credentialsSecret: 'aws' },
  lambda: { endpoint: 'http://lambda-local:9001' },
  extraArgs: ['--workers=8'],
  extraEnv: [
    { name: 'EXTRA', value: '1' },
    { name: 'NODE_EXTRA_CA_CERTS', value: '/etc/ssl/rds/global-bundle.pem' },
  ],
  extraVolumes: [{ name: 'rds-ca', configMap: { name: 'rds-ca' } }],
  extraVolumeMounts: [{ name: 'rds-ca', mountPath: '/etc/ssl/rds', readOnly: true }],
  serviceAccount: { annotations: { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/ltp' } },
  metrics: { service: { annotations: { a: 'b' } }, serviceMonitor: { enabled: false } },
  podMonitor: { enabled: true, interval: '15s', scrapeTimeout: '10s', labels: { release: 'prometheus' } },
  prometheusRule: {
    enabled: true,
    labels: { release: 'prometheus' },
    annotations: { owner: 'platform' },
    additionalAlertLabels: { team: 'platform' },
    additionalAlertAnnotations: { runbook_url: 'https://runbooks.example/lambda-task-pool' },
    alerts: { backlogNotDraining: { for: '20m', minBacklog: 5, window: '30m', labels: { page: 'yes' } } },
  },
  grafanaDashboard: {
    enabled: true,
    namespace: 'monitoring',
    extraLabels: { team: 'platform' },
    annotations: { grafana_folder: 'Operators' },
  },
  podDisruptionBudget: { enabled: true, unhealthyPodEvictionPolicy: 'AlwaysAllow' },
  topologySpread: { defaultConstraints: true },
  podAnnotations: { a: 'b' },
  podLabels: { c: 'd' },
  priorityClassName: 'system-cluster-critical',
  nodeSelector: { 'kubernetes.io/os': 'linux' },
  tolerations: [{ key: 'dedicated', operator: 'Exists', effect: 'NoSchedule' }],
};

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

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function ok(result: CommandResult, what: string): string {
  expect(result.code, `${what} failed: ${result.stderr}`).to.equal(0);
  return result.stdout;
}

/** helm without a cluster (lint, template): the pinned binary, never throwing on a non-zero exit. */
async function helmOffline(args: string[]): Promise<CommandResult> {
  const { helm: bin } = await ensureBinaries();
  return new Promise((resolve) => {
    execFile(bin, args, { maxBuffer: 20_000_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

/** Writes values to a file for `helm -f` (JSON is YAML). */
async function valuesFile(values: object): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ltp-helm-values-'));
  const file = path.join(dir, 'values.json');
  await writeFile(file, JSON.stringify(values));
  return file;
}

/** `helm template` with these values: the rendered objects, or the failure. */
async function render(
  values: object,
  release = 'ltp',
  namespace = 'ltp-system',
): Promise<{ code: number; stderr: string; objects: JsonObject[] }> {
  const file = await valuesFile(values);
  const result = await helmOffline(['template', release, CHART, '-n', namespace, '-f', file]);
  await rm(path.dirname(file), { recursive: true, force: true });
  const objects =
    result.code === 0
      ? parseAllDocuments(result.stdout)
          .map((d) => d.toJS() as unknown)
          .filter(isObject)
      : [];
  return { code: result.code, stderr: result.stderr, objects };
}

function only(objects: JsonObject[], kind: string, name?: string): JsonObject {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || at(o, 'metadata', 'name') === name));
  expect(found, `exactly one ${kind}${name ? ` ${name}` : ''} among ${objects.map((o) => String(o.kind)).join(', ')}`).to.have.lengthOf(1);
  return found[0] as JsonObject;
}

function envOf(deployment: JsonObject): unknown[] {
  return list(at(deployment, 'spec', 'template', 'spec', 'containers', 0, 'env'));
}

/** The rendered CRD less what the chart adds (its own labels, the keep annotation), for comparing with crds/. */
function withoutChartMetadata(crd: JsonObject, source: JsonObject): JsonObject {
  const copy = structuredClone(crd);
  const sourceLabels = at(source, 'metadata', 'labels');
  const metadata = at(copy, 'metadata');
  if (!isObject(metadata)) throw new Error('the CRD has no metadata');
  delete metadata.annotations;
  const labels = isObject(metadata.labels) ? metadata.labels : {};
  metadata.labels = Object.fromEntries(Object.entries(labels).filter(([k]) => isObject(sourceLabels) && k in sourceLabels));
  return copy;
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

describe('Helm chart lambda-task-pool: lint and render', function () {
  it('helm lint passes with the defaults and with every option on (PodMonitor or ServiceMonitor)', async () => {
    const plain = await helmOffline(['lint', '--strict', CHART]);
    expect(plain.code, plain.stdout + plain.stderr).to.equal(0);
    expect(plain.stdout).to.contain('0 chart(s) failed');
    for (const monitors of [
      {},
      { podMonitor: { enabled: false }, metrics: { serviceMonitor: { enabled: true, labels: { release: 'prometheus' } } } },
    ]) {
      const file = await valuesFile({ ...EVERY_OPTION_ON, ...monitors });
      const result = await helmOffline(['lint', '--strict', CHART, '-f', file, '--namespace', 'ltp-system']);
      await rm(path.dirname(file), { recursive: true, force: true });
      expect(result.code, result.stdout + result.stderr).to.equal(0);
      expect(result.stdout).to.contain('0 chart(s) failed');
    }
  });

  it('helm template refuses a mistyped value key (values.schema.json)', async () => {
    const typo = await helmOffline(['template', 'typo', CHART, '--set', 'replicaCuont=2']);
    expect(typo.code).to.not.equal(0);
    expect(typo.stderr).to.match(/additional properties 'replicaCuont' not allowed/);
    const nested = await helmOffline(['template', 'typo', CHART, '--set', 'database.url=postgres://u:p@h/db']);
    expect(nested.code, 'a plain database URL value must not exist').to.not.equal(0);
    expect(nested.stderr).to.match(/\/database.*additional properties 'url' not allowed/);
    const alert = await helmOffline(['template', 'typo', CHART, '--set', 'prometheusRule.alerts.backlogNotDraining.treshold=3']);
    expect(alert.code, 'a mistyped alert setting').to.not.equal(0);
    expect(alert.stderr).to.match(/additional properties 'treshold' not allowed/);
    const pdb = await helmOffline(['template', 'typo', CHART, '--set', 'podDisruptionBudget.minAvailable=lots']);
    expect(pdb.code, 'a budget that is neither a count nor a percentage').to.not.equal(0);
    // The controller refuses a policy keyed by something that is not a namespace name: so does the chart.
    const tenancy = await helmOffline(['template', 'typo', CHART, '--set', 'tenancy.namespaces.Team_A.functions={x}']);
    expect(tenancy.code, 'a tenancy key that is not a namespace name').to.not.equal(0);
    expect(tenancy.stderr).to.match(/invalid propertyName 'Team_A'/);
    // The chart's own scratch volume cannot be replaced by an extra one.
    const scratch = await render({ extraVolumes: [{ name: 'tmp', hostPath: { path: '/' } }] });
    expect(scratch.code, 'an extra volume named tmp').to.not.equal(0);
    const overTmp = await render({ extraVolumeMounts: [{ name: 'x', mountPath: '/tmp' }] });
    expect(overTmp.code, 'an extra mount over /tmp').to.not.equal(0);
    // "0" keeps history for ever, and --set makes it a number: both forms are accepted.
    const keepForEver = await helmOffline(['template', 'typo', CHART, '--set', 'retention=0']);
    expect(keepForEver.code, keepForEver.stderr).to.equal(0);
    expect(keepForEver.stdout).to.match(/name: RETENTION\s+value: "0"/);
    // A large number in a values file comes through as seconds, not as a float the controller refuses.
    const month = await render({ retention: 2_592_000 });
    expect(month.code, month.stderr).to.equal(0);
    expect(envOf(only(month.objects, 'Deployment'))).to.deep.include({ name: 'RETENTION', value: '2592000' });
  });

  it('with the defaults it renders the CRD (kept on uninstall), the controller, its RBAC and Service, and nothing optional', async () => {
    const { code, stderr, objects } = await render({});
    expect(code, stderr).to.equal(0);
    expect(objects.map((o) => String(o.kind)).sort()).to.deep.equal(
      [
        'ClusterRole',
        'ClusterRoleBinding',
        'CustomResourceDefinition',
        'Deployment',
        'Role',
        'RoleBinding',
        'Service',
        'ServiceAccount',
      ].sort(),
    );
    const crd = only(objects, 'CustomResourceDefinition', CRD_NAME);
    expect(at(crd, 'metadata', 'annotations')).to.deep.equal({ 'helm.sh/resource-policy': 'keep' });
    const deployment = only(objects, 'Deployment', 'ltp-lambda-task-pool');
    expect(envOf(deployment)).to.deep.include({ name: 'LEASE_NAME', value: 'ltp-lambda-task-pool' });
    expect(at(deployment, 'spec', 'template', 'spec', 'topologySpreadConstraints'), 'nothing to spread with one replica').to.equal(
      undefined,
    );
  });

  it('names its metrics Service as Kubernetes requires for every release name Helm takes: the longest, dotted, a digit first', async () => {
    // 53 characters is Helm's own limit; Helm also takes dots and a leading digit, which a Service name may not hold.
    for (const release of ['orders-platform-production-eu-west-1-controller-abcde', 'team.ltp', '1st']) {
      const { code, stderr, objects } = await render({ metrics: { serviceMonitor: { enabled: true } } }, release);
      expect(code, stderr).to.equal(0);
      const services = objects.filter((o) => o.kind === 'Service').map((o) => String(at(o, 'metadata', 'name')));
      expect(services, release).to.have.length(1);
      for (const name of services) {
        expect(name, `Service ${name} of release ${release}`).to.match(/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/);
        expect(name.endsWith('-metrics'), name).to.equal(true);
      }
    }
  });

  it("the CRD it renders is crds/lambdataskpools.yaml (the chart's copy is byte-identical), plus the release's labels", async () => {
    const [source, copy] = await Promise.all([readFile(CRD_FILE), readFile(CHART_CRD_FILE)]);
    expect(copy.equals(source), `${CHART_CRD_FILE} differs from ${CRD_FILE}: copy it`).to.equal(true);
    const sourceCrd: unknown = parse(source.toString());
    if (!isObject(sourceCrd)) throw new Error(`${CRD_FILE} is not a YAML object`);
    const { code, stderr, objects } = await render({ crds: { keep: false } });
    expect(code, stderr).to.equal(0);
    const crd = only(objects, 'CustomResourceDefinition');
    expect(at(crd, 'metadata', 'annotations'), 'crds.keep=false: no keep annotation').to.equal(undefined);
    expect(at(crd, 'metadata', 'labels')).to.include({ 'app.kubernetes.io/instance': 'ltp', 'app.kubernetes.io/managed-by': 'Helm' });
    expect(withoutChartMetadata(crd, sourceCrd)).to.deep.equal(sourceCrd);
    const none = await render({ crds: { enabled: false } });
    expect(none.code, none.stderr).to.equal(0);
    expect(none.objects.filter((o) => o.kind === 'CustomResourceDefinition')).to.deep.equal([]);
  });

  it('with every option on it renders the budget, the monitor, the alerts, the dashboard and the spread as set', async () => {
    const { code, stderr, objects } = await render(EVERY_OPTION_ON);
    expect(code, stderr).to.equal(0);
    const kinds = new Set(objects.map((o) => String(o.kind)));
    for (const kind of ['CustomResourceDefinition', 'Deployment', 'PodDisruptionBudget', 'PodMonitor', 'PrometheusRule', 'ConfigMap']) {
      expect(kinds.has(kind), kind).to.equal(true);
    }
    expect(kinds.has('ServiceMonitor')).to.equal(false);
    const fullname = 'ltp-lambda-task-pool';
    const selector = {
      'app.kubernetes.io/name': 'lambda-task-pool',
      'app.kubernetes.io/instance': 'ltp',
      'app.kubernetes.io/component': 'controller',
    };

    const deployment = only(objects, 'Deployment', fullname);
    expect(at(deployment, 'spec', 'selector', 'matchLabels')).to.deep.equal(selector);
    expect(envOf(deployment)).to.deep.include({ name: 'LEASE_NAME', value: fullname });
    // A CA bundle for the databases' TLS: the volume, its mount beside the chart's /tmp, and the variable.
    expect(at(deployment, 'spec', 'template', 'spec', 'volumes')).to.deep.equal([
      { name: 'tmp', emptyDir: { sizeLimit: '64Mi' } },
      { name: 'rds-ca', configMap: { name: 'rds-ca' } },
    ]);
    expect(at(deployment, 'spec', 'template', 'spec', 'containers', 0, 'volumeMounts')).to.deep.equal([
      { name: 'tmp', mountPath: '/tmp' },
      { name: 'rds-ca', mountPath: '/etc/ssl/rds', readOnly: true },
    ]);
    expect(envOf(deployment)).to.deep.include({ name: 'NODE_EXTRA_CA_CERTS', value: '/etc/ssl/rds/global-bundle.pem' });
    const spread = list(at(deployment, 'spec', 'template', 'spec', 'topologySpreadConstraints'));
    expect(spread.map((c) => at(c, 'topologyKey'))).to.deep.equal(['kubernetes.io/hostname', 'topology.kubernetes.io/zone']);
    for (const c of spread) {
      expect(c).to.deep.include({ maxSkew: 1, whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: selector } });
    }

    const pdb = only(objects, 'PodDisruptionBudget', fullname);
    expect(at(pdb, 'spec')).to.deep.equal({
      maxUnavailable: 1,
      unhealthyPodEvictionPolicy: 'AlwaysAllow',
      selector: { matchLabels: selector },
    });

    const monitor = only(objects, 'PodMonitor', fullname);
    expect(at(monitor, 'metadata', 'labels', 'release')).to.equal('prometheus');
    expect(at(monitor, 'spec', 'selector', 'matchLabels')).to.deep.equal(selector);
    const endpoint = at(monitor, 'spec', 'podMetricsEndpoints', 0);
    expect(endpoint).to.deep.include({ port: 'http', path: '/metrics', interval: '15s', scrapeTimeout: '10s', honorLabels: true });
    expect(at(endpoint, 'relabelings')).to.deep.equal([{ action: 'replace', targetLabel: 'job', replacement: fullname }]);

    const rule = only(objects, 'PrometheusRule', fullname);
    expect(at(rule, 'metadata', 'labels', 'release')).to.equal('prometheus');
    expect(at(rule, 'metadata', 'annotations')).to.deep.equal({ owner: 'platform' });
    const rules = list(at(rule, 'spec', 'groups', 0, 'rules'));
    expect(rules.map((r) => at(r, 'alert'))).to.deep.equal(Object.values(ALERTS));
    for (const r of rules) {
      expect(at(r, 'labels', 'team'), String(at(r, 'alert'))).to.equal('platform');
      expect(at(r, 'labels', 'severity'), String(at(r, 'alert'))).to.be.oneOf(['warning', 'critical']);
      expect(at(r, 'annotations', 'runbook_url')).to.equal('https://runbooks.example/lambda-task-pool');
      expect(String(at(r, 'expr')), String(at(r, 'alert'))).to.contain(`job="${fullname}"`);
    }
    const backlog = rules.find((r) => at(r, 'alert') === ALERTS.backlogNotDraining);
    expect(at(backlog, 'for')).to.equal('20m');
    expect(at(backlog, 'labels')).to.deep.equal({ severity: 'warning', page: 'yes', team: 'platform' });
    expect(String(at(backlog, 'expr')))
      .to.contain('>= 5')
      .and.to.contain('[30m]');

    const dashboard = only(objects, 'ConfigMap', `${fullname}-dashboard`);
    expect(at(dashboard, 'metadata', 'namespace')).to.equal('monitoring');
    expect(at(dashboard, 'metadata', 'labels')).to.include({ grafana_dashboard: '1', team: 'platform' });
    expect(at(dashboard, 'metadata', 'annotations')).to.deep.equal({ grafana_folder: 'Operators' });
    const json: unknown = JSON.parse(String(at(dashboard, 'data', 'lambda-task-pool.json')));
    expect(at(json, 'uid')).to.equal('lambda-task-pool');
    expect(list(at(json, 'panels')).length).to.be.greaterThan(10);

    const crd = only(objects, 'CustomResourceDefinition', CRD_NAME);
    expect(at(crd, 'metadata', 'annotations', 'helm.sh/resource-policy')).to.equal('keep');
  });

  it('an alert can be turned off, a ServiceMonitor used instead, the sidecar label and the Lease name chosen', async () => {
    const { code, stderr, objects } = await render({
      prometheusRule: {
        enabled: true,
        selector: 'job="prometheus-scraped",cluster="eu"',
        alerts: { throttled: { enabled: false }, functionNotReady: { enabled: false } },
      },
      metrics: { serviceMonitor: { enabled: true } },
      grafanaDashboard: { enabled: true, label: 'dashboards', labelValue: 'ltp' },
      leaderElection: { leaseName: 'lambda-task-pool-controller' },
    });
    expect(code, stderr).to.equal(0);
    const rules = list(at(only(objects, 'PrometheusRule'), 'spec', 'groups', 0, 'rules'));
    const names = rules.map((r) => at(r, 'alert'));
    expect(names).to.not.include(ALERTS.throttled).and.to.not.include(ALERTS.functionNotReady);
    expect(names).to.have.lengthOf(Object.keys(ALERTS).length - 2);
    for (const r of rules) expect(String(at(r, 'expr'))).to.contain('job="prometheus-scraped",cluster="eu"');
    // Without the function alert, the pool alert no longer leaves the function's case out.
    expect(
      String(
        at(
          rules.find((r) => at(r, 'alert') === ALERTS.poolNotReady),
          'expr',
        ),
      ),
    ).to.not.contain('ltp_function_ready');
    const monitor = only(objects, 'ServiceMonitor');
    expect(at(monitor, 'spec', 'endpoints', 0)).to.deep.include({ port: 'http', honorLabels: true });
    expect(at(only(objects, 'ConfigMap'), 'metadata', 'labels', 'dashboards')).to.equal('ltp');
    expect(envOf(only(objects, 'Deployment'))).to.deep.include({ name: 'LEASE_NAME', value: 'lambda-task-pool-controller' });
    const leaderRole = only(objects, 'Role', 'ltp-lambda-task-pool-leader-election');
    expect(list(at(leaderRole, 'rules')).map((r) => at(r, 'resourceNames'))).to.deep.include(['lambda-task-pool-controller']);
  });

  it('refuses a ServiceMonitor and a PodMonitor together, and budgets that would block every drain', async () => {
    const both = await render({ podMonitor: { enabled: true }, metrics: { serviceMonitor: { enabled: true } } });
    expect(both.code).to.not.equal(0);
    expect(both.stderr).to.contain('enable metrics.serviceMonitor or podMonitor, not both');
    const all = await render({ replicaCount: 2, podDisruptionBudget: { enabled: true, minAvailable: 2 } });
    expect(all.code).to.not.equal(0);
    expect(all.stderr).to.contain('would block every node drain');
    const none = await render({ replicaCount: 2, podDisruptionBudget: { enabled: true, maxUnavailable: 0 } });
    expect(none.code).to.not.equal(0);
    expect(none.stderr).to.contain('would block every node drain');
    const twice = await render({ replicaCount: 3, podDisruptionBudget: { enabled: true, minAvailable: 1, maxUnavailable: 1 } });
    expect(twice.code).to.not.equal(0);
    expect(twice.stderr).to.contain('set minAvailable or maxUnavailable, not both');
    const percent = await render({ replicaCount: 3, podDisruptionBudget: { enabled: true, minAvailable: '50%' } });
    expect(percent.code, percent.stderr).to.equal(0);
    expect(at(only(percent.objects, 'PodDisruptionBudget'), 'spec', 'minAvailable')).to.equal('50%');
    // Kubernetes rounds a percentage up: 60% of 2 pods is 2, 1% of 1 pod is 1. Both allow no eviction.
    for (const [replicaCount, minAvailable] of [
      [2, '60%'],
      [1, '1%'],
    ] as const) {
      const rounded = await render({ replicaCount, podDisruptionBudget: { enabled: true, minAvailable } });
      expect(rounded.code, `${minAvailable} of ${replicaCount}`).to.not.equal(0);
      expect(rounded.stderr).to.contain('would block every node drain');
    }
  });

  it('topology spread: none of its own with one replica or when turned off; your constraints replace the default', async () => {
    const off = await render({ replicaCount: 2, topologySpread: { defaultConstraints: false } });
    expect(off.code, off.stderr).to.equal(0);
    expect(at(only(off.objects, 'Deployment'), 'spec', 'template', 'spec', 'topologySpreadConstraints')).to.equal(undefined);
    const own = await render({
      replicaCount: 3,
      topologySpreadConstraints: [{ maxSkew: 2, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'DoNotSchedule' }],
    });
    expect(own.code, own.stderr).to.equal(0);
    expect(at(only(own.objects, 'Deployment'), 'spec', 'template', 'spec', 'topologySpreadConstraints')).to.deep.equal([
      {
        maxSkew: 2,
        topologyKey: 'topology.kubernetes.io/zone',
        whenUnsatisfiable: 'DoNotSchedule',
        labelSelector: {
          matchLabels: {
            'app.kubernetes.io/name': 'lambda-task-pool',
            'app.kubernetes.io/instance': 'ltp',
            'app.kubernetes.io/component': 'controller',
          },
        },
      },
    ]);
  });
});

describe('Helm chart lambda-task-pool (real kube-apiserver)', function () {
  const suffix = randomBytes(3).toString('hex');
  const namespace = `ltp-helm-${suffix}`;
  const scopedNamespace = `ltp-helm-${suffix}-scoped`;
  const watched = [`ltp-helm-${suffix}-a`, `ltp-helm-${suffix}-b`];
  const unwatched = `ltp-helm-${suffix}-c`;
  const release = `ltp-${suffix}`;
  const neighbour = `ltp-${suffix}-n`;
  const scopedRelease = `ltp-scoped-${suffix}`;
  const fullname = `${release}-lambda-task-pool`;
  const neighbourFullname = `${neighbour}-lambda-task-pool`;
  const scopedFullname = `${scopedRelease}-lambda-task-pool`;
  const serviceAccount = `system:serviceaccount:${namespace}:${fullname}`;
  const neighbourServiceAccount = `system:serviceaccount:${namespace}:${neighbourFullname}`;
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

  it('helm install (the CRD managed outside the chart) creates the Deployment, ServiceAccount and RBAC without waiting for pods', async () => {
    // The shared control plane applied crds/lambdataskpools.yaml itself, as a GitOps user would: crds.enabled=false.
    const result = await helm([
      'install',
      release,
      CHART,
      '-n',
      namespace,
      '--set',
      'database.secretRef.name=db',
      '--set',
      'crds.enabled=false',
      '--wait=false',
    ]);
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
    // The CRD was already there, and the release left it alone: Helm does not own it.
    const crd: unknown = JSON.parse(ok(await kubectl(['get', 'crd', CRD_NAME, '-o', 'json']), 'get crd'));
    expect(at(crd, 'metadata', 'annotations', 'meta.helm.sh/release-name')).to.equal(undefined);
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
      ['get', 'secrets', elsewhere],
      ['create', 'events', elsewhere],
      ['get', `leases.coordination.k8s.io/${fullname}`, namespace],
      ['create', 'leases.coordination.k8s.io', namespace],
      ['update', `leases.coordination.k8s.io/${fullname}`, namespace],
    ];
    for (const [verb, resource, ns, subresource] of checks) {
      expect(
        await canI(serviceAccount, verb, resource, ns, subresource),
        `${verb} ${resource}${subresource ? '/' + subresource : ''} in ${ns}`,
      ).to.equal(true);
    }
  });

  it("the controller's ServiceAccount cannot list or watch secrets, delete pools, create pods, or touch leases elsewhere", async () => {
    const checks: Array<[verb: string, resource: string, ns: string, subresource?: string]> = [
      ['list', 'secrets', unwatched],
      ['watch', 'secrets', unwatched],
      ['list', 'secrets', namespace],
      ['delete', POOLS, unwatched],
      ['update', POOLS, unwatched, 'finalizers'],
      ['create', POOLS, unwatched],
      ['create', 'pods', namespace],
      ['create', 'pods', unwatched],
      ['delete', 'leases.coordination.k8s.io', namespace],
      ['get', 'leases.coordination.k8s.io', unwatched],
      ['create', 'leases.coordination.k8s.io', unwatched],
      ['update', 'leases.coordination.k8s.io', unwatched],
      ['create', 'secrets', namespace],
      ['update', POOLS, unwatched],
      ['update', 'leases.coordination.k8s.io/lambda-task-pool-controller', namespace],
      ['get', 'leases.coordination.k8s.io/another-controller', namespace],
      // What the README says the chart does not grant.
      ['get', POOLS, unwatched, 'status'],
      ['update', POOLS, unwatched, 'status'],
      ['patch', 'events', unwatched],
      ['create', 'events.events.k8s.io', unwatched],
    ];
    for (const [verb, resource, ns, subresource] of checks) {
      expect(
        await canI(serviceAccount, verb, resource, ns, subresource),
        `${verb} ${resource}${subresource ? '/' + subresource : ''} in ${ns}`,
      ).to.equal(false);
    }
  });

  it('a second release in the same namespace elects its leader on a Lease of its own, and cannot touch the first one', async () => {
    const result = await helm(['install', neighbour, CHART, '-n', namespace, '--set', 'crds.enabled=false', '--wait=false']);
    expect(result.code, result.stderr).to.equal(0);
    releases.push({ name: neighbour, namespace });
    const deployment: unknown = JSON.parse(
      ok(await kubectl(['get', 'deployment', neighbourFullname, '-n', namespace, '-o', 'json']), 'get deployment'),
    );
    expect(list(at(deployment, 'spec', 'template', 'spec', 'containers', 0, 'env'))).to.deep.include({
      name: 'LEASE_NAME',
      value: neighbourFullname,
    });
    expect(await canI(neighbourServiceAccount, 'update', `leases.coordination.k8s.io/${neighbourFullname}`, namespace)).to.equal(true);
    expect(await canI(neighbourServiceAccount, 'update', `leases.coordination.k8s.io/${fullname}`, namespace)).to.equal(false);
    expect(await canI(neighbourServiceAccount, 'get', `leases.coordination.k8s.io/${fullname}`, namespace)).to.equal(false);
    expect(await canI(serviceAccount, 'update', `leases.coordination.k8s.io/${neighbourFullname}`, namespace)).to.equal(false);
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
      '--set',
      'crds.enabled=false',
      '--wait=false',
    ]);
    expect(result.code, result.stderr).to.equal(0);
    releases.push({ name: scopedRelease, namespace: scopedNamespace });

    for (const ns of watched) {
      expect(await canI(scopedServiceAccount, 'get', 'secrets', ns), `get secrets in ${ns}`).to.equal(true);
      expect(await canI(scopedServiceAccount, 'watch', POOLS, ns), `watch pools in ${ns}`).to.equal(true);
      expect(await canI(scopedServiceAccount, 'patch', POOLS, ns, 'status'), `patch pools/status in ${ns}`).to.equal(true);
      expect(await canI(scopedServiceAccount, 'create', 'events', ns), `create events in ${ns}`).to.equal(true);
      expect(await canI(scopedServiceAccount, 'list', 'secrets', ns), `list secrets in ${ns}`).to.equal(false);
    }
    for (const ns of [unwatched, scopedNamespace, namespace]) {
      expect(await canI(scopedServiceAccount, 'get', 'secrets', ns), `get secrets in ${ns}`).to.equal(false);
      expect(await canI(scopedServiceAccount, 'list', POOLS, ns), `list pools in ${ns}`).to.equal(false);
      expect(await canI(scopedServiceAccount, 'create', 'events', ns), `create events in ${ns}`).to.equal(false);
    }
    // Leader election still happens in the release namespace, on the release's own Lease.
    expect(await canI(scopedServiceAccount, 'update', `leases.coordination.k8s.io/${scopedFullname}`, scopedNamespace)).to.equal(true);
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
    for (const r of [release, neighbour]) {
      const left = await kubectl([
        'get',
        'deployment,serviceaccount,role,rolebinding,service',
        '-n',
        namespace,
        '-l',
        `app.kubernetes.io/instance=${r}`,
        '-o',
        'name',
      ]);
      expect(left.stdout.trim(), `objects of ${r} left`).to.equal('');
    }
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

// The CRD's life through the chart needs a cluster of its own: the shared control plane's CRD serves every
// other suite, and this one installs, changes and finally deletes it.
describe('Helm chart lambda-task-pool: the CRD through the chart (crds.enabled, crds.keep; own kube-apiserver)', function () {
  this.timeout(120_000);
  const release = 'ltp';
  const namespace = 'ltp-system';
  const poolNamespace = 'team-a';
  let plane: ControlPlane | undefined;
  let workDir = '';
  const k = async (args: string[], input?: string) => {
    if (!plane) throw new Error('no control plane');
    return kubectl(args, input === undefined ? { kubeconfig: plane.kubeconfigPath } : { kubeconfig: plane.kubeconfigPath, input });
  };
  const h = async (args: string[]) => {
    if (!plane) throw new Error('no control plane');
    return helm([...args, '-n', namespace], { kubeconfig: plane.kubeconfigPath });
  };
  const liveCrd = async (): Promise<unknown> => {
    const result = await k(['get', 'crd', CRD_NAME, '-o', 'json', '--ignore-not-found']);
    ok(result, 'get crd');
    return result.stdout.trim() === '' ? undefined : (JSON.parse(result.stdout) as unknown);
  };
  const established = async (): Promise<void> => {
    ok(await k(['wait', '--for=condition=Established', `crd/${CRD_NAME}`, '--timeout=30s']), 'wait for the CRD');
  };
  const pool = JSON.stringify({
    apiVersion: 'lambda.taskpool.io/v1alpha1',
    kind: 'LambdaTaskPool',
    metadata: { name: 'thumbnails', namespace: poolNamespace },
    spec: { function: { name: 'thumbnails' }, queue: 'thumbnails' },
  });

  before(async function () {
    this.timeout(180_000);
    await sharedControlPlane(); // the tools
    plane = await startControlPlane();
    workDir = await mkdtemp(path.join(os.tmpdir(), 'ltp-helm-crd-'));
    ok(await k(['create', 'namespace', namespace]), 'create namespace');
    ok(await k(['create', 'namespace', poolNamespace]), 'create namespace');
  });

  after(async function () {
    this.timeout(60_000);
    await plane?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it('helm install into a cluster without the CRD installs it, kept on uninstall, and pools can be created', async () => {
    expect(await liveCrd(), 'a fresh cluster').to.equal(undefined);
    ok(await h(['install', release, CHART, '--wait=false']), 'helm install');
    await established();
    const crd = await liveCrd();
    expect(at(crd, 'metadata', 'annotations')).to.include({
      'helm.sh/resource-policy': 'keep',
      'meta.helm.sh/release-name': release,
      'meta.helm.sh/release-namespace': namespace,
    });
    ok(await k(['apply', '-f', '-'], pool), 'create a pool');
  });

  it('helm upgrade to a chart whose CRD changed upgrades the CRD', async () => {
    const next = path.join(workDir, 'next-chart');
    await cp(CHART, next, { recursive: true });
    const crdFile = path.join(next, 'files', 'crds', 'lambdataskpools.yaml');
    const text = await readFile(crdFile, 'utf8');
    expect(text).to.contain('description: The task queue this pool serves.');
    await writeFile(
      crdFile,
      text.replace('description: The task queue this pool serves.', 'description: The task queue this pool serves (next).'),
    );
    const chartFile = path.join(next, 'Chart.yaml');
    await writeFile(chartFile, (await readFile(chartFile, 'utf8')).replace(/^version: .*$/m, 'version: 99.0.0'));

    ok(await h(['upgrade', release, next, '--wait=false']), 'helm upgrade');
    const crd = await liveCrd();
    expect(at(crd, 'metadata', 'labels', 'helm.sh/chart')).to.equal('lambda-task-pool-99.0.0');
    const columns = list(at(crd, 'spec', 'versions', 0, 'additionalPrinterColumns'));
    expect(columns.map((c) => at(c, 'description'))).to.include('The task queue this pool serves (next).');
    ok(await k(['get', 'ltp', 'thumbnails', '-n', poolNamespace]), 'the pool is still there');
  });

  it('helm upgrade with crds.enabled=false, and then helm uninstall, leave the kept CRD and its pools in place', async () => {
    ok(await h(['upgrade', release, CHART, '--set', 'crds.enabled=false', '--wait=false']), 'helm upgrade crds.enabled=false');
    expect(await liveCrd(), 'the CRD after an upgrade that stopped rendering it').to.not.equal(undefined);
    ok(await h(['upgrade', release, CHART, '--wait=false']), 'helm upgrade crds.enabled=true (takes the CRD back)');
    ok(await h(['uninstall', release, '--wait']), 'helm uninstall');
    expect(await liveCrd(), 'the CRD after uninstall').to.not.equal(undefined);
    ok(await k(['get', 'ltp', 'thumbnails', '-n', poolNamespace]), 'the pool is still there');
  });

  it('with crds.keep=false, helm uninstall deletes the CRD and every pool with it', async () => {
    // The CRD kept by the last uninstall would be adopted with its keep annotation (Helm merges into what it finds
    // and leaves annotations it does not render): delete it first, as the chart README says.
    ok(await k(['delete', 'crd', CRD_NAME, '--wait']), 'delete the kept CRD');
    ok(await h(['install', release, CHART, '--set', 'crds.keep=false', '--wait=false']), 'helm install crds.keep=false');
    expect(at(await liveCrd(), 'metadata', 'annotations', 'helm.sh/resource-policy')).to.equal(undefined);
    ok(await h(['uninstall', release, '--wait']), 'helm uninstall');
    const deadline = Date.now() + 30_000;
    while ((await liveCrd()) !== undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    expect(await liveCrd(), 'the CRD after uninstall with crds.keep=false').to.equal(undefined);
  });

  it('a CRD applied with kubectl (or by an earlier chart) is refused until helm install --take-ownership adopts it', async () => {
    ok(await k(['apply', '--server-side', '-f', CRD_FILE]), 'kubectl apply crds/lambdataskpools.yaml');
    await established();
    const refused = await h(['install', release, CHART, '--wait=false']);
    expect(refused.code, 'helm install over a CRD it does not own').to.not.equal(0);
    expect(refused.stderr).to.contain('cannot be imported into the current release');
    await h(['uninstall', release]); // the failed release, if helm recorded one
    ok(await h(['install', release, CHART, '--take-ownership', '--wait=false']), 'helm install --take-ownership');
    expect(at(await liveCrd(), 'metadata', 'annotations')).to.include({
      'helm.sh/resource-policy': 'keep',
      'meta.helm.sh/release-name': release,
    });
  });
});
