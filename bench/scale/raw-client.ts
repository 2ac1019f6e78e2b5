// The local runtime's raw accept rate, as a client in a process of its own sees it (the controller is one):
// `tsx bench/scale/raw-client.ts ENDPOINT FUNCTION PARALLELISM` then reads one count per line on stdin,
// sends that many asynchronous invokes straight through the AWS SDK with PARALLELISM in flight, and prints
// {"perSecond": N, "cpuMsPerInvoke": C, "firstMs": F, "windowPerSecond": W, "mainThread": T} for them on a line
// of its own (F: ms from the start to the first answer; W: the rate from the first answer to the last; T: its
// main thread's time on a core and waiting for one, process-stats.ts's ThreadTimes). It lives as long as its stdin, so the
// benchmark can measure the raw rate right before each of its own measurements, with the same warm client
// each time. The local runtime runs inside the benchmark's process: a client there would share its event
// loop and never cross a process boundary, which no real client gets to do.
import { createInterface } from 'node:readline';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { Sha256 } from '../../src/lambda/sha256.ts';
import { threadTimes, threadTimesBetween } from './process-stats.ts';

const [endpoint, functionName, parallelismArg] = process.argv.slice(2);
const parallelism = Number(parallelismArg);
if (!endpoint || !functionName || !(parallelism > 0)) {
  process.stderr.write('usage: raw-client.ts ENDPOINT FUNCTION PARALLELISM, then one count per line on stdin\n');
  process.exit(2);
}
const client = new LambdaClient({
  endpoint,
  region: 'us-east-1',
  credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
  maxAttempts: 1,
  // As the controller's clients (src/lambda/clients.ts): the middleware stack resolved once, not per send, and
  // signing keys imported once. The controller's share then measures its own work, not a cheaper client.
  cacheMiddleware: true,
  sha256: Sha256,
});
/** Sends `n` invokes; returns when the first and the last answers came (performance.now()). */
const send = async (n: number) => {
  let next = 0;
  let first = Number.NaN;
  let last = Number.NaN;
  await Promise.all(
    Array.from({ length: parallelism }, async () => {
      while (next++ < n) {
        await client.send(new InvokeCommand({ FunctionName: functionName, InvocationType: 'Event', Payload: '{}' }));
        last = performance.now();
        if (Number.isNaN(first)) first = last;
      }
    }),
  );
  return { first, last };
};
try {
  for await (const line of createInterface({ input: process.stdin })) {
    const count = Number(line.trim());
    if (!(count > 0)) throw new Error(`raw-client: not a count of invokes: ${JSON.stringify(line)}`);
    const thread = threadTimes();
    const started = performance.now();
    const cpu = process.cpuUsage();
    const answers = await send(count);
    const used = process.cpuUsage(cpu);
    const perSecond = count / ((performance.now() - started) / 1000);
    const mainThread = threadTimesBetween(thread, threadTimes());
    const cpuMsPerInvoke = (used.user + used.system) / 1000 / count;
    const firstMs = answers.first - started;
    const windowPerSecond = (count - 1) / ((answers.last - answers.first) / 1000);
    process.stdout.write(`${JSON.stringify({ perSecond, cpuMsPerInvoke, firstMs, windowPerSecond, mainThread })}\n`);
  }
} finally {
  client.destroy();
}
