// Follows rows by their finished_at. A transaction may commit a finished_at older than rows already read,
// so every read goes back a short overlap and skips the ids it has seen: each finished row is taken once.
export class FinishedCursor {
  private since: number;
  private readonly seen = new Map<number, number>();

  constructor(
    start: Date,
    private readonly overlapMs = 10_000,
  ) {
    this.since = start.getTime();
  }

  /** Read rows finished after this. */
  readFrom(): Date {
    return new Date(this.since - this.overlapMs);
  }

  /** The rows of a read that were not taken before; `limit` is the read's limit (a full read with nothing new moves on). */
  take<T extends { id: number; finishedAt: Date }>(rows: readonly T[], limit: number): T[] {
    const fresh = rows.filter((r) => !this.seen.has(r.id));
    for (const r of fresh) {
      this.seen.set(r.id, r.finishedAt.getTime());
      this.since = Math.max(this.since, r.finishedAt.getTime());
    }
    // More than `limit` rows inside the overlap, all seen: step past them rather than read them again for ever.
    if (fresh.length === 0 && rows.length >= limit) this.since += this.overlapMs;
    const floor = this.since - this.overlapMs;
    for (const [id, at] of this.seen) if (at < floor) this.seen.delete(id);
    return fresh;
  }
}
