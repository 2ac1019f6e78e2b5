// The controller image, built here from the Dockerfile, installed by `helm install` on a real node: a kubelet
// and containerd on this machine run the Pods, which reach the API server through the `kubernetes` Service
// with their ServiceAccount, Postgres and the local Lambda runtime on the node's address.
// See docs/node-test.md. Needs root; provisions (and caches) everything else on the first run.
//
//   bash scripts/with-node24.sh mocha 'test/node/**/*.test.ts'
//
// What the Pods looked like (kubectl get pods -o wide, describe, logs) is written to $LTP_NODE_ARTIFACTS
// (default /tmp/ltp-node-test) at each step, with the daemons' logs.
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { countTasksByState } from '../../src/store/task-store.ts';
import { createLogger } from '../../src/ops/logger.ts';
import { freshDatabase, type TestDatabase } from '../support/postgres.ts';
import { E2E_WORKER, eventually } from '../support/system.ts';
import { startLambdaRuntime, type LambdaRuntime } from './support/local.ts';
import {
  checkPrerequisites,
  NETWORK,
  provision,
  REPO_ROOT,
  startNodeCluster,
  type NodeCluster,
  type Provisioned,
} from './support/node-cluster.ts';
import { forwardTcp, type TcpForward } from './support/tcp-forward.ts';

const ARTIFACTS = process.env.LTP_NODE_ARTIFACTS ?? '/tmp/ltp-node-test';
const RELEASE = 'ltp';
const RELEASE_NS = 'ltp-system';
const POOL_NS = 'ltp-work';
const SELECTOR = `app.kubernetes.io/instance=${RELEASE}`;
// The chart names the Lease after the release (LEASE_NAME), so that two releases in a namespace do not share one.
const LEASE = `${RELEASE}-lambda-task-pool`;
const CHART = path.join(REPO_ROOT, 'charts', 'lambda-task-pool');

interface PodView {
  metadata: { name: string; deletionTimestamp?: string };
  spec: {
    securityContext?: Record<string, unknown>;
    containers: Array<{
      env?: Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }>;
      securityContext?: Record<string, unknown>;
      readinessProbe?: { httpGet?: { path: string } };
      livenessProbe?: { httpGet?: { path: string } };
      image: string;
    }>;
  };
  status: {
    phase?: string;
    podIP?: string;
    conditions?: Array<{ type: string; status: string }>;
    containerStatuses?: Array<{ ready: boolean; restartCount: number }>;
  };
}

const progress = (line: string) => process.stderr.write(`      [node] ${line}\n`);

