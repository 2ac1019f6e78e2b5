// Keeps an invocation's lease alive and fences it (docs/architecture.md §4, "Fencing"). The worker renews its
// heartbeat every interval; every write that renews it counts too. When no renewal has succeeded for
// close to the heartbeat timeout, the lease may pass to another invocation at any moment: the keeper
// aborts the signal, and from then on the worker starts nothing and writes nothing.
//
// The controller orphans an invocation only once the database has seen no heartbeat for the full
// timeout, measured from when the heartbeat was written. A renewal is dated here from when it was *sent*,
// which is never later than when it was written, so the worker always stops first, by the margin.

export type StopReason = 'fenced' | 'ended' | 'timeout';

export interface LeaseKeeperOptions {
  heartbeatTimeoutMs: number;
  /** How often to renew; a quarter of the timeout by default, at most a third of the time to the fence. */
  intervalMs?: number;
  /** The interval asked for was too long for the timeout and was cut to `usedMs`. */
  onIntervalCapped?(requestedMs: number, usedMs: number): void;
  /** Stop this long before the controller may orphan the invocation. */
  fenceMarginMs?: number;
  /**
   * One heartbeat: true while the invocation is live, false once the controller ended it. It should give up
   * after `timeoutMs` (beatTimeoutMs), and leave the next beat a new connection.
   */
  beat(timeoutMs: number): Promise<boolean>;
  onStop(reason: StopReason, detail: string): void;
  onBeatError?(error: unknown): void;
  /** A monotonic clock in ms. */
  now?: () => number;
}

export function defaultFenceMarginMs(heartbeatTimeoutMs: number): number {
  return Math.max(1_000, Math.round(heartbeatTimeoutMs * 0.2));
}

/**
 * How often to renew: the requested interval (a quarter of the timeout by default), but never more than a
 * third of the time to the fence. A longer one would let the fence come before the first renewal, and a
 * healthy worker would stop itself; a third leaves room for two slow or failed heartbeats. `cappedFrom` is
 * the interval asked for when it was cut.
 */
export function heartbeatIntervalMs(args: { heartbeatTimeoutMs: number; fenceMarginMs: number; requestedMs?: number }): {
  intervalMs: number;
  cappedFrom?: number;
} {
  const wanted = args.requestedMs ?? Math.max(250, Math.floor(args.heartbeatTimeoutMs / 4));
  const cap = Math.max(1, Math.floor(Math.max(0, args.heartbeatTimeoutMs - args.fenceMarginMs) / 3));
  return wanted > cap ? { intervalMs: cap, cappedFrom: wanted } : { intervalMs: wanted };
}

/**
 * How long one beat may wait for its answer: most of an interval, and at least a second (a database slower
 * than a short interval still renews). A beat that waits this out is followed by the next at once, on a new
 * connection, not at the next tick (one beat at a time: a stuck beat used to hold back every renewal after it
 * until the fence).
 */
export function beatTimeoutMs(intervalMs: number): number {
  return Math.max(1_000, Math.floor(intervalMs * 0.8));
}

export class LeaseKeeper {
  private readonly controller = new AbortController();
  private readonly now: () => number;
  private readonly fenceAfterMs: number;
  private lastRenewalSentAt: number;
  private beatTimer: NodeJS.Timeout | undefined;
  private fenceTimer: NodeJS.Timeout | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private beating = false;
  private readonly intervalMs: number;
  private closed = false;
  private stopReason: StopReason | undefined;
  private resolveFence: () => void = () => undefined;
  private readonly fenceReached = new Promise<void>((resolve) => {
    this.resolveFence = resolve;
  });

