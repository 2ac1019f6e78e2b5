// The local runtime's raw accept rate, as a client in a process of its own sees it (the controller is one):
// `tsx bench/scale/raw-client.ts ENDPOINT FUNCTION WARM_UP COUNT PARALLELISM` sends WARM_UP asynchronous
// invokes, then COUNT more with PARALLELISM in flight, straight through the AWS SDK, and prints
// {"perSecond": N} for the COUNT. The local runtime runs inside the benchmark's process: a client there
// shares its event loop and never crosses a process boundary, which no real client gets to do.
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';

const [endpoint, functionName, warmUpArg, countArg, parallelismArg] = process.argv.slice(2);
const warmUp = Number(warmUpArg);
const count = Number(countArg);
const parallelism = Number(parallelismArg);
if (!endpoint || !functionName || !(warmUp >= 0) || !(count > 0) || !(parallelism > 0)) {
  process.stderr.write('usage: raw-client.ts ENDPOINT FUNCTION WARM_UP COUNT PARALLELISM\n');
  process.exit(2);
}
const client = new LambdaClient({
  endpoint,
  region: 'us-east-1',
  credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
  maxAttempts: 1,
});
const send = async (n: number) => {
  let next = 0;
  await Promise.all(
    Array.from({ length: parallelism }, async () => {
      while (next++ < n) await client.send(new InvokeCommand({ FunctionName: functionName, InvocationType: 'Event', Payload: '{}' }));
    }),
  );
};
try {
  await send(warmUp);
  const started = performance.now();
  await send(count);
  process.stdout.write(`${JSON.stringify({ perSecond: count / ((performance.now() - started) / 1000) })}\n`);
} finally {
  client.destroy();
}
