// The per-function queue of deliveries that are accepted but not started: first deliveries, duplicate copies
// and retries, each due at some time and expiring with its event. A plain data structure: no timers, no clock.

export interface PendingDelivery {
  requestId: string;
  /** 1 for the first delivery, 2 and 3 for retries. */
  attempt: number;
  duplicate: boolean;
  dueAt: number;
  /** The event's acceptance time plus its maximum age. */
  expiresAt: number;
}

interface QueuedDelivery extends PendingDelivery {
  seq: number;
}

function before(a: QueuedDelivery, b: QueuedDelivery): boolean {
  return a.dueAt < b.dueAt || (a.dueAt === b.dueAt && a.seq < b.seq);
}

/** Pending deliveries in due order (FIFO among deliveries due at the same time). */
export class AsyncQueue {
  private items: QueuedDelivery[] = [];
  private seq = 0;
  /** A lower bound of every queued delivery's expiresAt, so that most calls skip the scan. */
  private earliestExpiry = Number.POSITIVE_INFINITY;

  get size(): number {
    return this.items.length;
  }

  push(delivery: PendingDelivery): void {
    const item: QueuedDelivery = { ...delivery, seq: this.seq++ };
    this.earliestExpiry = Math.min(this.earliestExpiry, item.expiresAt);
    let low = 0;
    let high = this.items.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      const other = this.items[mid];
      if (other !== undefined && before(other, item)) low = mid + 1;
      else high = mid;
    }
    this.items.splice(low, 0, item);
  }

  /** Removes and returns the deliveries whose event has expired by `now`. */
  takeExpired(now: number): PendingDelivery[] {
    if (now <= this.earliestExpiry) return [];
    const expired: QueuedDelivery[] = [];
    const kept: QueuedDelivery[] = [];
    let earliest = Number.POSITIVE_INFINITY;
    for (const item of this.items) {
      if (now > item.expiresAt) {
        expired.push(item);
      } else {
        kept.push(item);
        earliest = Math.min(earliest, item.expiresAt);
      }
    }
    this.items = kept;
    this.earliestExpiry = earliest;
    return expired;
  }

  /** Removes and returns the earliest delivery that is due by `now`, if any. */
  takeDue(now: number): PendingDelivery | undefined {
    const first = this.items[0];
    if (first === undefined || first.dueAt > now) return undefined;
    this.items.shift();
    return first;
  }

  /** How many deliveries are due by `now` (waiting only for a free execution slot). */
  countDue(now: number): number {
    let count = 0;
    for (const item of this.items) {
      if (item.dueAt > now) break;
      count++;
    }
    return count;
  }

  /** How many retries are waiting for their due time. */
  countRetriesWaiting(now: number): number {
    return this.items.filter((item) => item.attempt > 1 && item.dueAt > now).length;
  }

  /** The next moment something changes without outside help: a delivery falls due, or an event expires. */
  nextWakeAt(now: number): number | undefined {
    if (this.items.length === 0) return undefined;
    // Items are in due order: the first one not due yet is the next to fall due.
    let low = 0;
    let high = this.items.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      const item = this.items[mid];
      if (item !== undefined && item.dueAt <= now) low = mid + 1;
      else high = mid;
    }
    const nextDue = this.items[low]?.dueAt ?? Number.POSITIVE_INFINITY;
    // The expiry bound may be stale (too early): waking early only costs a pump that finds nothing.
    return Math.min(nextDue, this.earliestExpiry + 1);
  }

  /** Empties the queue and returns what it held. */
  drain(): PendingDelivery[] {
    const all = this.items;
    this.items = [];
    this.earliestExpiry = Number.POSITIVE_INFINITY;
    return all;
  }
}
