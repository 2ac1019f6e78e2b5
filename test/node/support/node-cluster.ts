// A real single-node Kubernetes cluster on this machine, for the node test (docs/node-test.md):
//   etcd, kube-apiserver, kube-controller-manager and kube-scheduler (the control plane),
//   containerd + runc with the CNI bridge, host-local, portmap and loopback plugins (the container runtime),
//   kubelet and kube-proxy (the node), all built from the pinned Kubernetes release or taken from Debian.
//
// The node's address sits on a bridge of its own (host-setup.sh); the API server listens there, so pods reach
// it through the `kubernetes` Service (kube-proxy's iptables rules) with their ServiceAccount token. Pods get
// routes to the node and to the Service range only: nothing they send can leave the machine.
// stop() deletes every pod, stops every daemon, then host-cleanup.sh removes what is left and fails, naming
// it, when something (a process, a mount, a network namespace, an iptables chain) cannot be removed.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, killOnExit, waitForExit } from './local.ts';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const ENV_DIR = path.join(REPO_ROOT, 'test', 'env', 'node');

/** The pod network: the node's address on its bridge, the pods' subnet and the Service range. */
export const NETWORK = {
  bridge: 'ltpbr0',
  nodeIp: '10.244.0.1',
  nodeCidr: '10.244.0.1/24',
  podSubnet: '10.244.0.0/24',
  serviceRange: '10.96.0.0/24',
  kubernetesServiceIp: '10.96.0.1',
} as const;
export const NODE_NAME = 'ltp-node';
const CGROUP_ROOT = 'ltp-node';

export interface Provisioned {
  controlPlaneBin: string;
  nodeBin: string;
  pauseArchive: string;
  pauseImage: string;
  image: { archive: string; image: string; bytes: number; built: boolean };
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface NodeCluster {
  dir: string;
  server: string;
  kubeconfigPath: string;
  /** Where the daemons' logs are written (kept after stop). */
  logDir: string;
  kubectl(args: string[], options?: { input?: string }): Promise<CommandResult>;
  helm(args: string[]): Promise<CommandResult>;
  /** `ctr -n k8s.io images import`: makes an image archive available to the kubelet. */
  importImage(archive: string): Promise<void>;
  stop(): Promise<void>;
}

/** Runs test/env/node/provision.sh: installs and builds what is missing (cached after), returns the paths. */
export async function provision(log: (line: string) => void): Promise<Provisioned> {
  const { stdout } = await runLogged('bash', [path.join(ENV_DIR, 'provision.sh')], log, 'provisioning the node test');
  const last = stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(last) as Provisioned;
}

/** What the node test cannot do without, said up front rather than as a confusing failure later. */
export function checkPrerequisites(): void {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push("root (the kubelet, containerd, the pod network and buildah's chroot isolation need it)");
  if (process.platform !== 'linux') missing.push('Linux');
  if (!existsSync('/sys/fs/cgroup')) missing.push('a cgroup filesystem at /sys/fs/cgroup');
  if (!existsSync('/usr/bin/apt-get') && !existsSync('/usr/bin/containerd'))
    missing.push('containerd (or apt-get to install it from Debian)');
  if (missing.length > 0) throw new Error(`the node test cannot run here; it needs: ${missing.join('; ')}`);
}

export async function startNodeCluster(args: {
  provisioned: Provisioned;
  logDir: string;
  log: (line: string) => void;
}): Promise<NodeCluster> {
  const { provisioned: bins, log } = args;
  const cp = (name: string) => path.join(bins.controlPlaneBin, name);
  const nb = (name: string) => path.join(bins.nodeBin, name);

  // A killed earlier run may have left its bridge, mounts or shims: remove them first.
  await runLogged('bash', [path.join(ENV_DIR, 'host-cleanup.sh'), '--stale'], log, 'cleaning up after an earlier node test');

  const dir = await mkdtemp('/tmp/ltp-node-state-');
  await mkdir(args.logDir, { recursive: true });
  const children: Array<{ name: string; child: ChildProcess; forget: () => void }> = [];
  let hostPrepared = false;

  const daemon = (name: string, bin: string, argv: string[]) => {
    const out = createWriteStream(path.join(args.logDir, `${name}.log`), { flags: 'a' });
    const child = spawn(bin, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.pipe(out);
    child.stderr?.pipe(out);
    child.on('exit', (code, signal) => log(`${name} exited (code ${code}, signal ${signal})`));
    children.push({ name, child, forget: killOnExit(child) });
    return child;
  };
  const alive = () => {
    for (const { name, child } of children) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(
          `${name} exited (code ${child.exitCode}, signal ${child.signalCode}) while the node was starting; see ${path.join(args.logDir, `${name}.log`)}`,
        );
      }
    }
  };

