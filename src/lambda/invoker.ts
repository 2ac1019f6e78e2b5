// Sends asynchronous invokes (InvocationType=Event) with the AWS SDK at bounded parallelism.
// Each call carries only the invocation id; the worker reads everything else from the row.
import { InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import type { FunctionRef } from '../api/types.ts';
import { workerEventPayload } from '@lambda-task-pool/worker/protocol';
import { LambdaClients } from './clients.ts';
import { Fifo } from './fifo.ts';
import { WhenIdle } from './when-idle.ts';
import { classifyInvokeError, type InvokeFailure } from './errors.ts';

export type InvokeResult =
  /** `acceptedAt`: when Lambda's answer arrived, on the process's monotonic clock (performance.now()). */
  | { id: number; accepted: true; requestId?: string; acceptedAt: number }
  /** `sent` is false for rows not sent at all because an earlier call of the batch was throttled or rejected. */
  | { id: number; accepted: false; sent: boolean; failure: InvokeFailure };

export interface InvokerOptions {
  /** Region used when a pool's function names none (and its name is not an ARN). */
  defaultRegion: string;
  /** An endpoint override, e.g. the local Lambda runtime. The SDK also reads AWS_ENDPOINT_URL_LAMBDA. */
  endpoint?: string;
  /** STS endpoint override, for namespace roles. The SDK also reads AWS_ENDPOINT_URL_STS. */
  stsEndpoint?: string;
  /** Invoke calls in flight at once, across every pool's batches: passes of many pools share it. */
  parallelism?: number;
  /** A call whose connection moves no byte for this long is given up as a TimeoutError (default 10 s). */
  requestTimeoutMs?: number;
  /** Static credentials (the local stack); by default the SDK's provider chain finds them. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

/** Where to invoke: a function, and the IAM role to invoke it as (the namespace's), if any. */
export interface InvokeTarget extends FunctionRef {
  roleArn?: string;
}

export interface Invoker {
  invokeBatch(target: InvokeTarget, ids: readonly number[]): Promise<InvokeResult[]>;
  /** Invoke calls in flight or waiting for a slot. */
  inFlight(): number;
  /** Resolves once no invoke call is in flight or waiting. */
  idle(): Promise<void>;
  /** The clients the invoker uses, shared with the function-settings guard. */
  readonly clients: LambdaClients;
  readonly defaultRegion: string;
  close(): void;
}

/** The region of a function ARN (arn:aws:lambda:REGION:...), if the name is one. */
export function regionOf(fn: FunctionRef): string | undefined {
  return fn.region ?? /^arn:aws[a-zA-Z-]*:lambda:([a-z0-9-]+):/.exec(fn.name)?.[1];
}

/** One batch's calls: answered in any order, returned sorted by id once the last one is. */
interface BatchRun {
  client: LambdaClient;
  fn: InvokeTarget;
  ids: readonly number[];
  /** How many of `ids` runners have taken. */
  taken: number;
  results: InvokeResult[];
  left: number;
  /** Set by a throttle or a rejection: the batch's calls not yet sent get the same answer, unsent. */
  stopWith?: InvokeFailure;
  done: (results: InvokeResult[]) => void;
}

export function createInvoker(options: InvokerOptions): Invoker {
  const parallelism = options.parallelism ?? 16;
  const clients = new LambdaClients({
    maxSockets: Math.max(parallelism, 16),
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    ...(options.stsEndpoint ? { stsEndpoint: options.stsEndpoint } : {}),
    ...(options.credentials ? { credentials: options.credentials } : {}),
    ...(options.requestTimeoutMs ? { requestTimeoutMs: options.requestTimeoutMs } : {}),
  });
  // Batches with calls not yet sent wait in one queue, and at most `parallelism` runners take one call of
  // each in turn: a pool whose pass starts one invocation goes within a turn, not behind another pool's thousand
  // (round robin; a pass is one batch per function). A deep pool's thousand calls are one queue entry, not a
  // thousand pending promises each waiting for a slot.
  const turns = new Fifo<BatchRun>();
  /** Calls not yet taken by a runner, across batches. */
  let waiting = 0;
  const take = (): { batch: BatchRun; id: number } | undefined => {
    const batch = turns.take();
    if (!batch) return undefined;
    const id = batch.ids[batch.taken] as number;
    batch.taken += 1;
    waiting -= 1;
    if (batch.taken < batch.ids.length) turns.put(batch);
    return { batch, id };
  };
  let runners = 0;
  const whenIdle = new WhenIdle();

  const call = async (batch: BatchRun, id: number) => {
    if (batch.stopWith) {
      batch.results.push({ id, accepted: false, sent: false, failure: batch.stopWith });
      return;
    }
    try {
      const out = await batch.client.send(
        new InvokeCommand({
          FunctionName: batch.fn.name,
          Qualifier: batch.fn.qualifier,
          InvocationType: 'Event',
          Payload: workerEventPayload(id),
        }),
      );
      batch.results.push({ id, accepted: true, requestId: out.$metadata.requestId, acceptedAt: performance.now() });
    } catch (error) {
      const failure = classifyInvokeError(error);
      // A throttle or a rejection will answer the rest of this batch the same way: don't send them.
      if (failure.kind !== 'transient') batch.stopWith = failure;
      batch.results.push({ id, accepted: false, sent: true, failure });
    }
  };
  const runner = async () => {
    for (let next = take(); next; next = take()) {
      const { batch, id } = next;
      // call() never rejects: it answers every failure itself, and classifyInvokeError reads any thrown value.
      await call(batch, id);
      batch.left -= 1;
      if (batch.left === 0) batch.done(batch.results.sort((a, b) => a.id - b.id));
    }
    runners -= 1;
    if (runners === 0) whenIdle.settle();
  };

  return {
    clients,
    defaultRegion: options.defaultRegion,
    inFlight: () => runners + waiting,
    idle: () => whenIdle.wait(runners > 0),
    // async: a client that cannot be built (say, for a malformed region) rejects the batch, as any failure does.
    async invokeBatch(fn, ids) {
      if (ids.length === 0) return [];
      const client = clients.client(regionOf(fn) ?? options.defaultRegion, fn.roleArn);
      return new Promise<InvokeResult[]>((resolve) => {
        const batch: BatchRun = { client, fn, ids: [...ids], taken: 0, results: [], left: ids.length, done: resolve };
        turns.put(batch);
        waiting += ids.length;
        while (runners < parallelism && waiting > 0) {
          runners += 1;
          void runner();
        }
      });
    },
    close() {
      clients.close();
    },
  };
}
