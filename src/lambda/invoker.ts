// Sends asynchronous invokes (InvocationType=Event) with the AWS SDK at bounded parallelism.
// Each call carries only the invocation id; the worker reads everything else from the row.
import http from 'node:http';
import https from 'node:https';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import type { FunctionRef } from '../api/types.ts';
import { workerEventPayload } from '../worker/event.ts';
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
  /** Invoke calls in flight at once, per batch. */
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
      let next = 0;
      const lane = async () => {
        while (next < ids.length) {
          const id = ids[next++];
          if (id === undefined) return;
          if (stopWith) {
            results.push({ id, accepted: false, sent: false, failure: stopWith });
            continue;
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
        }
      };
      await Promise.all(Array.from({ length: Math.min(parallelism, ids.length) }, lane));
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