  const token = randomToken();
  const certDir = path.join(dir, 'certs');
  const kubeconfigPath = path.join(dir, 'kubeconfig');
  const containerdDir = path.join(dir, 'containerd');
  const containerdSock = path.join(containerdDir, 'containerd.sock');
  let server = '';

  const kubectl = (argv: string[], options: { input?: string } = {}) =>
    runTool(cp('kubectl'), ['--kubeconfig', kubeconfigPath, ...argv], options.input);
  const helm = (argv: string[]) => runTool(cp('helm'), ['--kubeconfig', kubeconfigPath, ...argv]);
  const ctr = (argv: string[]) => runTool('ctr', ['--address', containerdSock, '--namespace', 'k8s.io', ...argv]);

  const stop = async () => {
    const problems: string[] = [];
    const byName = (name: string) => children.find((c) => c.name === name)?.child;
    const running = (c: ChildProcess | undefined) => c !== undefined && c.exitCode === null && c.signalCode === null;
    // 1. Every pod goes through the kubelet, so their sandboxes, network namespaces and volumes are torn down.
    if (running(byName('kube-apiserver')) && running(byName('kubelet'))) {
      await kubectl(['delete', 'deployments,replicasets,statefulsets,daemonsets,jobs', '--all', '--all-namespaces', '--wait=false']);
      await kubectl(['delete', 'pods', '--all', '--all-namespaces', '--grace-period=5', '--timeout=60s']);
      const gone = await pollUntil(async () => (await ctr(['tasks', 'list', '--quiet'])).stdout.trim() === '', 60_000);
      if (!gone) problems.push('containers were still running 60 s after their pods were deleted');
    }
    // 2. The node, then kube-proxy's own rule clean-up, then the runtime (its leftover containers first).
    for (const name of ['kubelet', 'kube-proxy']) await stopChild(byName(name));
    if (existsSync(path.join(dir, 'kube-proxy.yaml'))) {
      const cleaned = await runTool(nb('kube-proxy'), ['--cleanup', `--config=${path.join(dir, 'kube-proxy.yaml')}`]);
      if (cleaned.code !== 0) problems.push(`kube-proxy --cleanup failed: ${cleaned.stderr.slice(-500)}`);
    }
    if (running(byName('containerd'))) {
      for (const id of (await ctr(['tasks', 'list', '--quiet'])).stdout.split('\n').filter(Boolean)) {
        await ctr(['tasks', 'kill', '--signal', 'SIGKILL', id]);
        await ctr(['tasks', 'delete', id]);
      }
      for (const id of (await ctr(['containers', 'list', '--quiet'])).stdout.split('\n').filter(Boolean))
        await ctr(['containers', 'delete', id]);
    }
    await stopChild(byName('containerd'));
    // 3. The control plane.
    for (const name of ['kube-scheduler', 'kube-controller-manager', 'kube-apiserver', 'etcd']) await stopChild(byName(name));
    children.forEach((c) => c.forget());
    // 4. What no daemon removed itself: host-cleanup.sh removes it and fails, naming it, if it cannot.
    if (hostPrepared || existsSync(path.join(dir, 'host', 'owner.pid'))) {
      const cleanup = await runTool('bash', [path.join(ENV_DIR, 'host-cleanup.sh'), dir]);
      if (cleanup.code !== 0) problems.push(cleanup.stderr.trim());
    } else {
      await rm(dir, { recursive: true, force: true });
    }
    if (problems.length > 0) throw new Error(`the node test left things behind:\n${problems.join('\n')}`);
  };

