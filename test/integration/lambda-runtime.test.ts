// The local Lambda runtime, driven by the unmodified AWS SDK over real HTTP, running real handler processes.
import { execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  GetFunctionCommand,
  InvalidRequestContentException,
  InvokeCommand,
  type InvokeCommandInput,
  type InvokeCommandOutput,
  LambdaClient,
  RequestTooLargeException,
  ResourceConflictException,
  ResourceNotFoundException,
  TooManyRequestsException,
} from '@aws-sdk/client-lambda';
import { expect } from 'chai';
import { silentLogger } from '../../src/ops/logger.ts';
import { type FunctionRegistration, type LambdaRuntime, startLambdaRuntime } from '../../dev/src/lambda-runtime/index.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const fixture = (name: string): string => path.join(root, 'test/fixtures/functions', name);
const FAST_RETRIES = { retryDelaysMs: [100, 200] as [number, number] };

function clientFor(runtime: LambdaRuntime): LambdaClient {
  // maxAttempts 1: the SDK must not hide a throttle or an error behind its own retries.
  return new LambdaClient({
    endpoint: runtime.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 1,
  });
}

function json(output: InvokeCommandOutput): unknown {
  return JSON.parse(new TextDecoder().decode(output.Payload));
}

interface Line {
  phase?: string;
  requestId: string;
  pid: number;
  at: number;
  remaining?: number;
  tag?: string;
}

function isLine(value: unknown): value is Line {
  return typeof value === 'object' && value !== null && 'requestId' in value && typeof value.requestId === 'string';
}

function readLines(file: string): Line[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line): unknown => JSON.parse(line))
    .filter(isLine);
}

