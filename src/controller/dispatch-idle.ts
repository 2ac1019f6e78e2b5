// When dispatch is idle: no invoke in flight or waiting, and no pass with rows still on their way to the
// invoker. A pass's rows reach the invoker after its database half (a batch's transaction) and, for a large
// pass, after the insert of its later rows: the invoker alone can run dry for a moment between them, in the
// middle of a burst. The marking of accepted rows waits for this instead (pass-batcher.ts).
//
// A pass can also wait on a lock for as long as another session holds it. Passes that have made no progress
// (none began, none handed in its rows) for `stuckMs` are not waited for, so that one stuck pass does not hold
// up what waits for the rest.
import { WhenIdle } from '../lambda/when-idle.ts';

export interface DispatchIdleOptions {
  /** Resolves once no invoke is in flight or waiting (Invoker.idle). */
  invokerIdle: () => Promise<void>;
  /** Passes on their way to the invoker are waited for while one of them began or ended this recently. */
  stuckMs: number;
  /** A monotonic clock in ms; defaults to performance.now. */
  now?: () => number;
}

export class DispatchIdle {
  private preparing = 0;
  private lastChange: number;
  private readonly changed = new WhenIdle();
  private readonly now: () => number;

  constructor(private readonly options: DispatchIdleOptions) {
    this.now = options.now ?? (() => performance.now());
    this.lastChange = this.now();
  }

  /** A pass has begun: its rows are on their way to the invoker. */
  begin(): void {
    this.preparing += 1;
    this.touch();
  }

  /** The pass's rows are with the invoker now, or it has none to give. */
  end(): void {
    if (this.preparing === 0) throw new Error('DispatchIdle.end() without a begin()');
    this.preparing -= 1;
    this.touch();
  }

  private touch(): void {
    this.lastChange = this.now();
    this.changed.settle();
  }

  /** Resolves once dispatch is idle, or once `givenUp` says so at the next look. */
  async wait(givenUp: () => boolean = () => false): Promise<void> {
    while (!givenUp()) {
      await this.options.invokerIdle();
      if (this.preparing === 0) return;
      const quietMs = this.now() - this.lastChange;
      if (quietMs >= this.options.stuckMs) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.options.stuckMs - quietMs);
        void this.changed.wait(true).then(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}
