// `lambda-task-pool local up` as a developer runs it, in its own process: a function registered with
// --function takes its other settings from the --lambda-config file that names it, the printed next steps
// are there, and --keep-data keeps the tasks across a restart (and without it, a restart starts empty).
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { GetFunctionConfigurationCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { expect } from 'chai';
import { REPO_ROOT } from '../../dev/src/binaries.ts';
import { killOnExit, waitForExit } from '../../dev/src/processes.ts';
import { createDb } from '../../src/store/db.ts';
import { enqueueTasks, getTask } from '../../src/store/task-store.ts';
import { CLI_ENTRY } from '../support/cli.ts';

const QUICK_WORKER = path.join(REPO_ROOT, 'test', 'fixtures', 'functions', 'quick-worker.ts');

interface RunningStack {
  child: ChildProcess;
  output(): string;
  env: Record<string, string>;
}

/** Starts `local up` and waits for its "Press Ctrl-C" line; reads the env file it wrote. */
async function localUp(stateDir: string, flags: string[]): Promise<RunningStack> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', CLI_ENTRY, 'local', 'up', '--state-dir', stateDir, '--no-controller', ...flags],
    {
      cwd: REPO_ROOT,
      env: { ...process.env, LTP_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  killOnExit(child);
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const deadline = Date.now() + 240_000;
  while (!output.includes('Press Ctrl-C to stop everything.')) {
    if (child.exitCode !== null) throw new Error(`local up exited with ${child.exitCode}: ${output.slice(-3000)}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`local up was not ready in time: ${output.slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const text = await readFile(path.join(stateDir, 'env'), 'utf8');
  const env = Object.fromEntries([...text.matchAll(/^export (\w+)='([^']*)'$/gm)].map((m) => [m[1] ?? '', m[2] ?? '']));
  return { child, output: () => output, env };
}

async function stop(stack: RunningStack): Promise<string> {
  stack.child.kill('SIGINT');
  const code = await waitForExit(stack.child, 60_000);
  expect(code, stack.output().slice(-2000)).to.equal(0);
  return stack.output();
}

describe('local up (real processes)', function () {
  this.timeout(600_000);
  let dir: string;
  let stateDir: string;
  let config: string;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ltp-local-up-'));
    // As root, Postgres runs as the postgres user, which must be able to reach the state directory.
    await chmod(dir, 0o755);
    stateDir = path.join(dir, 'state');
    config = path.join(dir, 'only-options.yaml');
    // The file sets the function's options only: its handler comes from --function.
    await writeFile(config, ['functions:', '  my-worker:', '    timeoutSeconds: 42', '    environment: { MODE: merged }'].join('\n'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('merges --function with its --lambda-config options, prints the next commands, and keeps the data with --keep-data', async () => {
    const first = await localUp(stateDir, ['--keep-data', '--function', `my-worker=${QUICK_WORKER}`, '--lambda-config', config]);
    const printed = first.output();
    expect(printed).to.include('functions: my-worker');
    expect(printed).to.include(`source ${path.join(stateDir, 'env')}`);
    expect(printed).to.include('kubectl apply -f examples/pool.yaml');
    expect(printed).to.include('enqueue --queue thumbnails');
    expect(printed).to.include('kubectl get ltp -w');
    expect(printed).to.include('npm run cli -- controller');
    expect(printed).to.include(`postgres data: ${path.join(stateDir, 'postgres')} (kept`);

    const lambda = new LambdaClient({
      endpoint: first.env.AWS_ENDPOINT_URL_LAMBDA,
      region: first.env.AWS_REGION,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    try {
      const fn = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: 'my-worker' }));
      expect(fn.Timeout).to.equal(42);
      expect(fn.Environment?.Variables?.MODE).to.equal('merged');
      expect(fn.Environment?.Variables?.DATABASE_URL).to.equal(first.env.DATABASE_URL);
    } finally {
      lambda.destroy();
    }

    let db = createDb(first.env.DATABASE_URL ?? '', { max: 1 });
    const [kept = 0] = await enqueueTasks(db, { queue: 'kept', payloads: [{ survives: true }] });
    await db.end();
    expect(await stop(first)).to.include(`its Postgres data stays in ${path.join(stateDir, 'postgres')}`);

    const second = await localUp(stateDir, ['--keep-data', '--function', `my-worker=${QUICK_WORKER}`]);
    db = createDb(second.env.DATABASE_URL ?? '', { max: 1 });
    try {
      expect(await getTask(db, kept)).to.include({ queue: 'kept', status: 'created' });
    } finally {
      await db.end();
    }
    await stop(second);

    // Without --keep-data every start begins empty (and the data is removed on stop).
    const third = await localUp(stateDir, ['--function', `my-worker=${QUICK_WORKER}`]);
    expect(third.output()).to.include('postgres data: starts empty');
    db = createDb(third.env.DATABASE_URL ?? '', { max: 1 });
    try {
      expect(await getTask(db, kept)).to.equal(undefined);
    } finally {
      await db.end();
    }
    await stop(third);
  });

  it('refuses a function the config file names without a handler that no --function gives, naming the key', async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', CLI_ENTRY, 'local', 'up', '--state-dir', path.join(dir, 'refused'), '--lambda-config', config],
      { cwd: REPO_ROOT, env: { ...process.env, LTP_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    killOnExit(child);
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const code = await waitForExit(child, 120_000);
    expect(code).to.equal(1);
    expect(output).to.include('only-options.yaml: functions.my-worker.handler: is required');
  });
});
