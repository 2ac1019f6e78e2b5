// The function guard's bookkeeping: what it keeps per function as pools come and go. The Lambda client is a
// stand-in that answers the three reads (the guard against the real runtime is test/e2e/function-guard.test.ts).
import { expect } from 'chai';
import {
  GetFunctionConcurrencyCommand,
  GetFunctionConfigurationCommand,
  GetFunctionEventInvokeConfigCommand,
  PutFunctionEventInvokeConfigCommand,
} from '@aws-sdk/client-lambda';
import { FunctionGuard } from '../../src/controller/function-guard.ts';
import type { InvokeTarget, Invoker } from '../../src/lambda/invoker.ts';
import { silentLogger } from '../../src/ops/logger.ts';

interface Calls {
  reads: string[];
  puts: Array<{ name: string; age: number }>;
}

/** An invoker whose client reports each function with `memoryMb` of memory and no event invoke config yet. */
function fakeInvoker(memoryMb: (name: string) => number): { invoker: Invoker; calls: Calls } {
  const calls: Calls = { reads: [], puts: [] };
  const asyncConfig = new Map<string, { MaximumRetryAttempts: number; MaximumEventAgeInSeconds: number }>();
  const client = {
    send: async (command: { input: { FunctionName: string; MaximumEventAgeInSeconds?: number; MaximumRetryAttempts?: number } }) => {
      const name = command.input.FunctionName;
      if (command instanceof GetFunctionConfigurationCommand) {
        calls.reads.push(name);
        return { State: 'Active', Timeout: 900, MemorySize: memoryMb(name) };
      }
      if (command instanceof GetFunctionConcurrencyCommand) return { ReservedConcurrentExecutions: 10 };
      if (command instanceof GetFunctionEventInvokeConfigCommand) {
        const config = asyncConfig.get(name);
        if (config) return config;
        throw Object.assign(new Error('no event invoke config'), { name: 'ResourceNotFoundException' });
      }
      if (command instanceof PutFunctionEventInvokeConfigCommand) {
        calls.puts.push({ name, age: command.input.MaximumEventAgeInSeconds ?? -1 });
        asyncConfig.set(name, {
          MaximumRetryAttempts: command.input.MaximumRetryAttempts ?? 2,
          MaximumEventAgeInSeconds: command.input.MaximumEventAgeInSeconds ?? 21_600,
        });
        return {};
      }
      throw new Error(`unexpected command ${command.constructor.name}`);
    },
  };
  const invoker = { clients: { client: () => client }, defaultRegion: 'us-east-1' } as unknown as Invoker;
  return { invoker, calls };
}

/** Lets the guard's background reads (and puts) land. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
}

describe('FunctionGuard', () => {
  it('forgets a function once no pool names it: a thousand pools come and go and nothing of them stays', async () => {
    const { invoker } = fakeInvoker(() => 512);
    const guard = new FunctionGuard(invoker, silentLogger(), { intervalMs: 60_000 });
    for (let i = 0; i < 1_000; i++)
      guard.check({ name: `fn-${i}`, roleArn: 'arn:aws:iam::123456789012:role/team-a' }, { poolUid: `uid-${i}` });
    await settle();
    expect(guard.size).to.equal(1_000);
    expect(guard.memoryOf({ name: 'fn-999' })).to.equal(512);
    for (let i = 0; i < 1_000; i++) guard.forgetPool(`uid-${i}`);
    expect(guard.size).to.equal(0);
    expect(guard.memoryOf({ name: 'fn-999' })).to.equal(undefined);
  });

  it('keeps a function while another pool still names it, and drops the one a pool moved away from', async () => {
    const { invoker, calls } = fakeInvoker((name) => (name === 'resize' ? 1_024 : 256));
    const guard = new FunctionGuard(invoker, silentLogger(), { intervalMs: 60_000 });
    guard.check({ name: 'resize' }, { poolUid: 'a' });
    guard.check({ name: 'resize' }, { poolUid: 'b' });
    await settle();
    expect(calls.reads).to.deep.equal(['resize'], 'two pools of one function share one read');
    guard.check({ name: 'transcode' }, { poolUid: 'b' });
    await settle();
    expect(guard.size).to.equal(2);
    guard.check({ name: 'transcode' }, { poolUid: 'a' });
    expect(guard.size).to.equal(1, 'resize is named by no pool any more');
    expect(guard.memoryOf({ name: 'resize' })).to.equal(undefined);
    expect(guard.memoryOf({ name: 'transcode' })).to.equal(256);
    guard.forgetPool('a');
    expect(guard.memoryOf({ name: 'transcode' })).to.equal(256, 'pool b still names it');
    guard.forgetPool('b');
    expect(guard.size).to.equal(0);
  });

  it('finds the memory of a function read under any identity, and only of that function', async () => {
    const { invoker } = fakeInvoker((name) => (name === 'resize' ? 2_048 : 128));
    const guard = new FunctionGuard(invoker, silentLogger(), { intervalMs: 60_000 });
    const resize: InvokeTarget = {
      name: 'resize',
      qualifier: 'live',
      region: 'eu-west-1',
      roleArn: 'arn:aws:iam::123456789012:role/media',
    };
    guard.check(resize, { poolUid: 'a' });
    guard.check({ name: 'resize-large' }, { poolUid: 'b' });
    await settle();
    expect(guard.memoryOf({ name: 'resize', qualifier: 'live', region: 'eu-west-1' })).to.equal(2_048);
    expect(guard.memoryOf({ name: 'resize', region: 'eu-west-1' })).to.equal(undefined, 'no pool names the unqualified function');
    expect(guard.memoryOf({ name: 'resize-large' })).to.equal(128);
  });

  it('leaves nothing behind when the pool goes while its Managed put is under way', async () => {
    const { invoker, calls } = fakeInvoker(() => 512);
    const guard = new FunctionGuard(invoker, silentLogger(), { intervalMs: 60_000 });
    guard.check({ name: 'resize' }, { poolUid: 'a', managed: { startTimeoutSeconds: 600 } });
    for (let i = 0; i < 50 && calls.puts.length === 0; i++) await Promise.resolve();
    expect(calls.puts, 'the put is under way').to.have.length(1);
    guard.forgetPool('a');
    await settle();
    expect(guard.size).to.equal(0);
    expect(calls.reads, 'no read after the put for a pool that is gone').to.have.length(1);
  });

  it('sets the event age of a Managed function from the pools that still manage it', async () => {
    const { invoker, calls } = fakeInvoker(() => 512);
    const guard = new FunctionGuard(invoker, silentLogger(), { intervalMs: 0 });
    guard.check({ name: 'resize' }, { poolUid: 'a', managed: { startTimeoutSeconds: 600 } });
    await settle();
    guard.check({ name: 'resize' }, { poolUid: 'b', managed: { startTimeoutSeconds: 1_800 } });
    await settle();
    guard.forgetPool('b');
    guard.check({ name: 'resize' }, { poolUid: 'a', managed: { startTimeoutSeconds: 600 } });
    await settle();
    expect(calls.puts.map((p) => p.age)).to.deep.equal([600, 1_800, 600]);
    guard.check({ name: 'resize' }, { poolUid: 'a' });
    await settle();
    expect(calls.puts).to.have.length(3, 'an Unmanaged pool leaves the setting alone');
  });
});
