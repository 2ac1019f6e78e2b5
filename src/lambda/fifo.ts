// A first-in first-out queue whose next item is taken in O(1) however many wait (the invoker's batches taking
// their turns, the function guard's callers waiting for a slot): Array.prototype.shift moves every other item
// each time.

/** Taken items at the front of the array are dropped once there are this many and they are at least half of it. */
const COMPACT_AFTER = 1_024;

export class Fifo<T> {
  private items: Array<T | undefined> = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  put(item: T): void {
    this.items.push(item);
  }

  /** The oldest item, removed; undefined when none waits. */
  take(): T | undefined {
    if (this.head === this.items.length) return undefined;
    const item = this.items[this.head] as T;
    // Neither a taken item nor the array's front outlives its turn, even in a queue that never runs dry.
    this.items[this.head] = undefined;
    this.head += 1;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= COMPACT_AFTER && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}
