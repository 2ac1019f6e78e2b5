// A metric that lags: what it reports at `now` is the last sample taken at or before `now - lagMs`, as a
// CloudWatch or SQS figure reports the world of a minute ago. Before any sample is that old it reports
// `empty` (a metric with no datapoint yet reads as zero). Pure: the caller passes the times.

export class LagView<T> {
  private samples: Array<{ at: number; value: T }> = [];

  constructor(
    private readonly lagMs: number,
    private readonly empty: T,
  ) {
    if (!(lagMs >= 0)) throw new Error(`LagView: lagMs must be 0 or more (got ${lagMs})`);
  }

  /** Takes a sample of the true value. Samples must come in time order. */
  record(at: number, value: T): void {
    const last = this.samples.at(-1);
    if (last && at < last.at) throw new Error(`LagView: sample at ${at} is older than the last one (${last.at})`);
    this.samples.push({ at, value });
  }

  /** The value the metric reports at `now`. Forgets samples that can never be reported again. */
  read(now: number): T {
    const horizon = now - this.lagMs;
    let found = -1;
    for (let i = 0; i < this.samples.length && (this.samples[i]?.at ?? Infinity) <= horizon; i += 1) found = i;
    if (found < 0) return this.empty;
    if (found > 0) this.samples = this.samples.slice(found);
    return this.samples[0]?.value ?? this.empty;
  }
}