async function waitFor(what: string, condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Every process whose process group is one of these (a function process and what it started). */
function groupMembers(groups: number[]): number[] {
  const output = execFileSync('ps', ['-eo', 'pid=,pgid='], { encoding: 'utf8' });
  return output
    .split('\n')
    .map((line) => line.trim().split(/\s+/).map(Number))
    .filter(([pid, pgid]) => pid !== undefined && pgid !== undefined && groups.includes(pgid))
    .map(([pid]) => pid ?? 0);
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to fail');
}

describe('local Lambda runtime (real SDK, real processes)', function () {
  this.timeout(60_000);
  let runtime: LambdaRuntime;
  let lambda: LambdaClient;
  let dir: string;
  let names = 0;

  /** Registers a function under a fresh name, so that every test reads its own counters. */
  function register(handler: string, settings: Omit<FunctionRegistration, 'name' | 'handler'> = {}): string {
    const name = `fn-${++names}`;
    runtime.register({ name, handler: fixture(handler), ...settings });
    return name;
  }

  function invoke(input: InvokeCommandInput): Promise<InvokeCommandOutput> {
    return lambda.send(new InvokeCommand(input));
  }

  function event(name: string, payload: unknown): Promise<InvokeCommandOutput> {
    return invoke({ FunctionName: name, InvocationType: 'Event', Payload: JSON.stringify(payload) });
  }

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'lambda-runtime-'));
    runtime = await startLambdaRuntime({ seed: 1, logger: silentLogger(), concurrencyLimit: 20 });
    lambda = clientFor(runtime);
  });

  after(async () => {
    lambda?.destroy();
    await runtime?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const file = (): string => path.join(dir, `${randomUUID()}.jsonl`);

  it('answers an Event invoke 202 with a request id, and runs the handler once with that id', async () => {
    const name = register('append.ts');
    const out = file();
    const response = await event(name, { file: out });
    expect(response.StatusCode).to.equal(202);
    expect(response.$metadata.requestId).to.match(/^[0-9a-f-]{36}$/);
    await runtime.idle(20_000);
    const lines = readLines(out);
    expect(lines.map((line) => line.phase)).to.deep.equal(['start', 'end']);
    expect(lines[0]?.requestId).to.equal(response.$metadata.requestId);
    expect(runtime.stats(name)).to.include({ accepted: 1, delivered: 1, succeeded: 1, running: 0, queued: 0 });
  });

  it('returns the handler result to RequestResponse, with the event, the context and the Lambda environment', async () => {
    const name = register('echo.ts', { environment: { GREETING: 'hello' }, memoryMb: 256, timeoutSeconds: 30 });
    const response = await invoke({ FunctionName: name, Payload: JSON.stringify({ task: 7 }) });
    expect(response.StatusCode).to.equal(200);
    expect(response.FunctionError).to.equal(undefined);
    expect(response.ExecutedVersion).to.equal('$LATEST');
    const body = json(response);
    expect(body).to.deep.include({ event: { task: 7 } });
    expect(body).to.have.nested.property('context.awsRequestId', response.$metadata.requestId);
    expect(body).to.have.nested.property('context.functionName', name);
    expect(body).to.have.nested.property('context.functionVersion', '$LATEST');
    expect(body).to.have.nested.property('context.invokedFunctionArn', `arn:aws:lambda:us-east-1:123456789012:function:${name}`);
    expect(body).to.have.nested.property('context.memoryLimitInMB', '256');
    expect(body).to.have.nested.property('context.logGroupName', `/aws/lambda/${name}`);
    expect(body).to.have.nested.property('context.callbackWaitsForEmptyEventLoop', true);
    expect(body).to.have.nested.property('context.remainingTimeInMillis').within(1, 30_000);
    expect(body).to.deep.include({
      env: {
        AWS_LAMBDA_FUNCTION_NAME: name,
        AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '256',
        AWS_REGION: 'us-east-1',
        AWS_DEFAULT_REGION: 'us-east-1',
        _HANDLER: 'echo.handler',
        AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${name}`,
        AWS_LAMBDA_LOG_STREAM_NAME: readLogStream(body),
        GREETING: 'hello',
      },
    });
    expect(runtime.logs(name).map((line) => line.line)).to.include(`echo handling ${response.$metadata.requestId}`);
  });

  function readLogStream(body: unknown): string {
    const stream =
      typeof body === 'object' && body !== null && 'context' in body ? Reflect.get(Object(body.context), 'logStreamName') : undefined;
    expect(stream)
      .to.be.a('string')
      .and.match(/^\d{4}\/\d{2}\/\d{2}\/\[\$LATEST\][0-9a-f]{32}$/);
    return String(stream);
  }

  it('answers a throwing handler with FunctionError Unhandled and its errorMessage, and Tail returns its log', async () => {
    const name = register('fail.ts');
    const response = await invoke({ FunctionName: name, Payload: JSON.stringify({ message: 'no such task' }), LogType: 'Tail' });
    expect(response.StatusCode).to.equal(200);
    expect(response.FunctionError).to.equal('Unhandled');
    expect(json(response)).to.deep.include({ errorType: 'TaskFailedError', errorMessage: 'no such task' });
    const log = Buffer.from(response.LogResult ?? '', 'base64').toString('utf8');
    expect(log).to.contain(`START RequestId: ${response.$metadata.requestId}`).and.contain('REPORT RequestId');
  });

  it('reports a module without the handler export as Runtime.HandlerNotFound', async () => {
    const name = register('not-a-handler.ts');
    const response = await invoke({ FunctionName: name });
    expect(response.FunctionError).to.equal('Unhandled');
    expect(json(response)).to.deep.include({
      errorType: 'Runtime.HandlerNotFound',
      errorMessage: 'not-a-handler.handler is undefined or not exported',
    });
  });

  it('answers DryRun 204 without running anything', async () => {
    const name = register('echo.ts');
    const response = await invoke({ FunctionName: name, InvocationType: 'DryRun' });
    expect(response.StatusCode).to.equal(204);
    expect(runtime.stats(name)).to.include({ dryRuns: 1, syncInvocations: 0, accepted: 0, coldStarts: 0 });
  });

  it('raises ResourceNotFoundException for an unknown function', async () => {
    const error = await rejection(invoke({ FunctionName: 'no-such-function', Payload: '{}' }));
    expect(error).to.be.instanceOf(ResourceNotFoundException);
    expect(error).to.have.nested.property('$metadata.httpStatusCode', 404);
    expect(error).to.have.property('message', 'Function not found: arn:aws:lambda:us-east-1:123456789012:function:no-such-function');
  });

  it('raises InvalidRequestContentException for a payload that is not JSON, and runs nothing', async () => {
    const name = register('echo.ts');
    const error = await rejection(invoke({ FunctionName: name, InvocationType: 'Event', Payload: '{"half":' }));
    expect(error).to.be.instanceOf(InvalidRequestContentException);
    expect(error).to.have.nested.property('$metadata.httpStatusCode', 400);
    expect(runtime.stats(name)).to.include({ accepted: 0 });
    expect(runtime.stats(name).rejected).to.deep.equal({ InvalidRequestContentException: 1 });
  });

  it('raises RequestTooLargeException for an async payload over 1 MB, yet runs a 2 MB sync payload', async () => {
    const name = register('echo.ts');
    const big = JSON.stringify({ blob: 'x'.repeat(1024 * 1024) });
    const error = await rejection(event(name, { blob: 'x'.repeat(1024 * 1024) }));
    expect(error).to.be.instanceOf(RequestTooLargeException);
    expect(error).to.have.nested.property('$metadata.httpStatusCode', 413);
    const twoMb = JSON.stringify({ blob: 'y'.repeat(2 * 1024 * 1024) });
    const response = await invoke({ FunctionName: name, Payload: twoMb });
    expect(response.StatusCode).to.equal(200);
    expect(big.length).to.be.above(1024 * 1024);
    const tooBig = await rejection(invoke({ FunctionName: name, Payload: JSON.stringify({ blob: 'z'.repeat(6 * 1024 * 1024) }) }));
    expect(tooBig).to.be.instanceOf(RequestTooLargeException);
  });

  it('resolves full and partial ARNs and qualifiers to the registered function', async () => {
    const name = register('echo.ts');
    const arn = `arn:aws:lambda:us-east-1:123456789012:function:${name}`;
    const cases: Array<[InvokeCommandInput, string]> = [
      [{ FunctionName: arn }, arn],
      [{ FunctionName: `${arn}:live` }, `${arn}:live`],
      [{ FunctionName: `123456789012:function:${name}` }, arn],
      [{ FunctionName: `${name}:7` }, `${arn}:7`],
      [{ FunctionName: name, Qualifier: '$LATEST' }, `${arn}:$LATEST`],
    ];
    for (const [input, invokedArn] of cases) {
      const response = await invoke({ ...input, Payload: '{}' });
      expect(json(response), JSON.stringify(input)).to.have.nested.property('context.invokedFunctionArn', invokedArn);
    }
    const otherAccount = await rejection(invoke({ FunctionName: `arn:aws:lambda:us-east-1:999999999999:function:${name}` }));
    expect(otherAccount).to.be.instanceOf(ResourceNotFoundException);
    const probe = await lambda.send(new GetFunctionCommand({ FunctionName: arn }));
    expect(probe.Configuration).to.include({ FunctionName: name, State: 'Active', FunctionArn: arn, Timeout: 900, MemorySize: 128 });
  });

  it('raises ResourceConflictException while a function is Pending', async () => {
    const name = register('echo.ts', { state: 'Pending' });
    const error = await rejection(invoke({ FunctionName: name, InvocationType: 'Event', Payload: '{}' }));
    expect(error).to.be.instanceOf(ResourceConflictException);
    expect(error).to.have.property('message').that.contains('Pending');
  });

  it('raises TooManyRequestsException carrying retryAfterSeconds and a Reason at throttleRate 1', async () => {
    const name = register('echo.ts', { async: { throttleRate: 1 } });
    for (const type of ['Event', 'RequestResponse'] as const) {
      const error = await rejection(invoke({ FunctionName: name, InvocationType: type, Payload: '{}' }));
      expect(error).to.be.instanceOf(TooManyRequestsException);
      expect(error).to.have.nested.property('$metadata.httpStatusCode', 429);
      expect(error).to.have.property('retryAfterSeconds', '1');
      expect(error)
        .to.have.property('Reason')
        .that.is.oneOf(['ReservedFunctionConcurrentInvocationLimitExceeded', 'CallerRateLimitExceeded']);
    }
    expect(runtime.stats(name)).to.include({ throttled: 2, accepted: 0, syncInvocations: 0 });
  });

  it('retries a failing async handler maximumRetryAttempts times with the same request id, then stops', async () => {
    const name = register('fail.ts', { async: { maximumRetryAttempts: 2, ...FAST_RETRIES } });
    const out = file();
    const response = await event(name, { file: out });
    await runtime.idle(30_000);
    const runs = readLines(out);
    expect(runs.map((run) => run.requestId)).to.deep.equal(Array(3).fill(response.$metadata.requestId));
    const gaps = [(runs[1]?.at ?? 0) - (runs[0]?.at ?? 0), (runs[2]?.at ?? 0) - (runs[1]?.at ?? 0)];
    expect(gaps[0]).to.be.at.least(100);
    expect(gaps[1]).to.be.at.least(200);
    const [record] = runtime.events(name);
    expect(record?.deliveries.map((delivery) => [delivery.attempt, delivery.outcome])).to.deep.equal([
      [1, 'error'],
      [2, 'error'],
      [3, 'error'],
    ]);
    expect(runtime.stats(name)).to.include({ delivered: 3, retries: 2, failed: 3, queued: 0 });
  });

  it('kills a crashed delivery mid-run and retries it in a new process', async () => {
    const name = register('append.ts', { async: { crashRate: 1, crashAfterMs: 800, maximumRetryAttempts: 1, ...FAST_RETRIES } });
    const out = file();
    await event(name, { file: out, holdMs: 5_000 });
    await runtime.idle(30_000);
    const runs = readLines(out);
    expect(runs.map((run) => run.phase)).to.deep.equal(['start', 'start']);
    expect(runs[0]?.pid).to.not.equal(runs[1]?.pid);
    for (const run of runs) expect(alive(run.pid)).to.equal(false);
    expect(runtime.events(name)[0]?.deliveries.map((delivery) => delivery.outcome)).to.deep.equal(['crash', 'crash']);
    expect(runtime.stats(name)).to.include({ crashed: 2, retries: 1 });
  });

  it('kills the process at the deadline, while getRemainingTimeInMillis counts down', async () => {
    const name = register('remaining-time.ts', { timeoutSeconds: 1 });
    const out = file();
    const response = await invoke({ FunctionName: name, Payload: JSON.stringify({ file: out, everyMs: 100 }) });
    expect(response.FunctionError).to.equal('Unhandled');
    expect(json(response)).to.deep.include({ errorType: 'Sandbox.Timedout' });
    const readings = readLines(out);
    expect(readings.length).to.be.at.least(3);
    const remaining = readings.map((reading) => reading.remaining ?? -1);
    expect(remaining[0]).to.be.within(500, 1000);
    for (let i = 1; i < remaining.length; i++) expect(remaining[i]).to.be.below(remaining[i - 1] ?? 0);
    expect(remaining.at(-1)).to.be.below(400);
    // Killed at the deadline: nothing written after it, and the process is gone.
    const first = readings[0];
    const last = readings.at(-1);
    expect((last?.at ?? 0) - (first?.at ?? 0)).to.be.below(1000);
    expect(alive(first?.pid ?? 0)).to.equal(false);
    expect(runtime.stats(name)).to.include({ timedOut: 1, warmProcesses: 0 });
  });

  it('never runs more than the reserved concurrency of 2 while 10 events queue, and runs all 10', async () => {
    const name = register('append.ts', { reservedConcurrency: 2 });
    const out = file();
    const responses = await Promise.all(Array.from({ length: 10 }, (_, i) => event(name, { file: out, holdMs: 250, tag: String(i) })));
    expect(responses.every((response) => response.StatusCode === 202)).to.equal(true);
    const early = runtime.stats(name);
    expect(early.running).to.be.at.most(2);
    expect(early.running + early.queued + early.succeeded).to.equal(10);
    await runtime.idle(40_000);
    const lines = readLines(out);
    expect(lines.filter((line) => line.phase === 'end')).to.have.length(10);
    let concurrent = 0;
    let most = 0;
    const edges = lines
      .map((line) => ({ at: line.at, step: line.phase === 'start' ? 1 : -1 }))
      .sort((a, b) => a.at - b.at || a.step - b.step);
    for (const edge of edges) {
      concurrent += edge.step;
      most = Math.max(most, concurrent);
    }
    expect(most).to.equal(2);
    expect(runtime.stats(name)).to.include({ maxConcurrent: 2, succeeded: 10 });
  });

  it('delivers every event twice at duplicateRate 1', async () => {
    const name = register('append.ts', { async: { duplicateRate: 1 } });
    const out = file();
    const ids = await Promise.all(Array.from({ length: 4 }, async () => (await event(name, { file: out })).$metadata.requestId));
    await runtime.idle(30_000);
    const starts = readLines(out).filter((line) => line.phase === 'start');
    for (const id of ids) expect(starts.filter((line) => line.requestId === id)).to.have.length(2);
    for (const record of runtime.events(name)) {
      expect(record.deliveries.map((delivery) => delivery.duplicate).sort()).to.deep.equal([false, true]);
    }
    expect(runtime.stats(name)).to.include({ accepted: 4, delivered: 8, duplicates: 4 });
    expect(runtime.acceptedCount(name)).to.equal(4);
  });

  it('accepts every event and delivers none at dropRate 1', async () => {
    const name = register('append.ts', { async: { dropRate: 1 } });
    const out = file();
    for (let i = 0; i < 4; i++) expect((await event(name, { file: out })).StatusCode).to.equal(202);
    await runtime.idle(10_000);
    expect(readLines(out)).to.deep.equal([]);
    expect(runtime.events(name).map((record) => record.dropped)).to.deep.equal(['random', 'random', 'random', 'random']);
    expect(runtime.stats(name)).to.deep.include({ accepted: 4, delivered: 0, dropped: { random: 4, eventAge: 0, deleted: 0 } });
  });

  it('drops an event that waits behind reserved concurrency longer than maximumEventAgeSeconds', async () => {
    const name = register('append.ts', { reservedConcurrency: 1, async: { maximumEventAgeSeconds: 0.5 } });
    const out = file();
    const first = await event(name, { file: out, holdMs: 1_500 });
    const waiting = await event(name, { file: out });
    await runtime.idle(30_000);
    expect([...new Set(readLines(out).map((line) => line.requestId))]).to.deep.equal([first.$metadata.requestId]);
    const record = runtime.events(name).find((candidate) => candidate.requestId === waiting.$metadata.requestId);
    expect(record?.dropped).to.equal('eventAge');
    expect(record?.deliveries).to.deep.equal([]);
    expect((record?.droppedAt ?? 0) - (record?.acceptedAt ?? 0)).to.be.at.least(500);
    expect(runtime.stats(name).dropped.eventAge).to.equal(1);
  });

  it('makes the same fault decisions for the same seed', async () => {
    const faults = { async: { throttleRate: 0.3, dropRate: 0.3, duplicateRate: 0.4 } };
    async function fates(seed: number): Promise<string[]> {
      const seeded = await startLambdaRuntime({
        seed,
        logger: silentLogger(),
        functions: [{ name: 'seeded', handler: fixture('noop.ts'), ...faults }],
      });
      const client = clientFor(seeded);
      try {
        const calls: string[] = [];
        for (let i = 0; i < 24; i++) {
          try {
            await client.send(new InvokeCommand({ FunctionName: 'seeded', InvocationType: 'Event', Payload: '{}' }));
            calls.push('accepted');
          } catch (error) {
            calls.push(error instanceof TooManyRequestsException ? 'throttled' : 'other error');
          }
        }
        await seeded.idle(30_000);
        const fatesOfEvents = seeded.events('seeded').map((record) => record.dropped ?? `delivered x${record.deliveries.length}`);
        return [...calls, ...fatesOfEvents];
      } finally {
        client.destroy();
        await seeded.stop();
      }
    }
    const [a, b, c] = await Promise.all([fates(7), fates(7), fates(8)]);
    expect(a).to.deep.equal(b);
    expect(a).to.include.members(['throttled', 'random', 'delivered x2', 'delivered x1']);
    expect(c).to.not.deep.equal(a);
  });

  it('reuses a warm process: one cold start for five sequential invokes', async () => {
    const name = register('echo.ts');
    const pids = new Set<unknown>();
    for (let i = 0; i < 5; i++) pids.add(Reflect.get(Object(json(await invoke({ FunctionName: name }))), 'pid'));
    expect(pids.size).to.equal(1);
    expect(runtime.stats(name)).to.include({ coldStarts: 1, syncInvocations: 5, warmProcesses: 1 });
  });

  it('leaves no function process (nor anything it started) running after stop()', async () => {
    const own = await startLambdaRuntime({
      logger: silentLogger(),
      functions: [
        { name: 'busy', handler: fixture('append.ts') },
        { name: 'later', handler: fixture('append.ts'), async: { startDelayMs: 60_000 } },
      ],
    });
    const client = clientFor(own);
    const out = file();
    await Promise.all(
      [1, 2, 3].map(() =>
        client.send(
          new InvokeCommand({ FunctionName: 'busy', InvocationType: 'Event', Payload: JSON.stringify({ file: out, holdMs: 60_000 }) }),
        ),
      ),
    );
    await client.send(new InvokeCommand({ FunctionName: 'later', InvocationType: 'Event', Payload: '{}' }));
    const inFlight = rejection(
      client.send(new InvokeCommand({ FunctionName: 'busy', Payload: JSON.stringify({ file: out, holdMs: 60_000 }) })),
    );
    await waitFor('four handlers to start', () => readLines(out).length === 4);
    const pids = own.pids();
    expect(pids).to.have.length(4);
    const members = groupMembers(pids);
    expect(members).to.include.members(pids);
    await own.stop();
    expect(members.filter(alive)).to.deep.equal([]);
    expect(groupMembers(pids)).to.deep.equal([]);
    expect(await inFlight).to.be.instanceOf(Error);
    client.destroy();
    await own.stop(); // a second stop is harmless
  });

  it('leaves nothing behind that keeps a Node process alive after stop()', async () => {
    // A separate Node process starts a runtime with queued, delayed and running work, stops it, and must
    // then exit on its own: no timer, socket or child process may be left.
    const script = `
      import { startLambdaRuntime } from ${JSON.stringify(path.join(root, 'dev/src/lambda-runtime/index.ts'))};
      import { silentLogger } from ${JSON.stringify(path.join(root, 'src/ops/logger.ts'))};
      import { LambdaClient, InvokeCommand } from '@aws-sdk/client-lambda';
      const rt = await startLambdaRuntime({ logger: silentLogger(), functions: [
        { name: 'slow', handler: ${JSON.stringify(fixture('append.ts'))}, reservedConcurrency: 1, async: { startDelayMs: 100 } },
      ] });
      const client = new LambdaClient({ endpoint: rt.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
      for (let i = 0; i < 3; i++) {
        await client.send(new InvokeCommand({ FunctionName: 'slow', InvocationType: 'Event', Payload: JSON.stringify({ file: ${JSON.stringify(file())}, holdMs: 60000 }) }));
      }
      while (rt.stats().running === 0) await new Promise((r) => setTimeout(r, 20));
      client.destroy();
      await rt.stop();
      console.log('stopped');
    `;
    const started = Date.now();
    const child = spawn(
      process.execPath,
      ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href, '--input-type=module', '-e', script],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.on('exit', (exitCode) => {
        clearTimeout(timer);
        resolve(exitCode);
      });
    });
    expect(output).to.contain('stopped');
    expect(code, output).to.equal(0);
    expect(Date.now() - started).to.be.below(30_000);
  });
});
