// Group commit: callers hand in items one at a time, and the items that arrive while a batch is running go
// together in the next one. The first item waits only for the current turn of the event loop, so that
// callers woken together (a thousand pools by one notification burst) start as one batch.

/** One item's outcome within a batch. */
export type Settled<O> = { ok: true; value: O } | { ok: false; error: unknown };

export interface CoalescerOptions {
  /** The most items in one batch. */
  maxBatch: number;
  /** Schedules the start of a batch; defaults to setImmediate. */
  defer?: (start: () => void) => void;
}

interface Waiting<I, O> {
  item: I;
  resolve(value: O): void;
  reject(error: unknown): void;
}

export class Coalescer<I, O> {
  private readonly waiting: Array<Waiting<I, O>> = [];
  private busy = false;
  private readonly defer: (start: () => void) => void;

  /** `run` settles each item of a batch, in order; if it throws, every item of the batch fails with that error. */
  constructor(
    private readonly run: (items: I[]) => Promise<Array<Settled<O>>>,
    private readonly options: CoalescerOptions,
  ) {
    this.defer = options.defer ?? ((start) => setImmediate(start));
  }

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      if (this.waiting.length === 1 && !this.busy) {
        this.busy = true;
        this.defer(() => void this.next());
      }
    });
  }

  /** Items waiting for a batch. */
  get pending(): number {
    return this.waiting.length;
  }

  private async next(): Promise<void> {
    for (;;) {
      const batch = this.waiting.splice(0, Math.max(1, this.options.maxBatch));
      if (batch.length === 0) {
        this.busy = false;
        return;
      }
      try {
        const settled = await this.run(batch.map((w) => w.item));
        batch.forEach((w, i) => {
          const outcome = settled[i];
          if (!outcome) w.reject(new Error(`a batch of ${batch.length} settled only ${settled.length}`));
          else if (outcome.ok) w.resolve(outcome.value);
          else w.reject(outcome.error);
        });
      } catch (error) {
        for (const w of batch) w.reject(error);
      }
    }
  }
}
