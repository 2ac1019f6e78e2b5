// Kubernetes Events for a pool, rate-limited per pool and reason so a busy pool cannot flood the API:
// repeats within the window are counted and folded into the next event.
import type { CoreV1Api } from '@kubernetes/client-node';
import type { Logger } from '../ops/logger.ts';
import { withDeadline } from './kube.ts';

export type EventType = 'Normal' | 'Warning';

export interface PoolRef {
  namespace: string;
  name: string;
  uid: string;
}

export class EventRecorder {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly core: CoreV1Api,
    private readonly logger: Logger,
    private readonly windowMs = 30_000,
    private readonly now: () => number = Date.now,
  ) {}

  async record(pool: PoolRef, type: EventType, reason: string, message: string): Promise<void> {
    const key = `${pool.uid}/${reason}`;
    const seen = this.last.get(key);
    const now = this.now();
    if (seen && now - seen.at < this.windowMs) {
      seen.suppressed += 1;
      return;
    }
    const folded = seen && seen.suppressed > 0 ? ` (and ${seen.suppressed} similar in the last ${Math.round((now - seen.at) / 1000)}s)` : '';
    this.last.set(key, { at: now, suppressed: 0 });
    const stamp = new Date(now);
    try {
      await this.core.createNamespacedEvent({
        namespace: pool.namespace,
        body: {
          metadata: { generateName: `${pool.name}.`, namespace: pool.namespace },
          involvedObject: { apiVersion: 'lambda.taskpool.io/v1alpha1', kind: 'LambdaTaskPool', name: pool.name, namespace: pool.namespace, uid: pool.uid },
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
      }, withDeadline());
    } catch (error) {
      this.logger.warn('could not record event', { namespace: pool.namespace, pool: pool.name, reason, error: error instanceof Error ? error.message : String(error) });
    }
  }

  forget(uid: string): void {
    for (const key of this.last.keys()) if (key.startsWith(`${uid}/`)) this.last.delete(key);
  }
}
