// LISTEN on a database's wake-up channels (see the migration): ltp_tasks carries a queue name,
// ltp_invocations a pool uid. The connection is re-established with backoff when it drops.
import pg from 'pg';

export const TASKS_CHANNEL = 'ltp_tasks';
export const INVOCATIONS_CHANNEL = 'ltp_invocations';
export type Channel = typeof TASKS_CHANNEL | typeof INVOCATIONS_CHANNEL;

export interface ListenerOptions {
  url: string;
  /**
   * How long connecting, and each LISTEN, may take before the attempt counts as failed and is retried
   * (default 10 s). Without it, a reconnect to an endpoint that takes the connection and never answers (a
   * paused host, a proxy with no backend) waited for ever, and no wake-up came again until a restart.
   */
  connectTimeoutMs?: number;
  onNotify(channel: Channel, payload: string): void;
  onConnected?(): void;
  onError?(error: unknown): void;
}

export class NotificationListener {
  private client: pg.Client | undefined;
  private stopped = false;
  private retryMs = 500;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: ListenerOptions) {}

  start(): void {
    void this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const timeoutMs = this.options.connectTimeoutMs ?? 10_000;
    const client = new pg.Client({
      connectionString: this.options.url,
      application_name: 'lambda-task-pool-listen',
      connectionTimeoutMillis: timeoutMs,
      query_timeout: timeoutMs,
      // An idle connection whose peer vanished is found by TCP keepalive probes from 10 s of silence on, not 2 hours.
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    });
    client.on('notification', (n) => {
      if ((n.channel === TASKS_CHANNEL || n.channel === INVOCATIONS_CHANNEL) && n.payload) this.options.onNotify(n.channel, n.payload);
    });
    client.on('error', (error) => this.retry(client, error));
    client.on('end', () => this.retry(client, new Error('connection ended')));
    try {
      await client.connect();
      await client.query(`LISTEN ${TASKS_CHANNEL}`);
      await client.query(`LISTEN ${INVOCATIONS_CHANNEL}`);
      if (this.stopped) {
        await client.end();
        return;
      }
      this.client = client;
      this.retryMs = 500;
      this.options.onConnected?.();
    } catch (error) {
      this.retry(client, error);
    }
  }

  private retry(client: pg.Client, error: unknown): void {
    if (this.stopped || (this.client !== undefined && this.client !== client)) return;
    this.client = undefined;
    client.removeAllListeners('end');
    client.end().catch(() => undefined);
    this.options.onError?.(error);
    if (this.timer) return;
    const wait = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, 30_000);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.connect();
    }, wait);
    this.timer.unref?.();
  }
}
