import { expect } from 'chai';
import { WorkQueue, type ProcessResult, type WorkQueueOptions } from '../../src/controller/work-queue.ts';

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

function deferred<T>(): Deferred<T> {
  let resolve: (value: T) => void = () => undefined;
  let reject: (error: unknown) => void = () => undefined;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets every settled promise run its continuations. */
const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A schedule that never fires on its own: the test fires the pending callbacks. */
class ManualSchedule {
  private readonly timers: Array<{ fn: () => void; ms: number; cancelled: boolean }> = [];

  readonly schedule: NonNullable<WorkQueueOptions['schedule']> = (fn, ms) => {
    const timer = { fn, ms, cancelled: false };
    this.timers.push(timer);
    return { cancel: () => void (timer.cancelled = true) };
  };

  /** Delays of the callbacks still waiting, in the order they were scheduled. */
  pendingDelays(): number[] {
    return this.timers.filter((t) => !t.cancelled).map((t) => t.ms);
  }

  /** Fires every pending callback once. */
  fireAll(): void {
    const due = this.timers.filter((t) => !t.cancelled);
    this.timers.length = 0;
    due.forEach((t) => t.fn());
  }
}

/**
 * A processor whose calls each wait until the test releases them, and which records which keys ran and
 * how many calls for each key (and overall) were in progress at once.
 */
class GatedProcessor {
  readonly calls: string[] = [];
  readonly maxPerKey = new Map<string, number>();
  maxOverall = 0;
  private readonly active = new Map<string, number>();
  private readonly waiting: Array<{ key: string; gate: Deferred<ProcessResult> }> = [];

  readonly process = async (key: string): Promise<ProcessResult> => {
    this.calls.push(key);
    const now = (this.active.get(key) ?? 0) + 1;
    this.active.set(key, now);
    this.maxPerKey.set(key, Math.max(this.maxPerKey.get(key) ?? 0, now));
    this.maxOverall = Math.max(this.maxOverall, this.inProgress());
    const gate = deferred<ProcessResult>();
    this.waiting.push({ key, gate });
    try {
      return await gate.promise;
    } finally {
      this.active.set(key, (this.active.get(key) ?? 1) - 1);
    }
  };

  inProgress(): number {
    return [...this.active.values()].reduce((a, b) => a + b, 0);
  }

  waitingKeys(): string[] {
    return this.waiting.map((w) => w.key);
  }

  /** Lets the oldest waiting call for `key` finish with `result`. */
  async release(key: string, result: ProcessResult = {}): Promise<void> {
    const index = this.waiting.findIndex((w) => w.key === key);
    if (index < 0) throw new Error(`no call for ${key} is waiting`);
    const [entry] = this.waiting.splice(index, 1);
    entry?.gate.resolve(result);
    await flush();
  }

  /** Makes the oldest waiting call for `key` throw `error`. */
  async fail(key: string, error: unknown): Promise<void> {
    const index = this.waiting.findIndex((w) => w.key === key);
    if (index < 0) throw new Error(`no call for ${key} is waiting`);
    const [entry] = this.waiting.splice(index, 1);
    entry?.gate.reject(error);
    await flush();
  }
}

describe('WorkQueue', () => {
  it('forgets a key: its queued and delayed runs never happen', async () => {
    const p = new GatedProcessor();
    const timers = new ManualSchedule();
    const queue = new WorkQueue(p.process, { workers: 1, schedule: timers.schedule });
    queue.add('blocker');
    queue.add('gone');
    queue.addAfter('gone-later', 1_000);
    await queue.forget('gone');
    await queue.forget('gone-later');
    expect(timers.pendingDelays()).to.deep.equal([]);
    await p.release('blocker');
    timers.fireAll();
    await queue.idle();
    expect(p.calls).to.deep.equal(['blocker']);
  });

  it('forgets a key while it runs: resolves once that run has ended, which is then neither retried nor run again', async () => {
    const p = new GatedProcessor();
    const timers = new ManualSchedule();
    const queue = new WorkQueue(p.process, { workers: 2, schedule: timers.schedule });
    queue.add('failing');
    queue.add('requeued');
    await flush();
    let forgotten = 0;
    const forgets = ['failing', 'requeued'].map((key) => queue.forget(key).then(() => (forgotten += 1)));
    await flush();
    expect(forgotten, 'still running').to.equal(0);
    await p.fail('failing', new Error('status write failed'));
    await p.release('requeued', { requeueAfterMs: 500 });
    await Promise.all(forgets);
    expect(forgotten).to.equal(2);
    expect(timers.pendingDelays(), 'no retry and no requeue of a forgotten key').to.deep.equal([]);
    expect(p.calls).to.deep.equal(['failing', 'requeued']);
  });

  it('processes a key queued many times while it waits for a worker only once', async () => {
    const p = new GatedProcessor();
    const queue = new WorkQueue(p.process, { workers: 1 });
    queue.add('blocker');
    for (let i = 0; i < 5; i += 1) queue.add('pool-a');
    expect(queue.length).to.equal(1);

    await p.release('blocker');
    await p.release('pool-a');
    await queue.idle();

    expect(p.calls).to.deep.equal(['blocker', 'pool-a']);
  });

  it('never processes the same key in two workers at once, even with workers to spare', async () => {
    const p = new GatedProcessor();
    const queue = new WorkQueue(p.process, { workers: 4 });
    queue.add('pool-a');
    queue.add('pool-a');
    queue.add('pool-a');
    await flush();
    expect(p.waitingKeys()).to.deep.equal(['pool-a']);

    await p.release('pool-a');
    queue.add('pool-a');
    await p.release('pool-a');
    await p.release('pool-a');
    await queue.idle();

    expect(p.maxPerKey.get('pool-a')).to.equal(1);
  });

  it('runs a key again after it finishes when it was added while being processed', async () => {
    const p = new GatedProcessor();
    const queue = new WorkQueue(p.process, { workers: 2 });
    queue.add('pool-a');
    queue.add('pool-a'); // arrives mid-pass: the world may have changed since the pass read it
    expect(p.calls).to.deep.equal(['pool-a']);

    await p.release('pool-a');
    expect(p.calls).to.deep.equal(['pool-a', 'pool-a']);
    await p.release('pool-a');
    await queue.idle();

    expect(p.calls).to.deep.equal(['pool-a', 'pool-a']);
  });

  it('processes at most `workers` keys at once and gets to every key in the end', async () => {
    const p = new GatedProcessor();
    const queue = new WorkQueue(p.process, { workers: 2 });
    for (const key of ['a', 'b', 'c', 'd', 'e']) queue.add(key);
    expect(p.inProgress()).to.equal(2);
    expect(queue.length).to.equal(3);

    for (const key of ['a', 'b', 'c', 'd', 'e']) await p.release(key);
    await queue.idle();

    expect(p.maxOverall).to.equal(2);
    expect([...p.calls].sort()).to.deep.equal(['a', 'b', 'c', 'd', 'e']);
  });

  it('retries a failing key after a backoff that doubles up to the maximum and tells onError the delay', async () => {
    const clock = new ManualSchedule();
    const errors: Array<{ key: string; message: string; retryInMs: number }> = [];
    const failure = new Error('database unavailable');
    const queue = new WorkQueue(
      async () => {
        throw failure;
      },
      { workers: 1, baseBackoffMs: 100, maxBackoffMs: 700, schedule: clock.schedule, random: () => 1 },
      (key, error, retryInMs) => errors.push({ key, message: error instanceof Error ? error.message : String(error), retryInMs }),
    );

    queue.add('pool-a');
    await flush();
    for (let i = 0; i < 4; i += 1) {
      clock.fireAll();
      await flush();
    }

    expect(errors.map((e) => e.retryInMs)).to.deep.equal([100, 200, 400, 700, 700]);
    expect(errors.every((e) => e.key === 'pool-a' && e.message === 'database unavailable')).to.equal(true);
    expect(clock.pendingDelays()).to.deep.equal([700]);
    expect(queue.backoffFor('pool-a')).to.equal(700);
  });

  it('starts the backoff over after a key succeeds', async () => {
    const clock = new ManualSchedule();
    const delays: number[] = [];
    const outcomes = ['fail', 'fail', 'ok', 'fail'];
    const queue = new WorkQueue(
      async () => {
        if (outcomes.shift() === 'fail') throw new Error('boom');
        return {};
      },
      { workers: 1, baseBackoffMs: 100, maxBackoffMs: 10_000, schedule: clock.schedule, random: () => 1 },
      (_key, _error, retryInMs) => delays.push(retryInMs),
    );

    queue.add('pool-a');
    await flush();
    clock.fireAll(); // second failure
    await flush();
    clock.fireAll(); // success
    await flush();
    expect(queue.backoffFor('pool-a')).to.equal(100);
    queue.add('pool-a'); // the next failure
    await flush();

    expect(delays).to.deep.equal([100, 200, 100]);
  });

  it('keeps backoff per key: one failing key does not slow another', async () => {
    const clock = new ManualSchedule();
    const queue = new WorkQueue(
      async (key) => {
        if (key === 'bad') throw new Error('boom');
        return {};
      },
      { workers: 2, baseBackoffMs: 100, schedule: clock.schedule, random: () => 1 },
    );
    queue.add('bad');
    await flush();
    clock.fireAll();
    await flush();
    queue.add('good');
    await queue.idle();

    expect(queue.backoffFor('bad')).to.equal(400);
    expect(queue.backoffFor('good')).to.equal(100);
  });

  it('processes a key again after the requeueAfterMs its pass asked for', async () => {
    const clock = new ManualSchedule();
    const calls: string[] = [];
    const queue = new WorkQueue(
      async (key) => {
        calls.push(key);
        return calls.length === 1 ? { requeueAfterMs: 30_000 } : {};
      },
      { workers: 1, schedule: clock.schedule, random: () => 1 },
    );

    queue.add('pool-a');
    await queue.idle();
    expect(calls).to.deep.equal(['pool-a']);
    expect(clock.pendingDelays()).to.deep.equal([30_000]);

    clock.fireAll();
    await queue.idle();
    expect(calls).to.deep.equal(['pool-a', 'pool-a']);
    expect(clock.pendingDelays()).to.deep.equal([]);
  });

  it('keeps the earliest pending delay when a key is added after several delays', async () => {
    const clock = new ManualSchedule();
    const calls: string[] = [];
    const queue = new WorkQueue(
      async (key) => {
        calls.push(key);
        return {};
      },
      { workers: 1, schedule: clock.schedule, random: () => 1 },
    );

    queue.addAfter('pool-a', 60_000);
    queue.addAfter('pool-a', 5_000); // earlier: replaces the minute
    queue.addAfter('pool-a', 30_000); // later: ignored
    expect(clock.pendingDelays()).to.deep.equal([5_000]);

    clock.fireAll();
    await queue.idle();
    expect(calls).to.deep.equal(['pool-a']);
  });

  it('adds a key at once when its delay is zero or negative', async () => {
    const clock = new ManualSchedule();
    const calls: string[] = [];
    const queue = new WorkQueue(
      async (key) => {
        calls.push(key);
        return {};
      },
      { workers: 2, schedule: clock.schedule, random: () => 1 },
    );
    queue.addAfter('pool-a', 0);
    queue.addAfter('pool-b', -5);
    await queue.idle();

    expect(calls).to.deep.equal(['pool-a', 'pool-b']);
    expect(clock.pendingDelays()).to.deep.equal([]);
  });

  it('resolves idle() at once when nothing is queued or running', async () => {
    const queue = new WorkQueue(async () => ({}), { workers: 1 });
    await queue.idle();
  });

  it('resolves idle() only after the last running key finishes', async () => {
    const p = new GatedProcessor();
    const queue = new WorkQueue(p.process, { workers: 1 });
    queue.add('a');
    queue.add('b');
    let idle = false;
    void queue.idle().then(() => void (idle = true));

    await p.release('a');
    expect(idle).to.equal(false);
    await p.release('b');
    expect(idle).to.equal(true);
  });

  it('after stop() starts no queued or delayed key, ignores new keys, and lets idle() resolve once the running key ends', async () => {
    const clock = new ManualSchedule();
    const p = new GatedProcessor();
    const queue = new WorkQueue(p.process, { workers: 1, schedule: clock.schedule, random: () => 1 });
    queue.add('running');
    queue.add('queued');
    queue.addAfter('delayed', 1_000);

    queue.stop();
    queue.add('late');
    queue.addAfter('late', 10);
    queue.add('running'); // would mark it dirty on a live queue
    expect(clock.pendingDelays()).to.deep.equal([]);
    expect(queue.length).to.equal(0);

    const idle = queue.idle();
    await p.release('running');
    await idle;

    expect(p.calls).to.deep.equal(['running']);
  });

  it('does not retry a key that fails after stop()', async () => {
    const clock = new ManualSchedule();
    const gate = deferred<ProcessResult>();
    const queue = new WorkQueue(() => gate.promise, { workers: 1, schedule: clock.schedule, random: () => 1 });
    queue.add('pool-a');
    queue.stop();
    gate.reject(new Error('interrupted'));
    await queue.idle();

    expect(clock.pendingDelays()).to.deep.equal([]);
  });
});
