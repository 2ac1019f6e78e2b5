// For unit tests of things that resolve promises: whether one has resolved yet, without waiting for it.

/** Whether `promise` has settled by the time the microtasks and immediates queued now have run. */
export async function settled(promise: Promise<void>): Promise<boolean> {
  let done = false;
  void promise.then(() => (done = true));
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}