  /** `renewedAt`: when the write that last renewed the heartbeat (the claim, usually) was sent. */
  constructor(
    private readonly options: LeaseKeeperOptions,
    renewedAt: number,
  ) {
    this.now = options.now ?? (() => performance.now());
    const margin = options.fenceMarginMs ?? defaultFenceMarginMs(options.heartbeatTimeoutMs);
    this.fenceAfterMs = Math.max(0, options.heartbeatTimeoutMs - margin);
    this.lastRenewalSentAt = renewedAt;
    const interval = heartbeatIntervalMs({
      heartbeatTimeoutMs: options.heartbeatTimeoutMs,
      fenceMarginMs: margin,
      requestedMs: options.intervalMs,
    });
    if (options.intervalMs !== undefined && interval.cappedFrom !== undefined)
      options.onIntervalCapped?.(interval.cappedFrom, interval.intervalMs);
    this.intervalMs = interval.intervalMs;
    this.beatTimer = setInterval(() => void this.beatOnce(), interval.intervalMs);
    this.armFence();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Why the invocation must stop, if it must. */
  get stopped(): StopReason | undefined {
    if (this.stopReason !== 'fenced' && this.now() >= this.fenceDeadline()) this.stop('fenced', this.fenceDetail());
    return this.stopReason;
  }

  /** True once the lease may have passed to another invocation: nothing may be written any more. */
  get fenced(): boolean {
    return this.stopped === 'fenced';
  }

  /** Milliseconds until the fence, from now. */
  msUntilFence(): number {
    return Math.max(0, this.fenceDeadline() - this.now());
  }

  /** A write that renews the heartbeat (start of a task, say) succeeded; it was sent at `sentAt`. */
  renewed(sentAt: number): void {
    if (this.closed || this.stopReason === 'fenced') return;
    if (sentAt > this.lastRenewalSentAt) {
      this.lastRenewalSentAt = sentAt;
      this.armFence();
    }
  }

  /** Aborts the signal when the function has `stopBeforeMs` left (getRemainingTimeInMillis). */
  stopBeforeDeadline(remainingMs: number, stopBeforeMs: number): void {
    if (!Number.isFinite(remainingMs)) return;
    const inMs = Math.max(0, remainingMs - stopBeforeMs);
    this.deadlineTimer = setTimeout(() => this.stop('timeout', `the function has ${stopBeforeMs} ms left before its timeout`), inMs);
    this.deadlineTimer.unref?.();
  }

  /** Ends the keeper; the signal stays as it is. */
  close(): void {
    this.closed = true;
    clearInterval(this.beatTimer);
    clearTimeout(this.fenceTimer);
    clearTimeout(this.deadlineTimer);
  }

  /** Resolves when the fence is reached (never, if the keeper closes first). */
  untilFenced(): Promise<void> {
    return this.fenceReached;
  }

  private fenceDeadline(): number {
    return this.lastRenewalSentAt + this.fenceAfterMs;
  }

  private fenceDetail(): string {
    return `no heartbeat could be renewed for ${Math.round(this.now() - this.lastRenewalSentAt)} ms (the heartbeat timeout is ${this.options.heartbeatTimeoutMs} ms)`;
  }

  private armFence(): void {
    clearTimeout(this.fenceTimer);
    if (this.closed) return;
    this.fenceTimer = setTimeout(
      () => {
        if (this.now() >= this.fenceDeadline()) this.stop('fenced', this.fenceDetail());
        else this.armFence();
      },
      Math.max(0, this.fenceDeadline() - this.now()) + 1,
    );
    this.fenceTimer.unref?.();
  }

  private stop(reason: StopReason, detail: string): void {
    // A fence overrides an earlier, milder stop: from then on nothing may be written.
    if (this.stopReason === 'fenced' || (this.stopReason && reason !== 'fenced')) return;
    const first = this.stopReason === undefined;
    this.stopReason = reason;
    this.options.onStop(reason, detail);
    if (reason === 'fenced') {
      clearInterval(this.beatTimer);
      this.resolveFence();
    }
    if (first) this.controller.abort(new Error(`invocation stopping: ${detail}`));
  }

  private async beatOnce(): Promise<void> {
    if (this.closed || this.beating || this.stopped === 'fenced') return;
    this.beating = true;
    const sentAt = this.now();
    const timeoutMs = beatTimeoutMs(this.intervalMs);
    let again = false;
    try {
      const live = await this.options.beat(timeoutMs);
      if (this.closed) return;
      if (live) this.renewed(sentAt);
      else this.stop('ended', 'the controller ended the invocation');
    } catch (error) {
      this.options.onBeatError?.(error);
      // It waited out its time (a connection the network dropped): the next beat goes now, not at the next
      // tick. Each such beat takes its full timeout, so this never spins.
      again = this.now() - sentAt >= timeoutMs;
    } finally {
      this.beating = false;
    }
    if (again) await this.beatOnce();
  }
}
