// A first-in first-out queue whose next item is taken in O(1) however many wait (a deep pool queues a thousand
// calls): Array.prototype.shift moves every other item each time.

export class Fifo<T> {
  private items: T[] = [];
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
    this.head += 1;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    }
    return item;
  }
}
