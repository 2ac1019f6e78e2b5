// Sends asynchronous invokes (InvocationType=Event) with the AWS SDK at bounded parallelism.
// Each call carries only the invocation id; the worker reads everything else from the row.
import { InvokeCommand } from '@aws-sdk/client-lambda';
import type { FunctionRef } from '../api/types.ts';
import { workerEventPayload } from '@lambda-task-pool/worker/protocol';
import { LambdaClients } from './clients.ts';
import { Slots } from './slots.ts';
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

export function createInvoker(options: InvokerOptions): Invoker {
  const parallelism = options.parallelism ?? 16;
  const slots = new Slots(parallelism);
  const clients = new LambdaClients({
    maxSockets: Math.max(parallelism, 16),
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    ...(options.stsEndpoint ? { stsEndpoint: options.stsEndpoint } : {}),
    ...(options.credentials ? { credentials: options.credentials } : {}),
    ...(options.requestTimeoutMs ? { requestTimeoutMs: options.requestTimeoutMs } : {}),
  });

  return {
    clients,
    defaultRegion: options.defaultRegion,
    inFlight: () => slots.busy,
    idle: () => slots.idle(),
    async invokeBatch(fn, ids) {
      const client = clients.client(regionOf(fn) ?? options.defaultRegion, fn.roleArn);
      const results: InvokeResult[] = [];
      let stopWith: InvokeFailure | undefined;
      const one = async (id: number) => {
        await slots.acquire();
        try {
          if (stopWith) {
            results.push({ id, accepted: false, sent: false, failure: stopWith });
            return;
          }
          try {
            const out = await client.send(
              new InvokeCommand({
                FunctionName: fn.name,
                Qualifier: fn.qualifier,
                InvocationType: 'Event',
                Payload: workerEventPayload(id),
              }),
            );
            results.push({ id, accepted: true, requestId: out.$metadata.requestId, acceptedAt: performance.now() });
          } catch (error) {
            const failure = classifyInvokeError(error);
            // A throttle or a rejection will answer the rest of this batch the same way: don't send them.
            if (failure.kind !== 'transient') stopWith = failure;
            results.push({ id, accepted: false, sent: true, failure });
          }
        } finally {
          slots.release();
        }
      };
      await Promise.all(ids.map(one));
      return results.sort((a, b) => a.id - b.id);
    },
    close() {
      clients.close();
    },
  };
}
