// The database's clock as the controller reads it: an offset from the controller's monotonic clock
// (performance.now()) to the database's clock, taken from the connectivity probe (SELECT clock_timestamp(),
// once a second), so that a moment the controller saw can be written as the database's time without a
// round trip of its own.
//
// Why: a row's invoked_at is when Lambda answered its invoke, but rows are marked after a burst, in one
// statement (pass-batcher.ts). Written as "the statement's clock less how long ago the answer came", each row
// was late by the time from taking "now" to the statement's start in Postgres: serializing a thousand rows'
// parameters, the trip, and a busy server's read. Measured during the scale benchmark's bursts, 2 to 6 ms
// late (mostly 3 to 5), on rows whose every other timestamp is the database's own.
//
// A probe sent at s and answered at r (monotonic ms) read the database's clock d somewhere between: the
// offset d - (s + r) / 2 is then within (r - s) / 2 of the truth. Clocks drift apart, so a probe's bound
// grows with its age by DB_CLOCK.driftPerMs (100 ppm; NTP keeps hosts within a fraction of that). The offset
// used is the probe with the smallest bound now; a probe that waited for a connection or for a busy server
// has a wide bound and is not chosen while a quicker one is recent. With no probe within
// DB_CLOCK.maxErrorMs, callers fall back to the statement's clock.
// Pure: no I/O; the clock readings are passed in.

export interface ClockProbe {
  /** When the probe was sent and answered, on the controller's monotonic clock (ms). */
  sentAt: number;
  answeredAt: number;
  /** The database's clock (clock_timestamp()) as ms since the epoch. */
  databaseMs: number;
}

export const DB_CLOCK = {
  /** How far two clocks may drift apart per ms. */
  driftPerMs: 100e-6,
  /** An offset whose bound is wider than this is not used. */
  maxErrorMs: 2,
  /** Probes kept (one a second). */
  keep: 30,
};

/** The offset (database ms minus monotonic ms) of the probe with the smallest error bound at `now`, and that bound. */
export function bestOffset(
  probes: readonly ClockProbe[],
  now: number,
  driftPerMs = DB_CLOCK.driftPerMs,
): { offsetMs: number; errorMs: number } | undefined {
  let best: { offsetMs: number; errorMs: number } | undefined;
  for (const p of probes) {
    if (!(p.answeredAt >= p.sentAt) || !Number.isFinite(p.databaseMs)) continue;
    const errorMs = (p.answeredAt - p.sentAt) / 2 + Math.max(0, now - p.answeredAt) * driftPerMs;
    if (!best || errorMs < best.errorMs) best = { offsetMs: p.databaseMs - (p.sentAt + p.answeredAt) / 2, errorMs };
  }
  return best;
}

/** The recent probes of one database, and moments of the controller's monotonic clock read on its clock. */
export class DbClock {
  private probes: ClockProbe[] = [];

  record(probe: ClockProbe): void {
    this.probes.push(probe);
    if (this.probes.length > DB_CLOCK.keep) this.probes.shift();
  }

  /**
   * What to add to a moment of the controller's monotonic clock to get the database's time (ms since the
   * epoch), as known at `now`; undefined when no recent probe bounds it within DB_CLOCK.maxErrorMs.
   */
  offsetMs(now: number): number | undefined {
    const best = bestOffset(this.probes, now);
    return best && best.errorMs <= DB_CLOCK.maxErrorMs ? best.offsetMs : undefined;
  }
}
