// A real Kubernetes control plane on loopback: etcd and kube-apiserver, as controller-runtime's envtest
// runs them. RBAC is on and clients authenticate with bearer tokens from a token file.
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { ensureBinaries, type Binaries } from './binaries.ts';
import { freePort } from './ports.ts';
import { killOnExit, waitForExit } from './processes.ts';

export interface ControlPlaneOptions {
  /** Where etcd data, certificates and the kubeconfig live. A temporary directory by default. */
  dir?: string;
  log?: (line: string) => void;
  binaries?: Binaries;
}

export interface ControlPlaneUser {
  name: string;
  token: string;
  groups: string[];
}

export interface ControlPlane {
  server: string;
  kubeconfigPath: string;
  kubeconfig: string;
  adminToken: string;
  caData: string;
  binaries: Binaries;
  version: string;
  /** A kubeconfig for another user from the token file (for RBAC tests). */
  kubeconfigFor(user: string): string;
  /** Fault injection: SIGSTOP / SIGCONT the kube-apiserver (a frozen server: connections hang). */
  freezeApiServer(): void;
  thawApiServer(): void;
  /** Fault injection: stop the kube-apiserver (connections are refused), and start it again on the same port. */
  stopApiServer(): Promise<void>;
  startApiServer(): Promise<void>;
  stop(): Promise<void>;
}