  try {
    // Host: the bridge, the cgroup root, snapshots of what the node may change.
    await runLogged(
      'bash',
      [path.join(ENV_DIR, 'host-setup.sh'), dir, String(process.pid), NETWORK.bridge, NETWORK.nodeCidr, CGROUP_ROOT],
      log,
      'preparing the host',
    );
    hostPrepared = true;

    // Control plane, on the node's address.
    await mkdir(certDir, { recursive: true });
    await runLogged('openssl', ['genrsa', '-out', path.join(certDir, 'sa.key'), '2048'], log, 'making the ServiceAccount signing key');
    await runLogged(
      'openssl',
      ['rsa', '-in', path.join(certDir, 'sa.key'), '-pubout', '-out', path.join(certDir, 'sa.pub')],
      log,
      'making the ServiceAccount key',
    );
    await writeFile(path.join(certDir, 'tokens.csv'), `${token},admin,admin,"system:masters"\n`, { mode: 0o600 });
    const etcdPort = await freePort();
    const etcdPeerPort = await freePort();
    daemon('etcd', cp('etcd'), [
      '--name=default',
      `--data-dir=${path.join(dir, 'etcd')}`,
      `--listen-client-urls=http://127.0.0.1:${etcdPort}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdPort}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
      `--initial-cluster=default=http://127.0.0.1:${etcdPeerPort}`,
      '--unsafe-no-fsync=true',
      '--log-level=warn',
    ]);
    const apiPort = await freePort();
    server = `https://${NETWORK.nodeIp}:${apiPort}`;
    daemon('kube-apiserver', cp('kube-apiserver'), [
      `--etcd-servers=http://127.0.0.1:${etcdPort}`,
      `--cert-dir=${certDir}`,
      `--bind-address=${NETWORK.nodeIp}`,
      `--advertise-address=${NETWORK.nodeIp}`,
      `--secure-port=${apiPort}`,
      `--token-auth-file=${path.join(certDir, 'tokens.csv')}`,
      '--authorization-mode=RBAC',
      `--service-cluster-ip-range=${NETWORK.serviceRange}`,
      '--service-account-issuer=https://kubernetes.default.svc',
      `--service-account-key-file=${path.join(certDir, 'sa.pub')}`,
      `--service-account-signing-key-file=${path.join(certDir, 'sa.key')}`,
      '--allow-privileged=true',
      '--kubelet-preferred-address-types=InternalIP',
      '--profiling=false',
      '--v=1',
    ]);
    log('waiting for kube-apiserver');
    await waitFor('kube-apiserver to be ready', 120_000, alive, async () => (await httpsGet(`${server}/readyz`, token)).status === 200);
    const caData = (await readFile(path.join(certDir, 'apiserver.crt'))).toString('base64');
    await writeFile(kubeconfigPath, kubeconfig({ server, caData, token }), { mode: 0o600 });

    daemon('kube-controller-manager', nb('kube-controller-manager'), [
      `--kubeconfig=${kubeconfigPath}`,
      '--secure-port=0',
      '--leader-elect=false',
      `--root-ca-file=${path.join(certDir, 'apiserver.crt')}`,
      `--service-account-private-key-file=${path.join(certDir, 'sa.key')}`,
      `--service-cluster-ip-range=${NETWORK.serviceRange}`,
      `--cluster-cidr=${NETWORK.podSubnet}`,
      '--use-service-account-credentials=false',
      '--v=1',
    ]);
    daemon('kube-scheduler', nb('kube-scheduler'), [`--kubeconfig=${kubeconfigPath}`, '--secure-port=0', '--leader-elect=false', '--v=1']);

    // Container runtime.
    await mkdir(path.join(dir, 'cni', 'net.d'), { recursive: true });
    await writeFile(path.join(dir, 'cni', 'net.d', '10-ltp-node.conflist'), cniConfig(path.join(dir, 'cni', 'ipam')));
    await mkdir(containerdDir, { recursive: true });
    await writeFile(
      path.join(containerdDir, 'config.toml'),
      containerdConfig({
        dir: containerdDir,
        cniConfDir: path.join(dir, 'cni', 'net.d'),
        sandboxImage: bins.pauseImage,
        runc: await which('runc'),
      }),
    );
    daemon('containerd', 'containerd', ['--config', path.join(containerdDir, 'config.toml')]);
    log('waiting for containerd');
    await waitFor('containerd to answer', 60_000, alive, async () => existsSync(containerdSock) && (await ctr(['version'])).code === 0);
    const importImage = async (archive: string) => {
      const started = Date.now();
      const result = await ctr(['images', 'import', archive]);
      if (result.code !== 0) throw new Error(`ctr images import ${archive} failed: ${result.stderr}`);
      log(`imported ${path.basename(archive)} into containerd in ${Date.now() - started} ms`);
    };
    await importImage(bins.pauseArchive);

    // The node.
    const kubeletDir = path.join(dir, 'kubelet');
    await mkdir(kubeletDir, { recursive: true });
    await writeFile(
      path.join(dir, 'kubelet.yaml'),
      kubeletConfig({
        dir,
        containerdSock,
        port: await freePort(),
        healthzPort: await freePort(),
      }),
    );
    daemon('kubelet', nb('kubelet'), [
      `--config=${path.join(dir, 'kubelet.yaml')}`,
      `--kubeconfig=${kubeconfigPath}`,
      `--root-dir=${kubeletDir}`,
      `--cert-dir=${path.join(dir, 'kubelet-pki')}`,
      `--hostname-override=${NODE_NAME}`,
      `--node-ip=${NETWORK.nodeIp}`,
      '--v=1',
    ]);
    const proxyHealthPort = await freePort();
    await writeFile(
      path.join(dir, 'kube-proxy.yaml'),
      kubeProxyConfig({ kubeconfigPath, healthzPort: proxyHealthPort, metricsPort: await freePort() }),
    );
    daemon('kube-proxy', nb('kube-proxy'), [`--config=${path.join(dir, 'kube-proxy.yaml')}`, '--v=1']);
    log('waiting for the node to be Ready');
    await waitFor(`node ${NODE_NAME} to be Ready`, 120_000, alive, async () => {
      const node = await kubectl(['get', 'node', NODE_NAME, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}']);
      return node.stdout.trim() === 'True';
    });
    log('waiting for kube-proxy to route the kubernetes Service');
    await waitFor('kube-proxy to program the kubernetes Service', 60_000, alive, async () => {
      const rules = await runTool('iptables-save', ['-t', 'nat']);
      return rules.stdout.includes(`-d ${NETWORK.kubernetesServiceIp}/32`) && rules.stdout.includes('default/kubernetes:https');
    });
    return { dir, server, kubeconfigPath, logDir: args.logDir, kubectl, helm, importImage, stop };
  } catch (error) {
    try {
      await stop();
    } catch (cleanupError) {
      throw new Error(`${String(error)}\n(and cleaning up failed too: ${String(cleanupError)})`, { cause: cleanupError });
    }
    throw error;
  }
}

async function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  await waitForExit(child, 20_000);
}

