// Runs a bundled worker function the way AWS's public Node.js base images run one outside Lambda: AWS's
// Runtime Interface Emulator (aws-lambda-rie) starts `node <aws-lambda-ric>/index.mjs <handler>`, and
// AWS's Node.js runtime interface client loads the handler from LAMBDA_TASK_ROOT, takes events from the
// emulator's Runtime API with its native client, and hands the handler Lambda's own context.
// Both programs come from test/env/rie (build-rie.sh, install-ric.sh); see docs/rie.md.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');

export interface RieTools {
  /** The aws-lambda-rie binary. */
  rie: string;
  /** The installed aws-lambda-ric package: index.mjs and its native addon rapid-client.node. */
  ric: string;
  /** What install-ric.sh recorded: the aws-lambda-ric version and the Node it was built with. */
  ricBuild: string;
}

/** Runs one of the test/env/rie scripts with --check: the path it prints, or an error that says what is missing. */
function locate(script: string, what: string): string {
  const result = spawnSync('bash', [path.join(root, 'test/env/rie', script), '--check'], { encoding: 'utf8' });
  const found = result.stdout.trim().split('\n').pop() ?? '';
  if (result.status !== 0 || !found) {
    throw new Error(
      `${what} is missing, so the worker cannot be run under AWS's runtime. Run 'bash test/env/rie/${script}' first ` +
        `(see docs/rie.md). ${script} --check said: ${result.stderr.trim() || result.error?.message || `exit ${String(result.status)}`}`,
    );
  }
  return found;
}

/** Finds aws-lambda-rie and aws-lambda-ric, or throws saying which is missing and how to get it. Never skips. */
export function findRieTools(): RieTools {
  const rie = process.env.LTP_RIE_BIN || locate('build-rie.sh', 'AWS Lambda Runtime Interface Emulator (aws-lambda-rie)');
  if (!existsSync(rie)) throw new Error(`aws-lambda-rie is missing: ${rie} does not exist (LTP_RIE_BIN or test/env/rie/build-rie.sh)`);
  const ric = process.env.LTP_RIC_DIR || locate('install-ric.sh', 'AWS Lambda Node.js runtime interface client (aws-lambda-ric)');
  for (const file of ['index.mjs', 'rapid-client.node']) {
    if (!existsSync(path.join(ric, file))) {
      throw new Error(`aws-lambda-ric is incomplete: ${path.join(ric, file)} is missing (LTP_RIC_DIR or test/env/rie/install-ric.sh)`);
    }
  }
  const stamp = path.resolve(ric, '../../.installed');
  const ricBuild = existsSync(stamp) ? readFileSync(stamp, 'utf8').trim().replace(/\n/g, ', ') : 'unknown build';
  const builtFor = /node (\d+)\./.exec(ricBuild)?.[1];
  const major = process.versions.node.split('.')[0];
  if (builtFor && builtFor !== major) {
    throw new Error(
      `aws-lambda-ric in ${ric} was built for Node ${builtFor}, but this is Node ${process.versions.node}: run 'bash test/env/rie/install-ric.sh' under this Node`,
    );
  }
  return { rie, ric, ricBuild };
}

/**
 * Bundles a handler module into one CommonJS file, dir/index.js, as a function's deployment package would
 * hold it, with a package.json that says so. pg-native is left out: pg loads it only when asked to.
 */
