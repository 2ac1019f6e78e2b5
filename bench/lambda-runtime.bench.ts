// Accept rate of the local Lambda runtime: Event invokes per second through the real AWS SDK over HTTP,
// against a trivial handler whose deliveries run meanwhile (as they would under a dispatching controller).
import { performance } from 'node:perf_hooks';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { startLambdaRuntime } from '../dev/src/lambda-runtime/index.ts';
import { silentLogger } from '../src/ops/logger.ts';

const INVOKES_PER_ROUND = 2000;
const CONCURRENCY = 32;
const ROUNDS = 5;
const WARM_UP_INVOKES = 200;

const handler = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../test/fixtures/functions/noop.ts');

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}

interface Round {
  invokesPerSecond: number;
  deliveriesPerSecond: number;
  latenciesMs: number[];
}

/** Sends `count` Event invokes, `concurrency` at a time; returns each call's latency. */
async function invokeMany(client: LambdaClient, count: number, concurrency: number): Promise<number[]> {
  const latencies: number[] = [];
  let next = 0;
  async function worker(): Promise<void> {
    while (next < count) {
      const index = next++;
      const started = performance.now();
      await client.send(new InvokeCommand({ FunctionName: 'noop', InvocationType: 'Event', Payload: JSON.stringify({ index }) }));
      latencies.push(performance.now() - started);
    }
  }
  await Promise.all(Array.from({ length: concurrency }, () => worker()));
  return latencies;
}

export async function run(): Promise<Record<string, number | string>> {
  const runtime = await startLambdaRuntime({ seed: 1, logger: silentLogger(), functions: [{ name: 'noop', handler }] });
  const client = new LambdaClient({
    endpoint: runtime.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 1,
  });
  try {
    await invokeMany(client, WARM_UP_INVOKES, CONCURRENCY);
    await runtime.idle(120_000);
    const rounds: Round[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const started = performance.now();
      const latenciesMs = await invokeMany(client, INVOKES_PER_ROUND, CONCURRENCY);
      const accepted = performance.now() - started;
      await runtime.idle(120_000);
      const drained = performance.now() - started;
      rounds.push({
        invokesPerSecond: (INVOKES_PER_ROUND / accepted) * 1000,
        deliveriesPerSecond: (INVOKES_PER_ROUND / drained) * 1000,
        latenciesMs: latenciesMs.sort((a, b) => a - b),
      });
    }
    const byRate = [...rounds].sort((a, b) => a.invokesPerSecond - b.invokesPerSecond);
    const median = byRate[Math.floor(byRate.length / 2)];
    if (median === undefined) throw new Error('no benchmark round ran');
    const stats = runtime.stats('noop');
    return {
      benchmark: 'lambda-runtime accept rate (Event invokes via @aws-sdk/client-lambda)',
      rounds: ROUNDS,
      invokesPerRound: INVOKES_PER_ROUND,
      concurrency: CONCURRENCY,
      invokesPerSecond: round2(median.invokesPerSecond),
      invokesPerSecondMin: round2(byRate[0]?.invokesPerSecond ?? Number.NaN),
      invokesPerSecondMax: round2(byRate.at(-1)?.invokesPerSecond ?? Number.NaN),
      acceptLatencyP50Ms: round2(percentile(median.latenciesMs, 50)),
      acceptLatencyP99Ms: round2(percentile(median.latenciesMs, 99)),
      deliveriesPerSecond: round2(median.deliveriesPerSecond),
      accepted: stats.accepted,
      succeeded: stats.succeeded,
      coldStarts: stats.coldStarts,
    };
  } finally {
    client.destroy();
    await runtime.stop();
  }
}