function randomToken(): string {
  return randomBytes(24).toString('hex');
}

async function which(name: string): Promise<string> {
  for (const dir of ['/usr/sbin', '/usr/bin', '/sbin', '/bin', '/usr/local/sbin', '/usr/local/bin']) {
    if (existsSync(path.join(dir, name))) return path.join(dir, name);
  }
  throw new Error(`${name} is missing (test/env/node/install-packages.sh installs it from Debian)`);
}

async function pollUntil(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return true;
    await new Promise((r) => setTimeout(r, 500));
  }
  return false;
}

async function waitFor(what: string, timeoutMs: number, alive: () => void, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    alive();
    try {
      if (await check()) return;
    } catch (error) {
      last = String(error);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last: ${last})` : ''}`);
}

function httpsGet(url: string, token: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { headers: { Authorization: `Bearer ${token}` }, rejectUnauthorized: false, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** Runs a command, never throwing on a non-zero exit. */
export function runTool(bin: string, args: string[], input?: string): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = execFile(bin, args, { maxBuffer: 50_000_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout, stderr: error && typeof error.code === 'string' ? `${stderr}${error.message}` : stderr });
    });
    // A command that exits without reading its input must not turn into an uncaught EPIPE.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input);
  });
}

/** Runs a command, streaming its stderr to the log; throws, with the tail of its output, when it fails. */
function runLogged(bin: string, args: string[], log: (line: string) => void, what: string): Promise<{ stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let tail = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      tail = (tail + d.toString()).slice(-4000);
      for (const line of d.toString().split('\n')) if (line.trim()) log(line.trim());
    });
    child.on('error', (error) => reject(new Error(`${what}: could not run ${bin}: ${error.message}`)));
    child.on('exit', (code) => {
      if (code === 0) resolve({ stdout });
      else reject(new Error(`${what} failed (${bin} ${args.join(' ')} exited with code ${code}):\n${tail.trim()}`));
    });
  });
}

