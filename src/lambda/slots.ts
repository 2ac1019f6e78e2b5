// Bounded parallelism for calls to AWS.

/** A counting semaphore: at most `size` holders at once, the rest wait in arrival order. */
export class Slots {
  private held = 0;
  /** Waiters in arrival order; `head` is the next one, so taking it is O(1) however many wait (a deep pool queues a thousand). */
  private waiting: Array<() => void> = [];
  private head = 0;
  /** Resolved when the slots next fall idle; one promise for every caller, so callers that give up on it leave nothing behind. */
  private nextIdle?: { promise: Promise<void>; resolve: () => void };

  constructor(private readonly size: number) {}

  async acquire(): Promise<void> {
    if (this.held < this.size) {
      this.held += 1;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  /** Holders and waiters: calls in flight or about to be. */
  get busy(): number {
    return this.held + this.waiting.length - this.head;
  }

  release(): void {
    const next = this.waiting[this.head];
    if (next) {
      this.head += 1;
      if (this.head === this.waiting.length) {
        this.waiting = [];
        this.head = 0;
      }
      next();
      return;
    }
    this.held -= 1;
    if (this.held === 0 && this.nextIdle) {
      this.nextIdle.resolve();
      this.nextIdle = undefined;
    }
  }

  /** Resolves once no call holds or waits for a slot (at once if none does). */
  idle(): Promise<void> {
    if (this.busy === 0) return Promise.resolve();
    if (!this.nextIdle) {
      let resolve = () => {};
      const promise = new Promise<void>((r) => (resolve = r));
      this.nextIdle = { promise, resolve };
    }
    return this.nextIdle.promise;
  }
}
