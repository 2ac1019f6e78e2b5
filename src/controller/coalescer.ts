// Group commit: callers hand in items one at a time, and the items that arrive while a batch is running go
// together in the next one. The first item waits only for the current turn of the event loop, so that
// callers woken together (a thousand pools by one notification burst) start as one batch. A batch that
// stalls (one of its items waits on a lock, say) holds up only its own items: once it has run for `stallMs`,
// the items waiting behind it start a batch of their own, up to `maxConcurrent` batches at once.
// A burst may also start with a small lead batch (`leadBatch`), the rest beside it at once: the lead's
// items are through as soon as a few items can be, instead of when all of them are.

/** One item's outcome within a batch. */
export type Settled<O> = { ok: true; value: O } | { ok: false; error: unknown };

/**
 * What a batch gives each item: its outcome, or a promise of it when that item needs more time than the rest
 * (it is tried again alone, say). Such an item settles when its promise does, and the others do not wait for
 * it; the batch counts as running, for stallMs, until every item has settled.
 */
export type Outcome<O> = Settled<O> | Promise<Settled<O>>;

export interface CoalescerOptions {
  /** The most items in one batch. */
  maxBatch: number;
  /** After a batch has run this long, waiting items need not wait for it (default: never). */
  stallMs?: number;
  /** The most batches running at once (default 1). */
  maxConcurrent?: number;
  /**
   * When more than this many items wait as a runner starts after a quiet spell, its first batch takes only
   * this many, and the rest start a batch of their own beside it at once (if maxConcurrent allows two, and
   * this is below maxBatch). Once the lead batch is done, batches run one at a time again, apart from those
   * that start behind a stalled batch (stallMs). Default: no lead batch.
   */
  leadBatch?: number;
  /** Schedules the start of a batch; defaults to setImmediate. */
  defer?: (start: () => void) => void;
  /** Schedules the stall check; defaults to setTimeout. */
  schedule?: (check: () => void, ms: number) => void;
  /** A monotonic clock in ms; defaults to performance.now. */
  now?: () => number;
}

interface Waiting<I, O> {
  item: I;
  resolve(value: O): void;
  reject(error: unknown): void;
}

export class Coalescer<I, O> {
  private readonly waiting: Array<Waiting<I, O>> = [];
  /** Runners: loops that take batches while items wait. */
  private runners = 0;
  /** Batches running now, each with when it started. */
  private readonly running = new Set<{ startedAt: number }>();
  private starting = false;
  private readonly defer: (start: () => void) => void;
  private readonly schedule: (check: () => void, ms: number) => void;
  private readonly now: () => number;

  /**
   * `run` settles each item of a batch, in order (each now, or later: Outcome); if it throws, every item of the
   * batch fails with that error.
   */
  constructor(
    private readonly run: (items: I[]) => Promise<Array<Outcome<O>>>,
    private readonly options: CoalescerOptions,
  ) {
    this.defer = options.defer ?? ((start) => setImmediate(start));
    this.schedule =
      options.schedule ??
      ((check, ms) => {
        setTimeout(check, ms).unref();
      });
    this.now = options.now ?? (() => performance.now());
  }

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      if (this.runners === 0) this.startRunner(true);
      else this.checkStalled();
    });
  }

  /** Items waiting for a batch. */
  get pending(): number {
    return this.waiting.length;
  }

  /** `mayLead`: the runner of a burst's first items, which may split off a lead batch (leadBatch). */
  private startRunner(mayLead = false): void {
    if (this.starting) return;
    this.starting = true;
    this.runners += 1;
    this.defer(() => {
      this.starting = false;
      void this.loop(mayLead);
    });
  }

  /** Items wait behind batches that have all run longer than stallMs: start another runner for them. */
  private checkStalled(): void {
    const { stallMs } = this.options;
    if (stallMs === undefined || this.waiting.length === 0 || this.starting) return;
    if (this.runners >= (this.options.maxConcurrent ?? 1) || this.runners > this.running.size) return;
    const youngest = Math.max(...[...this.running].map((b) => b.startedAt));
    if (this.now() - youngest >= stallMs) this.startRunner();
  }

  /**
   * Looks for stalled batches once `running` has run for stallMs. A timer may fire a little before the clock
   * says stallMs have passed (Node's timers count from the event loop's cached time, which lags when the
   * batch starts late in a turn): then it looks again when the rest is due, rather than never.
   */
  private scheduleStallCheck(running: { startedAt: number }, inMs: number | undefined): void {
    const { stallMs } = this.options;
    if (stallMs === undefined || inMs === undefined) return;
    this.schedule(() => {
      if (!this.running.has(running)) return;
      const left = stallMs - (this.now() - running.startedAt);
      if (left > 0) this.scheduleStallCheck(running, Math.ceil(left));
      else this.checkStalled();
    }, inMs);
  }

  private async loop(mayLead = false): Promise<void> {
    const lead = this.options.leadBatch ?? 0;
    let leading =
      mayLead && lead > 0 && lead < this.options.maxBatch && this.waiting.length > lead && this.runners < (this.options.maxConcurrent ?? 1);
    for (;;) {
      const batch = this.waiting.splice(0, Math.max(1, leading ? lead : this.options.maxBatch));
      if (batch.length === 0) {
        this.runners -= 1;
        return;
      }
      const running = { startedAt: this.now() };
      this.running.add(running);
      this.scheduleStallCheck(running, this.options.stallMs);
      try {
        const started = this.run(batch.map((w) => w.item));
        // The lead batch has begun (up to its first await): the rest begin theirs beside it, now.
        if (leading) {
          this.runners += 1;
          void this.loop();
        }
        const settled = await started;
        const later: Array<Promise<void>> = [];
        batch.forEach((w, i) => {
          const outcome = settled[i];
          if (!outcome) w.reject(new Error(`a batch of ${batch.length} settled only ${settled.length}`));
          else if (outcome instanceof Promise)
            later.push(
              outcome.then(
                (result) => settle(w, result),
                (error: unknown) => w.reject(error),
              ),
            );
          else settle(w, outcome);
        });
        if (later.length > 0) await Promise.all(later);
      } catch (error) {
        for (const w of batch) w.reject(error);
      } finally {
        this.running.delete(running);
      }
      // The lead batch is done: the other runner goes on alone, one batch at a time (stalled batches aside).
      if (leading && this.runners > 1) {
        this.runners -= 1;
        return;
      }
      leading = false;
    }
  }
}

function settle<O>(waiting: { resolve(value: O): void; reject(error: unknown): void }, outcome: Settled<O>): void {
  if (outcome.ok) waiting.resolve(outcome.value);
  else waiting.reject(outcome.error);
}