export async function bundleFunction(entry: string, dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  await build({
    entryPoints: [entry],
    outfile: path.join(dir, 'index.js'),
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'cjs',
    external: ['pg-native'],
    logLevel: 'error',
  });
  writeFileSync(path.join(dir, 'package.json'), '{ "type": "commonjs" }\n');
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, output: () => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`aws-lambda-rie exited (${String(child.exitCode ?? child.signalCode)}) before it listened:\n${output()}`);
    }
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`aws-lambda-rie did not listen on 127.0.0.1:${port} within ${timeoutMs} ms:\n${output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface RieFunctionOptions {
  tools: RieTools;
  /** LAMBDA_TASK_ROOT: the directory holding the bundled function. */
  taskRoot: string;
  /** The handler, file.export, as in a function's configuration. */
  handler: string;
  functionName: string;
  /** AWS_LAMBDA_FUNCTION_TIMEOUT in whole seconds: the emulator's deadline for each invoke. */
  timeoutSeconds: number;
  /** The function's own environment variables (DATABASE_URL, ...). */
  environment: Record<string, string>;
}

export interface InvokeResult {
  status: number;
  requestId: string;
  body: unknown;
}

/** One function instance: one emulator and the runtime it starts on the first invoke, warm after that. */
export class RieFunction {
  private output = '';
  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
  ) {
    child.stdout?.on('data', (chunk: Buffer) => {
      this.output += chunk.toString();
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      this.output += chunk.toString();
    });
  }

  static async start(options: RieFunctionOptions): Promise<RieFunction> {
    const port = await freePort();
    const runtimeApiPort = await freePort();
    // As in AWS's images: a plain environment, not the test runner's (no NODE_OPTIONS, no tsx loader).
    const env: Record<string, string> = {
      PATH: '/usr/local/bin:/usr/bin:/bin',
      LANG: 'en_US.UTF-8',
      TZ: ':UTC',
      LAMBDA_TASK_ROOT: options.taskRoot,
      LAMBDA_RUNTIME_DIR: options.tools.ric,
      AWS_REGION: 'us-east-1',
      AWS_DEFAULT_REGION: 'us-east-1',
      AWS_LAMBDA_FUNCTION_NAME: options.functionName,
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '512',
      AWS_LAMBDA_FUNCTION_TIMEOUT: String(options.timeoutSeconds),
      ...options.environment,
    };
    const child = spawn(
      options.tools.rie,
      [
        '--runtime-interface-emulator-address',
        `127.0.0.1:${port}`,
        '--runtime-api-address',
        `127.0.0.1:${runtimeApiPort}`,
        // The bootstrap command, then the handler (the emulator passes the last argument on as _HANDLER).
        process.execPath,
        path.join(options.tools.ric, 'index.mjs'),
        options.handler,
      ],
      // Its own process group: stopping it stops the Node runtime it started, too.
      { cwd: options.taskRoot, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
    );
    const fn = new RieFunction(child, port);
    const spawned = new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    await spawned;
    stopAtExit.add(fn);
    await waitForPort(port, child, () => fn.log(), 10_000);
    return fn;
  }

  /** Everything the emulator and the runtime printed so far (START/END/REPORT lines, the worker's logs). */
  log(): string {
    return this.output;
  }

  /** A synchronous invoke through the emulator's Invoke endpoint, with our own request id. */
  async invoke(payload: unknown, timeoutMs = 60_000): Promise<InvokeResult> {
    const requestId = randomUUID();
    const response = await fetch(`http://127.0.0.1:${this.port}/2015-03-31/functions/function/invocations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-amzn-requestid': requestId },
      body: JSON.stringify(payload),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await response.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: "Task timed out after ..." and the like; kept as text
    }
    return { status: response.status, requestId, body };
  }

  private kill(signal: NodeJS.Signals): void {
    if (this.child.pid === undefined || this.child.exitCode !== null || this.child.signalCode !== null) return;
    try {
      process.kill(-this.child.pid, signal);
    } catch {
      // already gone
    }
  }

  async stop(): Promise<void> {
    stopAtExit.delete(this);
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.kill('SIGTERM'); // the emulator SIGKILLs its runtime and exits
    const timer = setTimeout(() => this.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
    this.kill('SIGKILL'); // the group: anything left of the runtime
  }

  /** For process exit: no emulator outlives the test run, even when a hook never ran. */
  killNow(): void {
    this.kill('SIGKILL');
  }
}

const stopAtExit = new Set<RieFunction>();
process.once('exit', () => {
  for (const fn of stopAtExit) fn.killNow();
});
