// A work queue of object keys, after client-go's: a key is queued at most once, is never processed by
// two workers at once, and a key that changes while it is being processed runs again afterwards.
// Failed keys come back with per-key exponential backoff with jitter (so that pools failing together do
// not retry in lockstep); delays and randomness are injected so tests can drive them.
import { backoffMs } from '@lambda-task-pool/worker/protocol';

export interface WorkQueueOptions {
  workers: number;
  baseBackoffMs?: number;
  maxBackoffMs?: number;
  /** Schedules a callback; defaults to setTimeout. */
  schedule?: (fn: () => void, ms: number) => { cancel(): void };
  /** Randomness for the backoff jitter; defaults to Math.random. */
  random?: () => number;
}

export type ProcessResult = { requeueAfterMs?: number };
export type Processor = (key: string) => Promise<ProcessResult>;

const defaultSchedule = (fn: () => void, ms: number) => {
  const timer = setTimeout(fn, ms);
  timer.unref?.();
  return { cancel: () => clearTimeout(timer) };
};

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, { at: number; cancel(): void }>();
  private running = 0;
  private stopped = false;
  private paused = false;
  private idleWaiters: Array<() => void> = [];
  /** Callers of forget() waiting for a key's run in progress to end. */
  private readonly forgotten = new Map<string, Array<() => void>>();
  private readonly schedule: NonNullable<WorkQueueOptions['schedule']>;

  constructor(
    private readonly processor: Processor,
    private readonly options: WorkQueueOptions,
    private readonly onError: (key: string, error: unknown, retryInMs: number) => void = () => undefined,
  ) {
    this.schedule = options.schedule ?? defaultSchedule;
  }

  add(key: string): void {
    if (this.stopped) return;
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.queue.push(key);
    this.pump();
  }

  /** Queues the key after a delay; an earlier pending delay for the same key wins. */
  addAfter(key: string, ms: number): void {
    if (this.stopped) return;
    if (ms <= 0) return this.add(key);
    const at = Date.now() + ms;
    const existing = this.timers.get(key);
    if (existing && existing.at <= at) return;
    existing?.cancel();
    const handle = this.schedule(() => {
      this.timers.delete(key);
      this.add(key);
    }, ms);
    this.timers.set(key, { at, cancel: handle.cancel });
  }

  /** The next retry delay of a failed key: exponential in its failures so far, with equal jitter. */
  backoffFor(key: string): number {
    const n = this.failures.get(key) ?? 0;
    return backoffMs(
      n + 1,
      { initialMs: this.options.baseBackoffMs ?? 250, maxMs: this.options.maxBackoffMs ?? 60_000 },
      this.options.random,
    );
  }

  /** Forgets every key's failures and runs the keys waiting out a backoff now (the API server is back). */
  retryAllNow(): void {
    if (this.stopped) return;
    const waiting = [...this.timers.keys()].filter((key) => this.failures.has(key));
    this.failures.clear();
    for (const key of waiting) {
      this.timers.get(key)?.cancel();
      this.timers.delete(key);
      this.add(key);
    }
  }

  get length(): number {
    return this.queue.length;
  }

  /** Resolves when nothing is queued or being processed. Delayed keys don't count. */
  async idle(): Promise<void> {
    if (this.queue.length === 0 && this.running === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Drops a key whose object is gone: no queued or delayed run of it, no failures kept. Resolves once a run of
   * it in progress has ended, so that the caller can forget the object without that run bringing it back.
   */
  async forget(key: string): Promise<void> {
    this.timers.get(key)?.cancel();
    this.timers.delete(key);
    this.failures.delete(key);
    this.dirty.delete(key);
    if (this.queued.delete(key)) this.queue.splice(this.queue.indexOf(key), 1);
    if (!this.processing.has(key)) return;
    await new Promise<void>((resolve) => this.forgotten.set(key, [...(this.forgotten.get(key) ?? []), resolve]));
  }

  /** Keeps collecting keys but starts none (a replica that lost leadership). Keys in progress finish. */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.pump();
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) t.cancel();
    this.timers.clear();
    this.queue.length = 0;
    this.queued.clear();
  }

  private pump(): void {
    while (!this.stopped && !this.paused && this.running < this.options.workers) {
      const index = this.queue.findIndex((k) => !this.processing.has(k));
      if (index < 0) break;
      const [key] = this.queue.splice(index, 1);
      if (key === undefined) break;
      this.queued.delete(key);
      this.processing.add(key);
      this.running += 1;
      void this.run(key);
    }
    if (this.queue.length === 0 && this.running === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      waiters.forEach((w) => w());
    }
  }

  private async run(key: string): Promise<void> {
    try {
      const result = await this.processor(key);
      this.failures.delete(key);
      // A key forgotten while it ran is not run again.
      if (result.requeueAfterMs !== undefined && !this.forgotten.has(key)) this.addAfter(key, result.requeueAfterMs);
    } catch (error) {
      const retryIn = this.backoffFor(key);
      this.onError(key, error, retryIn);
      if (!this.forgotten.has(key)) {
        this.failures.set(key, (this.failures.get(key) ?? 0) + 1);
        this.addAfter(key, retryIn);
      }
    } finally {
      this.processing.delete(key);
      this.running -= 1;
      const waiting = this.forgotten.get(key);
      this.forgotten.delete(key);
      waiting?.forEach((resolve) => resolve());
      if (this.dirty.delete(key)) this.add(key);
      this.pump();
    }
  }
}
