// Waiting for a count of calls to fall to zero: one promise for every caller, resolved and forgotten when it
// does, so callers that give up on it leave nothing behind. The invoker's calls and the slots of the
// function guard (slots.ts) both use it.

export class WhenIdle {
  private next?: { promise: Promise<void>; resolve: () => void };

  /** Resolves once settle() is next called; at once when nothing is `busy`. */
  wait(busy: boolean): Promise<void> {
    if (!busy) return Promise.resolve();
    if (!this.next) {
      let resolve = () => {};
      const promise = new Promise<void>((r) => (resolve = r));
      this.next = { promise, resolve };
    }
    return this.next.promise;
  }

  /** The count fell to zero: every wait() so far resolves. */
  settle(): void {
    this.next?.resolve();
    this.next = undefined;
  }
}
