// How long the controller has been able to reach a database without interruption. While the database is
// down or frozen, no worker can write a heartbeat either, so a heartbeat missed then is not the worker's
// fault: the planner orphans by heartbeat only after a full heartbeat timeout of connectivity (docs/architecture.md
// §4, "Fencing"). A probe runs every interval; one that fails or takes longer than the timeout counts as
// a loss, and so does any pass that finds the database unavailable.

export interface ConnectivityOptions {
  probe(): Promise<unknown>;
  intervalMs?: number;
  timeoutMs?: number;
  /** A monotonic clock in ms. */
  now?: () => number;
  onLost?(error: unknown): void;
  onRestored?(lostForMs: number): void;
}

export class Connectivity {
  private since: number | undefined;
  private lostAt: number;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly now: () => number;

  constructor(private readonly options: ConnectivityOptions) {
    this.now = options.now ?? (() => performance.now());
    // A controller that just started knows nothing of the past: it counts as just connected at best.
    this.lostAt = this.now();
  }

  /** Milliseconds of uninterrupted connectivity up to now; 0 while disconnected. */
  connectedForMs(): number {
    return this.since === undefined ? 0 : this.now() - this.since;
  }

  /** A caller found the database unavailable. */
  lost(error: unknown): void {
    if (this.since !== undefined) {
      this.lostAt = this.now();
      this.options.onLost?.(error);
    }
    this.since = undefined;
  }

  start(): void {
    void this.tick();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    const timeoutMs = this.options.timeoutMs ?? 2_000;
    const sent = this.now();
    let settled = false;
    const slow = setTimeout(() => {
      if (!settled) this.lost(new Error(`the database did not answer a probe within ${timeoutMs} ms`));
    }, timeoutMs);
    slow.unref?.();
    try {
      await this.options.probe();
      settled = true;
      clearTimeout(slow);
      if (this.now() - sent > timeoutMs) this.lost(new Error(`a probe took ${Math.round(this.now() - sent)} ms`));
      else if (this.since === undefined) {
        this.since = this.now();
        this.options.onRestored?.(this.since - this.lostAt);
      }
    } catch (error) {
      settled = true;
      clearTimeout(slow);
      this.lost(error);
    }
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), this.options.intervalMs ?? 1_000);
    this.timer.unref?.();
  }
}
