// Sends asynchronous invokes (InvocationType=Event) with the AWS SDK at bounded parallelism.
// Each call carries only the invocation id; the worker reads everything else from the row.
import http from 'node:http';
import https from 'node:https';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import type { FunctionRef } from '../api/types.ts';
import { workerEventPayload } from '@lambda-task-pool/worker/protocol';
import { classifyInvokeError, type InvokeFailure } from './errors.ts';

export type InvokeResult =
  | { id: number; accepted: true; requestId?: string }
  /** `sent` is false for rows not sent at all because an earlier call of the batch was throttled or rejected. */
  | { id: number; accepted: false; sent: boolean; failure: InvokeFailure };

export interface InvokerOptions {
  /** Region used when a pool's function names none (and its name is not an ARN). */
  defaultRegion: string;
  /** An endpoint override, e.g. the local Lambda runtime. The SDK also reads AWS_ENDPOINT_URL_LAMBDA. */
  endpoint?: string;
  /** Invoke calls in flight at once, across every pool's batches: passes of many pools share it. */
  parallelism?: number;
  requestTimeoutMs?: number;
  /** Static credentials (the local stack); by default the SDK's provider chain finds them. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

export interface Invoker {
  invokeBatch(fn: FunctionRef, ids: readonly number[]): Promise<InvokeResult[]>;
  close(): void;
}

/** The region of a function ARN (arn:aws:lambda:REGION:...), if the name is one. */
export function regionOf(fn: FunctionRef): string | undefined {
  return fn.region ?? /^arn:aws[a-zA-Z-]*:lambda:([a-z0-9-]+):/.exec(fn.name)?.[1];
}

export function createInvoker(options: InvokerOptions): Invoker {
  const parallelism = options.parallelism ?? 16;
  const clients = new Map<string, LambdaClient>();
  const slots = new Slots(parallelism);
  const agentOptions = { keepAlive: true, maxSockets: Math.max(parallelism, 16) };
  const httpAgent = new http.Agent(agentOptions);
  const httpsAgent = new https.Agent(agentOptions);

  const clientFor = (region: string) => {
    let client = clients.get(region);
    if (!client) {
      client = new LambdaClient({
        region,
        ...(options.endpoint ? { endpoint: options.endpoint } : {}),
        ...(options.credentials ? { credentials: options.credentials } : {}),
        // One attempt per call: retries are ours, recorded on the invocation row and paced by its class.
        maxAttempts: 1,
        requestHandler: { httpAgent, httpsAgent, requestTimeout: options.requestTimeoutMs ?? 10_000, connectionTimeout: 5_000 },
      });
      clients.set(region, client);
    }
    return client;
  };

  return {
    async invokeBatch(fn, ids) {
      const client = clientFor(regionOf(fn) ?? options.defaultRegion);
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
                Payload: Buffer.from(workerEventPayload(id)),
              }),
            );
            results.push({ id, accepted: true, requestId: out.$metadata.requestId });
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
      for (const client of clients.values()) client.destroy();
      clients.clear();
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}

/** A counting semaphore: at most `size` holders at once, the rest wait in arrival order. */
class Slots {
  private held = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly size: number) {}

  async acquire(): Promise<void> {
    if (this.held < this.size) {
      this.held += 1;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.held -= 1;
  }
}
