// Bounded parallelism for calls to AWS.
import { Fifo } from './fifo.ts';

/** A counting semaphore: at most `size` holders at once, the rest wait in arrival order. */
export class Slots {
  private held = 0;
  /** Waiters in arrival order. */
  private readonly waiting = new Fifo<() => void>();
  /** Resolved when the slots next fall idle; one promise for every caller, so callers that give up on it leave nothing behind. */
  private nextIdle?: { promise: Promise<void>; resolve: () => void };

  constructor(private readonly size: number) {}

  async acquire(): Promise<void> {
    if (this.held < this.size) {
      this.held += 1;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.put(resolve));
  }

  /** Holders and waiters: calls in flight or about to be. */
  get busy(): number {
    return this.held + this.waiting.length;
  }

  release(): void {
    const next = this.waiting.take();
    if (next) {
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