function kubeconfig(args: { server: string; caData: string; token: string }): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: ltp-node',
    `  cluster: {server: "${args.server}", certificate-authority-data: ${args.caData}}`,
    'users:',
    '- name: admin',
    `  user: {token: ${args.token}}`,
    'contexts:',
    '- name: ltp-node',
    '  context: {cluster: ltp-node, user: admin, namespace: default}',
    'current-context: ltp-node',
    '',
  ].join('\n');
}

/** Pods get the node's bridge and two routes: the node's subnet and the Service range. No default route. */
function cniConfig(ipamDir: string): string {
  return JSON.stringify(
    {
      cniVersion: '1.0.0',
      name: 'ltp-node',
      plugins: [
        {
          type: 'bridge',
          bridge: NETWORK.bridge,
          isGateway: false,
          ipMasq: false,
          hairpinMode: true,
          ipam: {
            type: 'host-local',
            dataDir: ipamDir,
            ranges: [[{ subnet: NETWORK.podSubnet, rangeStart: '10.244.0.10', gateway: NETWORK.nodeIp }]],
            routes: [{ dst: NETWORK.serviceRange, gw: NETWORK.nodeIp }],
          },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
        { type: 'loopback' },
      ],
    },
    null,
    2,
  );
}

/**
 * containerd 1.6 (Debian 12) with its CRI plugin, every path under the test's folder.
 * restrict_oom_score_adj: this machine withholds CAP_SYS_RESOURCE even from root, so the sandbox's
 * oom_score_adj of -998 would fail ("can't get final child's PID from pipe: EOF"); it is clamped instead.
 */
function containerdConfig(args: { dir: string; cniConfDir: string; sandboxImage: string; runc: string }): string {
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  return `version = 2
root = "${args.dir}/root"
state = "${args.dir}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "${args.dir}/containerd.sock"
[ttrpc]
  address = "${args.dir}/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "${args.dir}/opt"
[${cri}]
  sandbox_image = "${args.sandboxImage}"
  enable_selinux = false
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  [${cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [${cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [${cri}.containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "${args.runc}"
  [${cri}.cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${args.cniConfDir}"
`;
}

function kubeletConfig(args: { dir: string; containerdSock: string; port: number; healthzPort: number }): string {
  return `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: ${NETWORK.nodeIp}
port: ${args.port}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: ${args.healthzPort}
# The API server calls the kubelet (logs, exec) without a client certificate; the kubelet listens on the
# node's bridge address only.
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
cgroupRoot: /${CGROUP_ROOT}
containerRuntimeEndpoint: unix://${args.containerdSock}
podLogsDir: ${args.dir}/pod-logs
# No cluster DNS, and no resolver for pods: they use addresses only, and never look outside the machine.
resolvConf: ""
failSwapOn: false
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
maxPods: 30
serializeImagePulls: false
`;
}

function kubeProxyConfig(args: { kubeconfigPath: string; healthzPort: number; metricsPort: number }): string {
  return `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: ${args.kubeconfigPath}}
mode: iptables
hostnameOverride: ${NODE_NAME}
bindAddress: ${NETWORK.nodeIp}
healthzBindAddress: 127.0.0.1:${args.healthzPort}
metricsBindAddress: 127.0.0.1:${args.metricsPort}
clusterCIDR: ${NETWORK.podSubnet}
nodePortAddresses: ["${NETWORK.nodeIp}/32"]
# 0: leave the host's conntrack sysctls as they are.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
`;
}
