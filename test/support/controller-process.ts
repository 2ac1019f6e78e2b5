// The controller as its own process (`lambda-task-pool controller`), as it runs in a cluster: for tests
// and the soak that kill it, or outlive an API server, and judge it from outside.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT } from '../../dev/src/binaries.ts';
import { freePort } from '../../dev/src/ports.ts';
import { killOnExit, waitForExit } from '../../dev/src/processes.ts';

export interface ControllerProcessOptions {
  kubeconfig: string;
  databaseUrl: string;
  lambdaEndpoint: string;
  namespaces: string[];
  leaderElect?: { leaseNamespace: string; identity: string; leaseName?: string };
  logLevel?: string;
  /** Run the compiled controller (dist/cli.js, from `npm run build`) as the image does, rather than through tsx. */
  compiled?: boolean;
  /** Node's own flags before the script (the image's ENTRYPOINT has some). */
  nodeArgs?: string[];
  /** Called with every chunk the process writes. */
  onOutput?(chunk: string): void;
  /** The host of --metrics-addr (default 127.0.0.1); '' listens on every address, as the chart's ":8080" does. */
  metricsHost?: string;
  /** More flags after the ones above (e.g. --tenancy-policy). */
  extraArgs?: string[];
  /** Environment variables that replace the defaults below (e.g. AWS_SECRET_ACCESS_KEY). */
  env?: Record<string, string>;
}

export interface ControllerProcess {
  child: ChildProcess;
  port: number;
  /** The last 200 kB it wrote. */
  output(): string;
  alive(): boolean;
  /** Sends SIGTERM and waits for the exit. */
  stop(): Promise<void>;
  kill(): Promise<void>;
}

export async function startControllerProcess(options: ControllerProcessOptions, readyTimeoutMs = 60_000): Promise<ControllerProcess> {
  const port = await freePort();
  const script = options.compiled ? [path.join(REPO_ROOT, 'dist', 'cli.js')] : ['--import', 'tsx', path.join(REPO_ROOT, 'src', 'cli.ts')];
  const entry = [...(options.nodeArgs ?? []), ...script];
  const args = [
    ...entry,
    'controller',
    '--kubeconfig',
    options.kubeconfig,
    '--namespaces',
    options.namespaces.join(','),
    '--metrics-addr',
    `${options.metricsHost ?? '127.0.0.1'}:${port}`,
    ...(options.leaderElect ? ['--leader-elect', '--lease-namespace', options.leaderElect.leaseNamespace] : []),
    ...(options.leaderElect?.leaseName ? ['--lease-name', options.leaderElect.leaseName] : []),
    ...(options.extraArgs ?? []),
  ];
  const child = spawn(process.execPath, args, {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      DATABASE_URL: options.databaseUrl,
      AWS_ENDPOINT_URL_LAMBDA: options.lambdaEndpoint,
      // The local runtime answers STS AssumeRole too (namespace roles of the tenancy policy).
      AWS_ENDPOINT_URL_STS: options.lambdaEndpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      LTP_LOG_LEVEL: options.logLevel ?? 'info',
      ...(options.leaderElect ? { POD_NAME: options.leaderElect.identity } : {}),
      ...(process.env.LTP_CONTROLLER_NODE_OPTIONS ? { NODE_OPTIONS: process.env.LTP_CONTROLLER_NODE_OPTIONS } : {}),
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  killOnExit(child);
  let output = '';
  const take = (d: Buffer) => {
    const text = d.toString();
    output = (output + text).slice(-200_000);
    options.onOutput?.(text);
  };
  child.stdout?.on('data', take);
  child.stderr?.on('data', take);
  const alive = () => child.exitCode === null && child.signalCode === null;

  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (!alive()) throw new Error(`the controller process exited during start-up: ${output.slice(-2000)}`);
    const res = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined);
    if (res?.status === 200) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the controller process did not serve /healthz within ${readyTimeoutMs} ms: ${output.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }

  return {
    child,
    port,
    output: () => output,
    alive,
    async stop() {
      if (!alive()) return;
      child.kill('SIGTERM');
      await waitForExit(child, 15_000);
    },
    async kill() {
      if (!alive()) return;
      child.kill('SIGKILL');
      await waitForExit(child, 10_000);
    },
  };
}