describe('the controller image on a real node, installed with helm (kubelet + containerd)', function () {
  this.timeout(10 * 60_000);
  let provisioned: Provisioned;
  let cluster: NodeCluster | undefined;
  let starting: Promise<NodeCluster> | undefined;
  let database: TestDatabase | undefined;
  let forward: TcpForward | undefined;
  let lambda: LambdaRuntime | undefined;
  let databaseUrlInCluster = '';

  const kubectl = async (args: string[], input?: string) => {
    if (!cluster) throw new Error('no cluster');
    return cluster.kubectl(args, input === undefined ? {} : { input });
  };
  const mustKubectl = async (args: string[], input?: string) => {
    const result = await kubectl(args, input);
    if (result.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${result.stderr}`);
    return result.stdout;
  };
  const controllerPods = async (): Promise<PodView[]> =>
    (JSON.parse(await mustKubectl(['get', 'pods', '-n', RELEASE_NS, '-l', SELECTOR, '-o', 'json'])) as { items: PodView[] }).items;
  const readyPods = async () =>
    (await controllerPods()).filter(
      (p) => !p.metadata.deletionTimestamp && p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
    );
  const leaseHolder = async () =>
    (await kubectl(['get', 'lease', LEASE, '-n', RELEASE_NS, '-o', 'jsonpath={.spec.holderIdentity}'])).stdout.trim();
  const installArgs = (lambdaEndpoint: string, provisionedImage: string) => {
    const [repository, tag] = splitImage(provisionedImage);
    return [
      '--namespace',
      RELEASE_NS,
      '--set',
      'replicaCount=2',
      '--set',
      'leaderElection.enabled=true',
      '--set',
      `image.repository=${repository}`,
      '--set',
      `image.tag=${tag}`,
      '--set',
      'image.pullPolicy=Never',
      '--set',
      'database.secretRef.name=ltp-db',
      '--set',
      'aws.credentialsSecret=ltp-aws',
      '--set',
      `lambda.endpoint=${lambdaEndpoint}`,
      '--set',
      `watchNamespaces={${POOL_NS}}`,
    ];
  };

  /** kubectl get pods -o wide, describe pod and logs of the controller Pods, to a folder under ARTIFACTS. */
  const record = async (stage: string) => {
    if (!cluster) return;
    const dir = path.join(ARTIFACTS, stage);
    await mkdir(dir, { recursive: true });
    const wide = await kubectl(['get', 'pods', '-n', RELEASE_NS, '-o', 'wide']);
    await writeFile(path.join(dir, 'get-pods-wide.txt'), wide.stdout + wide.stderr);
    const describe = await kubectl(['describe', 'pods', '-n', RELEASE_NS, '-l', SELECTOR]);
    await writeFile(path.join(dir, 'describe-pods.txt'), describe.stdout + describe.stderr);
    for (const pod of await controllerPods().catch(() => [])) {
      const logs = await kubectl(['logs', '-n', RELEASE_NS, pod.metadata.name]);
      await writeFile(path.join(dir, `logs-${pod.metadata.name}.txt`), logs.stdout + logs.stderr);
    }
    progress(`${stage}: kubectl get pods -o wide (describe and logs in ${dir})\n${indent(wide.stdout.trim())}`);
  };

  before(async function () {
    this.timeout(45 * 60_000);
    checkPrerequisites();
    await rm(ARTIFACTS, { recursive: true, force: true });
    await mkdir(ARTIFACTS, { recursive: true });
    const started = Date.now();
    provisioned = await provision(progress);
    progress(
      `provisioned in ${Math.round((Date.now() - started) / 1000)} s; image ${provisioned.image.image}, ${Math.round(provisioned.image.bytes / 1024 / 1024)} MiB`,
    );
    const clusterStarted = Date.now();
    starting = startNodeCluster({ provisioned, logDir: path.join(ARTIFACTS, 'daemons'), log: progress });
    cluster = await starting;
    await cluster.importImage(provisioned.image.archive);
    progress(`node ready in ${Math.round((Date.now() - clusterStarted) / 1000)} s`);

    database = await freshDatabase('node');
    await database.db.query(
      'CREATE TABLE public.executions (task_id bigint NOT NULL, invocation_id bigint NOT NULL, at timestamptz NOT NULL DEFAULT now())',
    );
    const local = new URL(database.url);
    forward = await forwardTcp({ listenHost: NETWORK.nodeIp, targetHost: local.hostname, targetPort: Number(local.port) });
    const inCluster = new URL(database.url);
    inCluster.hostname = NETWORK.nodeIp;
    inCluster.port = String(forward.port);
    databaseUrlInCluster = inCluster.toString();
    const runtimeLog = createWriteStream(path.join(ARTIFACTS, 'lambda-runtime.log'), { flags: 'a' });
    lambda = await startLambdaRuntime({
      host: NETWORK.nodeIp,
      seed: 13,
      concurrencyLimit: 50,
      logger: createLogger({ stream: runtimeLog, level: 'info', component: 'lambda-runtime' }),
      functions: [
        {
          name: 'e2e-worker',
          handler: E2E_WORKER,
          timeoutSeconds: 60,
          environment: { DATABASE_URL: database.url, LTP_LOG_LEVEL: 'warn' },
          async: { startDelayMs: { min: 200, max: 1_000 } },
        },
      ],
    });
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') await record(`failed-${slug(this.currentTest.title)}`).catch(() => undefined);
  });

  after(async function () {
    this.timeout(5 * 60_000);
    // A start still under way (the hook failed for another reason): wait for it, so it is stopped too.
    cluster ??= await starting?.catch(() => undefined);
    const errors: unknown[] = [];
    for (const step of [() => lambda?.stop(), () => forward?.close(), () => database?.close(), () => cluster?.stop()]) {
      try {
        await step();
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length > 0) throw new Error(errors.map(String).join('\n'));
  });

  it('helm install runs two controller Pods from the built image that become Ready through their probes', async () => {
    await mustKubectl(['create', 'namespace', RELEASE_NS]);
    await mustKubectl(['create', 'namespace', POOL_NS]);
    await mustKubectl(['create', 'secret', 'generic', 'ltp-db', '-n', RELEASE_NS, `--from-literal=url=${databaseUrlInCluster}`]);
    // The local runtime accepts any credentials; the SDK needs some.
    await mustKubectl([
      'create',
      'secret',
      'generic',
      'ltp-aws',
      '-n',
      RELEASE_NS,
      '--from-literal=AWS_ACCESS_KEY_ID=node-test',
      '--from-literal=AWS_SECRET_ACCESS_KEY=node-test',
    ]);
    if (!cluster || !lambda) throw new Error('no cluster');
    const install = await cluster.helm([
      'install',
      RELEASE,
      CHART,
      ...installArgs(lambda.endpoint, provisioned.image.image),
      '--wait',
      '--timeout',
      '5m',
    ]);
    expect(install.code, `helm install: ${install.stderr}`).to.equal(0);

    const pods = await eventually(
      'two Ready controller Pods',
      async () => {
        const ready = await readyPods();
        return ready.length === 2 ? ready : undefined;
      },
      180_000,
      1_000,
    );
    await record('1-installed');
    for (const pod of pods) {
      const container = pod.spec.containers[0];
      expect(container?.image).to.equal(provisioned.image.image);
      expect(container?.readinessProbe?.httpGet?.path).to.equal('/readyz');
      expect(container?.livenessProbe?.httpGet?.path).to.equal('/healthz');
      expect(pod.status.containerStatuses?.[0]?.restartCount, `${pod.metadata.name} restarts`).to.equal(0);
      expect(pod.status.podIP).to.match(/^10\.244\.0\./);
    }
  });

  it('the Pods run as non-root on a read-only root filesystem and take DATABASE_URL from the Secret', async () => {
    const want = sha256(databaseUrlInCluster);
    for (const pod of await readyPods()) {
      const env = pod.spec.containers[0]?.env ?? [];
      expect(env.find((e) => e.name === 'DATABASE_URL')?.valueFrom?.secretKeyRef).to.deep.equal({ name: 'ltp-db', key: 'url' });
      expect(pod.spec.containers[0]?.securityContext).to.include({ readOnlyRootFilesystem: true, runAsNonRoot: true, runAsUser: 65532 });
      // Inside the running container (kubectl exec: API server -> kubelet -> containerd).
      const probe = [
        'const fs = require("fs"), crypto = require("crypto");',
        'const tryWrite = (f) => { try { fs.writeFileSync(f, "x"); fs.unlinkSync(f); return "ok"; } catch (e) { return e.code; } };',
        'console.log(JSON.stringify({ uid: process.getuid(), gid: process.getgid(), root: tryWrite("/app/probe"), tmp: tryWrite("/tmp/probe"),',
        '  db: crypto.createHash("sha256").update(process.env.DATABASE_URL || "").digest("hex"),',
        '  token: fs.existsSync("/var/run/secrets/kubernetes.io/serviceaccount/token"), service: process.env.KUBERNETES_SERVICE_HOST }));',
      ].join(' ');
      const out = await mustKubectl(['exec', '-n', RELEASE_NS, pod.metadata.name, '--', 'node', '-e', probe]);
      const seen = JSON.parse(out.trim()) as Record<string, unknown>;
      expect(seen, pod.metadata.name).to.deep.equal({
        uid: 65532,
        gid: 65532,
        root: 'EROFS',
        tmp: 'ok',
        db: want,
        token: true,
        service: NETWORK.kubernetesServiceIp,
      });
    }
  });

  it('a pool applied with kubectl dispatches tasks to the local Lambda runtime until every task is done', async () => {
    if (!database || !lambda) throw new Error('no system');
    const pool = {
      apiVersion: 'lambda.taskpool.io/v1alpha1',
      kind: 'LambdaTaskPool',
      metadata: { name: 'node-pool', namespace: POOL_NS },
      spec: { function: { name: 'e2e-worker' }, queue: 'node', maxConcurrency: 5, tasksPerInvocation: 2 },
    };
    await mustKubectl(['apply', '-f', '-'], JSON.stringify(pool));
    await eventually(
      'the pool to be Ready',
      async () =>
        (await kubectl(['get', 'ltp', 'node-pool', '-n', POOL_NS, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}']))
          .stdout === 'True',
      120_000,
      1_000,
    );
    await enqueue(database, 'node', 20);
    await eventually('all 20 tasks done', async () => (await countTasksByState(database!.db, 'node')).done === 20, 180_000, 1_000);
    const executions = await database.db.query<{ n: number; distinct: number }>(
      `SELECT count(*)::int AS n, count(DISTINCT task_id)::int AS distinct FROM public.executions`,
    );
    expect(executions.rows[0]).to.deep.equal({ n: 20, distinct: 20 });
    expect(lambda.stats('e2e-worker').accepted, 'invocations the runtime accepted').to.be.at.least(10);
    const table = await mustKubectl(['get', 'ltp', '-n', POOL_NS]);
    progress(`kubectl get ltp -n ${POOL_NS}\n${indent(table.trim())}`);
    await record('2-dispatched');
  });

  it('kubectl logs shows JSON lines, and the leader says it leads', async () => {
    const holder = await leaseHolder();
    const pods = await readyPods();
    expect(pods.map((p) => p.metadata.name)).to.include(holder);
    for (const pod of pods) {
      const logs = await mustKubectl(['logs', '-n', RELEASE_NS, pod.metadata.name]);
      const lines = logs.split('\n').filter((l) => l.trim() !== '');
      expect(lines.length, `log lines of ${pod.metadata.name}`).to.be.greaterThan(0);
      for (const line of lines) {
        const parsed = parseJson(line);
        expect(parsed, `a JSON log line from ${pod.metadata.name}: ${line}`).to.be.an('object');
        expect(parsed).to.have.property('level');
        expect(parsed).to.have.property('message');
      }
      if (pod.metadata.name === holder) expect(logs).to.match(/lead/i);
    }
  });

  it('deleting the leader Pod hands the Lease to another Pod, which carries on dispatching', async () => {
    if (!database) throw new Error('no database');
    const leader = await leaseHolder();
    const other = (await readyPods()).map((p) => p.metadata.name).find((n) => n !== leader);
    expect(other, 'a standby Pod').to.be.a('string');
    await mustKubectl(['delete', 'pod', leader, '-n', RELEASE_NS, '--wait=false']);
    const started = Date.now();
    // The standby usually takes it, but the Pod the Deployment starts in the deleted one's place may be first
    // to find the Lease free: either is a correct hand-over.
    const next = await eventually(
      `the Lease to pass from ${leader} to another Pod`,
      async () => {
        const holder = await leaseHolder();
        return holder !== '' && holder !== leader ? holder : undefined;
      },
      90_000,
      500,
    );
    progress(
      `the Lease passed from ${leader} to ${next}${next === other ? ' (the standby)' : ' (the replacement Pod)'} in ${Date.now() - started} ms`,
    );
    await enqueue(database, 'node', 10);
    await eventually('the 10 new tasks done', async () => (await countTasksByState(database!.db, 'node')).done === 30, 180_000, 1_000);
    await eventually(
      'two Ready Pods again (the Deployment replaced the deleted one)',
      async () => (await readyPods()).length === 2 || undefined,
      180_000,
      1_000,
    );
    await record('3-after-leader-deleted');
  });

  it('helm upgrade to a changed value rolls the Pods, and the new ones carry on', async () => {
    if (!cluster || !lambda || !database) throw new Error('no system');
    const before = new Set((await controllerPods()).map((p) => p.metadata.name));
    const upgrade = await cluster.helm([
      'upgrade',
      RELEASE,
      CHART,
      ...installArgs(lambda.endpoint, provisioned.image.image),
      '--set',
      'logLevel=debug',
      '--wait',
      '--timeout',
      '5m',
    ]);
    expect(upgrade.code, `helm upgrade: ${upgrade.stderr}`).to.equal(0);
    const rolled = await eventually(
      'two new Ready Pods and none of the old ones',
      async () => {
        const pods = await controllerPods();
        const ready = await readyPods();
        return pods.every((p) => !before.has(p.metadata.name)) && ready.length === 2 ? ready : undefined;
      },
      240_000,
      1_000,
    );
    for (const pod of rolled) {
      expect(pod.spec.containers[0]?.env?.find((e) => e.name === 'LTP_LOG_LEVEL')?.value).to.equal('debug');
    }
    await eventually(
      'a new Pod to hold the Lease',
      async () => rolled.map((p) => p.metadata.name).includes(await leaseHolder()),
      90_000,
      500,
    );
    await enqueue(database, 'node', 6);
    await eventually('the 6 new tasks done', async () => (await countTasksByState(database!.db, 'node')).done === 36, 180_000, 1_000);
    await record('4-upgraded');
  });

  it('helm uninstall leaves no Pod behind', async () => {
    if (!cluster) throw new Error('no cluster');
    // The pool goes first, while a controller is there to remove its finalizer.
    await mustKubectl(['delete', 'ltp', 'node-pool', '-n', POOL_NS, '--timeout=60s']);
    const uninstall = await cluster.helm(['uninstall', RELEASE, '--namespace', RELEASE_NS, '--wait', '--timeout', '3m']);
    expect(uninstall.code, `helm uninstall: ${uninstall.stderr}`).to.equal(0);
    await eventually('no controller Pod left', async () => (await controllerPods()).length === 0, 120_000, 1_000);
    const left = await mustKubectl(['get', 'deployments,replicasets,pods', '-n', RELEASE_NS, '-o', 'name']);
    expect(left.trim()).to.equal('');
  });
});

async function enqueue(database: TestDatabase, queue: string, n: number): Promise<void> {
  await database.db.query(
    `INSERT INTO ltp.tasks (queue, payload) SELECT $1, jsonb_build_object('ms', 200) FROM generate_series(1, $2::int)`,
    [queue, n],
  );
}

function splitImage(ref: string): [string, string] {
  const at = ref.lastIndexOf(':');
  return [ref.slice(0, at), ref.slice(at + 1)];
}

function sha256(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}

function parseJson(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    return undefined;
  }
}

function slug(title: string): string {
  return title
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .slice(0, 60);
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `        ${l}`)
    .join('\n');
}
