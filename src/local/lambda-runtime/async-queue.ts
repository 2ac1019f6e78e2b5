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

  get size(): number {
    return this.items.length;
  }

  push(delivery: PendingDelivery): void {
    const item: QueuedDelivery = { ...delivery, seq: this.seq++ };
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
    const expired = this.items.filter((item) => now > item.expiresAt);
    if (expired.length > 0) this.items = this.items.filter((item) => now <= item.expiresAt);
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
    let wake: number | undefined;
    for (const item of this.items) {
      const expiry = item.expiresAt + 1;
      const candidate = item.dueAt > now ? Math.min(item.dueAt, expiry) : expiry;
      if (wake === undefined || candidate < wake) wake = candidate;
    }
    return wake;
  }

  /** Empties the queue and returns what it held. */
  drain(): PendingDelivery[] {
    const all = this.items;
    this.items = [];
    return all;
  }
}