export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const log = options.log ?? (() => undefined);
  const binaries = options.binaries ?? (await ensureBinaries(log));
  const temporary = !options.dir;
  const dir = options.dir ?? (await mkdtemp(path.join(os.tmpdir(), 'ltp-kube-')));
  const certDir = path.join(dir, 'certs');
  const etcdDir = path.join(dir, 'etcd');
  await rm(etcdDir, { recursive: true, force: true });
  await mkdir(certDir, { recursive: true });

  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const saKey = path.join(certDir, 'sa.key');
  const saPub = path.join(certDir, 'sa.pub');
  await writeFile(saKey, privateKey.export({ type: 'pkcs1', format: 'pem' }), { mode: 0o600 });
  await writeFile(saPub, publicKey.export({ type: 'spki', format: 'pem' }));

  const users: ControlPlaneUser[] = [
    { name: 'admin', token: randomBytes(24).toString('hex'), groups: ['system:masters'] },
    { name: 'developer', token: randomBytes(24).toString('hex'), groups: ['developers'] },
  ];
  const tokenFile = path.join(certDir, 'tokens.csv');
  await writeFile(tokenFile, users.map((u) => `${u.token},${u.name},${u.name},"${u.groups.join(',')}"`).join('\n') + '\n', { mode: 0o600 });

  const children: ChildProcess[] = [];
  const forgets: Array<() => void> = [];
  const stop = async () => {
    for (const child of [...children].reverse()) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGCONT');
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await waitForExit(child, 15_000);
    }
    forgets.forEach((f) => f());
    if (temporary) await rm(dir, { recursive: true, force: true });
  };

  try {
    const etcdPort = await freePort();
    const peerPort = await freePort();
    const etcd = spawn(
      binaries.etcd,
      [
        '--name=default',
        `--data-dir=${etcdDir}`,
        `--listen-client-urls=http://127.0.0.1:${etcdPort}`,
        `--advertise-client-urls=http://127.0.0.1:${etcdPort}`,
        `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
        `--initial-cluster=default=http://127.0.0.1:${peerPort}`,
        '--unsafe-no-fsync=true',
        '--log-level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.push(etcd);
    forgets.push(killOnExit(etcd));
    pipeLog(etcd, 'etcd', log);

    const apiPort = await freePort();
    const apiArgs = [
      `--etcd-servers=http://127.0.0.1:${etcdPort}`,
      `--cert-dir=${certDir}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      `--token-auth-file=${tokenFile}`,
      '--authorization-mode=RBAC',
      '--service-cluster-ip-range=10.0.0.0/24',
      '--service-account-issuer=https://kubernetes.default.svc',
      `--service-account-key-file=${saPub}`,
      `--service-account-signing-key-file=${saKey}`,
      '--allow-privileged=true',
      '--disable-admission-plugins=ServiceAccount',
      '--endpoint-reconciler-type=none',
      '--v=0',
    ];
    let apiserver = spawn(binaries.kubeApiserver, apiArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(apiserver);
    forgets.push(killOnExit(apiserver));
    pipeLog(apiserver, 'kube-apiserver', log);
    const server = `https://127.0.0.1:${apiPort}`;
    const admin = users[0];
    if (!admin) throw new Error('no admin user');
    await waitForReady({ server, token: admin.token, processes: [etcd, apiserver], timeoutMs: 120_000 });
    const caData = (await readFile(path.join(certDir, 'apiserver.crt'))).toString('base64');
    const version = await fetchVersion(server, admin.token);
    const kubeconfigFor = (name: string) => {
      const user = users.find((u) => u.name === name);
      if (!user) throw new Error(`no control-plane user named ${name}`);
      return renderKubeconfig({ server, caData, user: user.name, token: user.token });
    };
    const kubeconfig = kubeconfigFor('admin');
    const kubeconfigPath = path.join(dir, 'kubeconfig');
    await writeFile(kubeconfigPath, kubeconfig, { mode: 0o600 });
    const signalApiServer = (signal: NodeJS.Signals) => {
      if (apiserver.exitCode === null && apiserver.signalCode === null) apiserver.kill(signal);
    };
    return {
      server,
      kubeconfigPath,
      kubeconfig,
      adminToken: admin.token,
      caData,
      binaries,
      version,
      kubeconfigFor,
      stop,
      freezeApiServer: () => signalApiServer('SIGSTOP'),
      thawApiServer: () => signalApiServer('SIGCONT'),
      async stopApiServer() {
        signalApiServer('SIGCONT');
        signalApiServer('SIGTERM');
        await waitForExit(apiserver, 15_000);
      },
      async startApiServer() {
        if (apiserver.exitCode === null && apiserver.signalCode === null) return;
        apiserver = spawn(binaries.kubeApiserver, apiArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
        children.push(apiserver);
        forgets.push(killOnExit(apiserver));
        pipeLog(apiserver, 'kube-apiserver', log);
        await waitForReady({ server, token: admin.token, processes: [etcd, apiserver], timeoutMs: 120_000 });
      },
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

function pipeLog(child: ChildProcess, name: string, log: (line: string) => void) {
  let tail = '';
  const take = (d: Buffer) => {
    tail = (tail + d.toString()).slice(-20_000);
    for (const line of d.toString().split('\n')) if (line.trim()) log(`${name}: ${line.trim()}`);
  };
  child.stdout?.on('data', take);
  child.stderr?.on('data', take);
  child.on('exit', (code, signal) => {
    if (code !== 0 && signal === null) log(`${name} exited with code ${code}: ${tail.slice(-2000)}`);
  });
}

function renderKubeconfig(args: { server: string; caData: string; user: string; token: string }): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: ltp-local',
    '  cluster:',
    `    server: ${args.server}`,
    `    certificate-authority-data: ${args.caData}`,
    'users:',
    `- name: ${args.user}`,
    '  user:',
    `    token: ${args.token}`,
    'contexts:',
    `- name: ltp-local-${args.user}`,
    '  context:',
    '    cluster: ltp-local',
    `    user: ${args.user}`,
    '    namespace: default',
    `current-context: ltp-local-${args.user}`,
    '',
  ].join('\n');
}

function get(server: string, token: string, pathname: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      `${server}${pathname}`,
      { method: 'GET', headers: { Authorization: `Bearer ${token}` }, rejectUnauthorized: false, timeout: 5000 },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function waitForReady(args: { server: string; token: string; processes: ChildProcess[]; timeoutMs: number }) {
  const deadline = Date.now() + args.timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    for (const p of args.processes) {
      if (p.exitCode !== null) throw new Error(`a control-plane process exited with code ${p.exitCode} during start-up`);
    }
    try {
      const res = await get(args.server, args.token, '/readyz');
      if (res.status === 200) return;
      last = `${res.status} ${res.body.slice(0, 500)}`;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`kube-apiserver was not ready within ${args.timeoutMs} ms: ${last}`);
}

async function fetchVersion(server: string, token: string): Promise<string> {
  const res = await get(server, token, '/version');
  const parsed: unknown = JSON.parse(res.body);
  if (typeof parsed === 'object' && parsed !== null && 'gitVersion' in parsed && typeof parsed.gitVersion === 'string') {
    return parsed.gitVersion;
  }
  return 'unknown';
}
