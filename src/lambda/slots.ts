// Bounded parallelism for calls to AWS.
import { Fifo } from './fifo.ts';
import { WhenIdle } from './when-idle.ts';

/** A counting semaphore: at most `size` holders at once, the rest wait in arrival order. */
export class Slots {
  private held = 0;
  /** Waiters in arrival order. */
  private readonly waiting = new Fifo<() => void>();
  private readonly whenIdle = new WhenIdle();

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
    if (this.held === 0) this.whenIdle.settle();
  }

  /** Resolves once no call holds or waits for a slot (at once if none does). */
  idle(): Promise<void> {
    return this.whenIdle.wait(this.busy > 0);
  }
}
