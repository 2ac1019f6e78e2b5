// Kubernetes Events for a pool, rate-limited per pool and reason so a busy pool cannot flood the API:
// repeats within the window are counted and folded into the next event. Events are sent in the background,
// a few at a time, so that no pass waits for one; if the API server falls far behind, the oldest waiting
// ones are dropped and counted (Events are best effort in Kubernetes too).
import type { CoreV1Api } from '@kubernetes/client-node';
import type { Logger } from '../ops/logger.ts';
import type { RequestOptions } from './kube.ts';

export type EventType = 'Normal' | 'Warning';

/** The longest an event waits for dispatch to be idle before it is sent anyway. */
const MAX_YIELD_MS = 5_000;

export interface PoolRef {
  namespace: string;
  name: string;
  uid: string;
}

export class EventRecorder {
  /** Per pool uid, per reason: when the last event went out and how many were folded since. */
  private readonly last = new Map<string, Map<string, { at: number; suppressed: number }>>();

  constructor(
    private readonly core: CoreV1Api,
    private readonly requestOptions: RequestOptions,
    private readonly logger: Logger,
    private readonly windowMs = 30_000,
    private readonly now: () => number = Date.now,
    /** While this says so, events wait: they must not slow down dispatch. */
    private readonly yieldTo: () => boolean = () => false,
  ) {}

  private readonly outbox: Array<{ send: () => Promise<void>; at: number }> = [];
  private sending = 0;
  private dropped = 0;
  private retry: NodeJS.Timeout | undefined;
  private readonly maxInFlight = 2;
  private readonly maxWaiting = 1_000;

  /** Records an event in the background; never throws. */
  record(pool: PoolRef, type: EventType, reason: string, message: string): void {
    let reasons = this.last.get(pool.uid);
    if (!reasons) this.last.set(pool.uid, (reasons = new Map()));
    const seen = reasons.get(reason);
    const now = this.now();
    if (seen && now - seen.at < this.windowMs) {
      seen.suppressed += 1;
      return;
    }
    const folded =
      seen && seen.suppressed > 0 ? ` (and ${seen.suppressed} similar in the last ${Math.round((now - seen.at) / 1000)}s)` : '';
    reasons.set(reason, { at: now, suppressed: 0 });
    const stamp = new Date(now);
    this.enqueue(async () => {
      await this.core
        .createNamespacedEvent(
          {
            namespace: pool.namespace,
            body: {
              metadata: { generateName: `${pool.name}.`, namespace: pool.namespace },
              involvedObject: {
                apiVersion: 'lambda.taskpool.io/v1alpha1',
                kind: 'LambdaTaskPool',
                name: pool.name,
                namespace: pool.namespace,
                uid: pool.uid,
              },
              type,
              reason,
              message: `${message}${folded}`.slice(0, 1024),
              firstTimestamp: stamp,
              lastTimestamp: stamp,
              count: 1,
              source: { component: 'lambda-task-pool' },
              reportingComponent: 'lambda-task-pool',
              reportingInstance: process.env.HOSTNAME ?? 'lambda-task-pool',
            },
          },
          this.requestOptions(),
        )
        .catch((error: unknown) => {
          this.logger.warn('could not record event', {
            namespace: pool.namespace,
            pool: pool.name,
            reason,
            error: error instanceof Error ? error.message : String(error),
          });
        });
    });
  }

  /**
   * Resolves once every event recorded so far has been sent (or has failed), or, given a timeout, once it has
   * passed: the events still waiting then are dropped and counted (a stopping controller must hand its Lease
   * over promptly, and Events are best effort).
   */
  async flush(timeoutMs = Number.POSITIVE_INFINITY): Promise<void> {
    const deadline = this.now() + timeoutMs;
    while ((this.sending > 0 || this.outbox.length > 0) && this.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    if (this.outbox.length > 0) {
      this.logger.warn('events not sent before stopping', { dropped: this.outbox.length });
      this.dropped += this.outbox.length;
      this.outbox.length = 0;
    }
  }

  private enqueue(send: () => Promise<void>): void {
    if (this.outbox.length >= this.maxWaiting) {
      this.outbox.shift();
      this.dropped += 1;
      if (this.dropped === 1 || this.dropped % 100 === 0)
        this.logger.warn('events dropped: the API server is falling behind', { dropped: this.dropped });
    }
    this.outbox.push({ send, at: this.now() });
    this.pump();
  }

  private pump(): void {
    // Events wait while dispatch is busy, though never longer than MAX_YIELD_MS: a controller that is always
    // busy still reports. Sends already under way finish; the next waits for dispatch, not for them (up to
    // 2026-12-05 only a recorder with nothing in flight waited, so a queue of events that began while dispatch
    // was idle went on at two at a time through the burst that followed).
    const oldest = this.outbox[0];
    if (oldest && this.yieldTo() && this.now() - oldest.at < MAX_YIELD_MS) {
      if (!this.retry) {
        this.retry = setTimeout(() => {
          this.retry = undefined;
          this.pump();
        }, 200);
        this.retry.unref?.();
      }
      return;
    }
    while (this.sending < this.maxInFlight && this.outbox.length > 0) {
      const send = this.outbox.shift()?.send;
      if (!send) return;
      this.sending += 1;
      void send().finally(() => {
        this.sending -= 1;
        this.pump();
      });
    }
  }

  /** A pool is gone: its reasons' windows go with it (one lookup, however many pools there are). */
  forget(uid: string): void {
    this.last.delete(uid);
  }
}
