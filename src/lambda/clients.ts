// One LambdaClient per region and identity, sharing one set of HTTP agents. An identity is the controller's
// own credentials (the SDK's provider chain, or static ones on the local stack) or an IAM role a namespace
// names (namespace-roles.ts), assumed through STS. The SDK caches the role's temporary credentials and
// assumes the role again when they are within five minutes of expiry (its identity-provider memoization).
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { Sha256 } from './sha256.ts';
import { sweepConnections, sweepEveryMs, type Seen } from './stalled-connections.ts';

interface TemporaryCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: Date;
}

export interface LambdaClientsOptions {
  /** An endpoint override, e.g. the local Lambda runtime. The SDK also reads AWS_ENDPOINT_URL_LAMBDA. */
  endpoint?: string;
  /** STS endpoint override (the local runtime answers AssumeRole too). The SDK also reads AWS_ENDPOINT_URL_STS. */
  stsEndpoint?: string;
  /** Static credentials (the local stack); by default the SDK's provider chain finds them. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  maxSockets: number;
  /** A call whose connection moves no byte for this long is given up as a TimeoutError (default 10 s). */
  requestTimeoutMs?: number;
  /** The session name assumed roles are given (CloudTrail shows it). */
  sessionName?: string;
}

export class LambdaClients {
  private readonly clients = new Map<string, LambdaClient>();
  private readonly sts = new Map<string, STSClient>();
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;

  private readonly stallMs: number;
  private readonly sweep: NodeJS.Timeout;
  private seen = new Map<net.Socket, Seen>();

  constructor(private readonly options: LambdaClientsOptions) {
    const agentOptions = { keepAlive: true, maxSockets: options.maxSockets };
    this.httpAgent = new http.Agent(agentOptions);
    this.httpsAgent = new https.Agent(agentOptions);
    // An endpoint that takes the connection and never answers held an invoke slot for ever, and a few such
    // calls stopped every pool's dispatch (test/integration/invoke-timeouts.test.ts): a call whose
    // connection makes no progress for requestTimeoutMs is given up (stalled-connections.ts).
    this.stallMs = options.requestTimeoutMs ?? 10_000;
    this.sweep = setInterval(() => this.giveUpStalled(), sweepEveryMs(this.stallMs));
    this.sweep.unref();
  }

  /** Destroys the connections in use that made no progress for stallMs: their calls fail with a TimeoutError. */
  private giveUpStalled(): void {
    const inUse: Array<{ key: net.Socket; bytes: number }> = [];
    for (const agent of [this.httpAgent, this.httpsAgent]) {
      for (const sockets of Object.values(agent.sockets)) {
        for (const socket of sockets ?? []) inUse.push({ key: socket, bytes: socket.bytesRead + socket.bytesWritten });
      }
    }
    const swept = sweepConnections(this.seen, inUse, performance.now(), this.stallMs);
    this.seen = swept.seen;
    for (const socket of swept.stalled) {
      const error = Object.assign(new Error(`no answer on the connection for ${this.stallMs} ms`), { code: 'ETIMEDOUT' });
      socket.destroy(error);
    }
  }

  /** The Lambda clients' HTTP handler: shared agents, and no timers of the SDK's per call (see giveUpStalled). */
  private requestHandler() {
    return { httpAgent: this.httpAgent, httpsAgent: this.httpsAgent };
  }

  /** The client for a region, as the controller itself or as `roleArn`. */
  client(region: string, roleArn?: string): LambdaClient {
    const key = `${region}\u0000${roleArn ?? ''}`;
    let client = this.clients.get(key);
    if (!client) {
      const credentials = roleArn ? this.assumeRole(region, roleArn) : this.options.credentials;
      client = new LambdaClient({
        region,
        ...(this.options.endpoint ? { endpoint: this.options.endpoint } : {}),
        ...(credentials ? { credentials } : {}),
        // One attempt per call: retries are ours, recorded on the invocation row and paced by its class.
        maxAttempts: 1,
        // Resolve the middleware stack once per command class, not on every send (the SDK's default clones
        // and sorts it each time). Nothing here changes a client's middleware after it is built.
        cacheMiddleware: true,
        // Request signing with each HMAC key imported once, not on every call (sha256.ts).
        sha256: Sha256,
        requestHandler: this.requestHandler(),
      });
      this.clients.set(key, client);
    }
    return client;
  }

  private assumeRole(region: string, roleArn: string): () => Promise<TemporaryCredentials> {
    let sts = this.sts.get(region);
    if (!sts) {
      sts = new STSClient({
        region,
        ...(this.options.stsEndpoint ? { endpoint: this.options.stsEndpoint } : {}),
        ...(this.options.credentials ? { credentials: this.options.credentials } : {}),
        sha256: Sha256,
        requestHandler: this.requestHandler(),
      });
      this.sts.set(region, sts);
    }
    const client = sts;
    const sessionName = this.options.sessionName ?? 'lambda-task-pool';
    return async (): Promise<TemporaryCredentials> => {
      const out = await client.send(new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: sessionName }));
      const c = out.Credentials;
      if (!c?.AccessKeyId || !c.SecretAccessKey) throw new Error(`STS AssumeRole of ${roleArn} returned no credentials`);
      return {
        accessKeyId: c.AccessKeyId,
        secretAccessKey: c.SecretAccessKey,
        ...(c.SessionToken ? { sessionToken: c.SessionToken } : {}),
        ...(c.Expiration ? { expiration: c.Expiration } : {}),
      };
    };
  }

  close(): void {
    clearInterval(this.sweep);
    for (const client of this.clients.values()) client.destroy();
    for (const client of this.sts.values()) client.destroy();
    this.clients.clear();
    this.sts.clear();
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}
