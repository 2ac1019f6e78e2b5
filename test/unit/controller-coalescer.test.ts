import { expect } from 'chai';
import { Coalescer, type Settled } from '../../src/controller/coalescer.ts';

/** Lets every settled promise run its continuations. */
const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A batch runner the test releases by hand, recording each batch it was given. */
class ManualRunner {
  readonly batches: number[][] = [];
  private releases: Array<(settled: Array<Settled<string>>) => void> = [];
  private failures: Array<(error: unknown) => void> = [];

  readonly run = (items: number[]): Promise<Array<Settled<string>>> => {
    this.batches.push(items);
    return new Promise((resolve, reject) => {
      this.releases.push(resolve);
      this.failures.push(reject);
    });
  };

  /** Settles the oldest running batch: every item ok, as `v<item>`, except those named. */
  release(failing: readonly number[] = []): void {
    const items = this.batches[this.batches.length - this.releases.length] ?? [];
    this.failures.shift();
    this.releases.shift()?.(
      items.map((item) => (failing.includes(item) ? { ok: false, error: new Error(`item ${item}`) } : { ok: true, value: `v${item}` })),
    );
  }

  fail(error: Error): void {
    this.releases.shift();
    this.failures.shift()?.(error);
  }
}

describe('coalescer (group commit)', () => {
  it('runs the items handed in within one turn of the event loop as one batch', async () => {
    const runner = new ManualRunner();
    const coalescer = new Coalescer(runner.run, { maxBatch: 100 });
    const results = [1, 2, 3].map((i) => coalescer.submit(i));
    await flush();
    expect(runner.batches).to.deep.equal([[1, 2, 3]]);
    runner.release();
    expect(await Promise.all(results)).to.deep.equal(['v1', 'v2', 'v3']);
  });

  it('gathers the items that arrive while a batch runs into the next batch', async () => {
    const runner = new ManualRunner();
    const coalescer = new Coalescer(runner.run, { maxBatch: 100 });
    const first = coalescer.submit(1);
    await flush();
    const later = [2, 3, 4].map((i) => coalescer.submit(i));
    await flush();
    expect(runner.batches, 'nothing starts while a batch runs').to.deep.equal([[1]]);
    runner.release();
    await flush();
    expect(runner.batches).to.deep.equal([[1], [2, 3, 4]]);
    runner.release();
    expect([await first, ...(await Promise.all(later))]).to.deep.equal(['v1', 'v2', 'v3', 'v4']);
  });

  it('splits what waits into batches of at most maxBatch', async () => {
    const runner = new ManualRunner();
    const coalescer = new Coalescer(runner.run, { maxBatch: 2 });
    const results = [1, 2, 3, 4, 5].map((i) => coalescer.submit(i));
    for (let i = 0; i < 3; i += 1) {
      await flush();
      runner.release();
    }
    expect(await Promise.all(results)).to.have.length(5);
    expect(runner.batches).to.deep.equal([[1, 2], [3, 4], [5]]);
  });

  it('fails only the items the batch says failed', async () => {
    const runner = new ManualRunner();
    const coalescer = new Coalescer(runner.run, { maxBatch: 10 });
    const results = [1, 2, 3].map((i) => coalescer.submit(i).then(String, (e: Error) => `failed: ${e.message}`));
    await flush();
    runner.release([2]);
    expect(await Promise.all(results)).to.deep.equal(['v1', 'failed: item 2', 'v3']);
  });

  it('settles an item the batch answers with a promise when that promise settles, and the others at once', async () => {
    let finishLate: (settled: Settled<string>) => void = () => undefined;
    const late = new Promise<Settled<string>>((resolve) => (finishLate = resolve));
    const batches: number[][] = [];
    const coalescer = new Coalescer<number, string>(
      async (items) => {
        batches.push(items);
        return items.map((item) => (item === 1 ? late : { ok: true, value: `v${item}` }));
      },
      { maxBatch: 10 },
    );
    const done: string[] = [];
    const results = [1, 2, 3].map((i) => coalescer.submit(i).then((v) => (done.push(v), v)));
    await flush();
    await flush();
    expect(done, 'the items answered now are through while item 1 is still out').to.deep.equal(['v2', 'v3']);
    const next = coalescer.submit(4);
    await flush();
    expect(batches, 'the batch runs until its last item settles: the next waits behind it').to.deep.equal([[1, 2, 3]]);
    finishLate({ ok: false, error: new Error('held') });
    const [first] = results;
    expect(await first?.then(String, (e: Error) => `failed: ${e.message}`)).to.equal('failed: held');
    expect(await next).to.equal('v4');
    expect(batches).to.deep.equal([[1, 2, 3], [4]]);
  });

  it('fails every item of a batch that throws, and goes on with the next batch', async () => {
    const runner = new ManualRunner();
    const coalescer = new Coalescer(runner.run, { maxBatch: 10 });
    const doomed = [1, 2].map((i) => coalescer.submit(i).then(String, (e: Error) => `failed: ${e.message}`));
    await flush();
    const next = coalescer.submit(3);
    runner.fail(new Error('connection lost'));
    expect(await Promise.all(doomed)).to.deep.equal(['failed: connection lost', 'failed: connection lost']);
    await flush();
    runner.release();
    expect(await next).to.equal('v3');
    expect(runner.batches).to.deep.equal([[1, 2], [3]]);
  });

  it('starts a new batch at once when the next item comes after it fell idle', async () => {
    const runner = new ManualRunner();
    const coalescer = new Coalescer(runner.run, { maxBatch: 10 });
    const first = coalescer.submit(1);
    await flush();
    runner.release();
    expect(await first).to.equal('v1');
    await flush();
    expect(coalescer.pending).to.equal(0);
    const second = coalescer.submit(2);
    await flush();
    runner.release();
    expect(await second).to.equal('v2');
    expect(runner.batches).to.deep.equal([[1], [2]]);
  });

  it('lets the items behind a batch that stalls start a batch of their own, up to maxConcurrent', async () => {
    const runner = new ManualRunner();
    let clock = 0;
    const checks: Array<() => void> = [];
    const coalescer = new Coalescer(runner.run, {
      maxBatch: 10,
      stallMs: 100,
      maxConcurrent: 2,
      now: () => clock,
      schedule: (check) => checks.push(check),
    });
    const stuck = coalescer.submit(1);
    await flush();
    const behind = [2, 3].map((i) => coalescer.submit(i));
    await flush();
    expect(runner.batches, 'a batch running for less than stallMs holds the others back').to.deep.equal([[1]]);
    clock = 150;
    checks.forEach((check) => check());
    await flush();
    expect(runner.batches, 'once it stalls, the waiting items go on their own').to.deep.equal([[1], [2, 3]]);
    const more = coalescer.submit(4);
    clock = 300;
    checks.forEach((check) => check());
    await flush();
    expect(runner.batches, 'no third batch while two run: maxConcurrent').to.deep.equal([[1], [2, 3]]);
    runner.release(); // settles [1]
    await flush();
    expect(runner.batches.at(-1), 'the freed runner takes what waits').to.deep.equal([4]);
    runner.release();
    runner.release();
    expect([await stuck, ...(await Promise.all(behind)), await more]).to.deep.equal(['v1', 'v2', 'v3', 'v4']);
  });

  it('looks again when the stall timer fires before the clock says the batch has stalled', async () => {
    const runner = new ManualRunner();
    let clock = 0;
    const checks: Array<{ check: () => void; ms: number }> = [];
    const coalescer = new Coalescer(runner.run, {
      maxBatch: 10,
      stallMs: 100,
      maxConcurrent: 2,
      now: () => clock,
      schedule: (check, ms) => checks.push({ check, ms }),
    });
    const stuck = coalescer.submit(1);
    await flush();
    const behind = coalescer.submit(2);
    await flush();
    clock = 99.4; // the timer for 100 ms fires early, as Node's can
    checks.shift()?.check();
    await flush();
    expect(runner.batches, 'not stalled yet').to.deep.equal([[1]]);
    expect(
      checks.map((c) => c.ms),
      'a check for the rest of stallMs',
    ).to.deep.equal([1]);
    clock = 100.4;
    checks.shift()?.check();
    await flush();
    expect(runner.batches, 'the item behind the stalled batch goes on its own').to.deep.equal([[1], [2]]);
    runner.release();
    runner.release();
    expect([await stuck, await behind]).to.deep.equal(['v1', 'v2']);
  });

  describe('a lead batch (leadBatch)', () => {
    const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

    it('starts a burst of more than leadBatch items with a batch of leadBatch, and the rest beside it at once', async () => {
      const runner = new ManualRunner();
      const coalescer = new Coalescer(runner.run, { maxBatch: 100, maxConcurrent: 4, leadBatch: 8 });
      const results = range(1, 20).map((i) => coalescer.submit(i));
      await flush();
      expect(runner.batches, 'both running, neither settled').to.deep.equal([range(1, 8), range(9, 20)]);
      runner.release();
      runner.release();
      expect(await Promise.all(results)).to.deep.equal(range(1, 20).map((i) => `v${i}`));
    });

    it('runs a burst of leadBatch items as one batch, and one of leadBatch + 1 as leadBatch and 1', async () => {
      for (const [items, batches] of [
        [8, [range(1, 8)]],
        [9, [range(1, 8), [9]]],
      ] as const) {
        const runner = new ManualRunner();
        const coalescer = new Coalescer(runner.run, { maxBatch: 100, maxConcurrent: 4, leadBatch: 8 });
        const results = range(1, items).map((i) => coalescer.submit(i));
        await flush();
        expect(runner.batches, `${items} items`).to.deep.equal(batches);
        for (const _ of batches) runner.release();
        expect(await Promise.all(results)).to.have.length(items);
      }
    });

    it('has no lead batch of maxBatch or more: batches stay within maxBatch', async () => {
      const runner = new ManualRunner();
      const coalescer = new Coalescer(runner.run, { maxBatch: 5, maxConcurrent: 4, leadBatch: 8 });
      const results = range(1, 12).map((i) => coalescer.submit(i));
      for (let k = 0; k < 3; k += 1) {
        await flush();
        runner.release();
      }
      expect(await Promise.all(results)).to.have.length(12);
      expect(runner.batches).to.deep.equal([range(1, 5), range(6, 10), [11, 12]]);
    });

    it('goes on with what waits once a lead that outlives the rest fails, every item settled', async () => {
      let releaseRest: (() => void) | undefined;
      let failLead: ((error: Error) => void) | undefined;
      const batches: number[][] = [];
      const coalescer = new Coalescer<number, string>(
        (items) => {
          batches.push(items);
          const settled = items.map((i) => ({ ok: true as const, value: `v${i}` }));
          if (batches.length === 1) return new Promise((_, reject) => (failLead = reject));
          if (batches.length === 2) return new Promise((resolve) => (releaseRest = () => resolve(settled)));
          return Promise.resolve(settled);
        },
        { maxBatch: 100, maxConcurrent: 4, leadBatch: 2 },
      );
      const outcome = (p: Promise<string>) => p.then(String, (e: Error) => `failed: ${e.message}`);
      const burst = range(1, 5).map((i) => outcome(coalescer.submit(i)));
      await flush();
      expect(batches).to.deep.equal([
        [1, 2],
        [3, 4, 5],
      ]);
      releaseRest?.();
      await flush();
      const later = [6, 7].map((i) => outcome(coalescer.submit(i)));
      await flush();
      expect(batches, 'what comes waits behind the lead batch, as behind any running batch').to.have.length(2);
      failLead?.(new Error('connection lost'));
      await flush();
      expect(batches.at(-1), 'the lead runner, alone now, takes what waits').to.deep.equal([6, 7]);
      expect([...(await Promise.all(burst)), ...(await Promise.all(later))]).to.deep.equal([
        'failed: connection lost',
        'failed: connection lost',
        'v3',
        'v4',
        'v5',
        'v6',
        'v7',
      ]);
    });

    it('has no lead batch where only one batch may run at a time (maxConcurrent 1)', async () => {
      const runner = new ManualRunner();
      const coalescer = new Coalescer(runner.run, { maxBatch: 100, leadBatch: 8 });
      const results = range(1, 20).map((i) => coalescer.submit(i));
      await flush();
      expect(runner.batches).to.deep.equal([range(1, 20)]);
      runner.release();
      expect(await Promise.all(results)).to.have.length(20);
    });

    it('runs batches one at a time again once the lead batch is done, the rest of the burst in maxBatch', async () => {
      const runner = new ManualRunner();
      const coalescer = new Coalescer(runner.run, { maxBatch: 10, maxConcurrent: 4, leadBatch: 4 });
      const burst = range(1, 30).map((i) => coalescer.submit(i));
      await flush();
      expect(runner.batches, 'the lead, and the first maxBatch of the rest beside it').to.deep.equal([range(1, 4), range(5, 14)]);
      const later = range(31, 33).map((i) => coalescer.submit(i));
      runner.release(); // the lead
      await flush();
      expect(runner.batches, 'the lead runner does not take what waits while the rest runs').to.have.length(2);
      runner.release(); // 5..14
      await flush();
      expect(runner.batches.at(-1)).to.deep.equal(range(15, 24));
      runner.release();
      await flush();
      expect(runner.batches.at(-1), 'what came later joins the batches in turn, with no new lead').to.deep.equal([
        ...range(25, 30),
        31,
        32,
        33,
      ]);
      runner.release();
      expect([...(await Promise.all(burst)), ...(await Promise.all(later))]).to.have.length(33);
      expect(runner.batches, 'four batches in all').to.deep.equal([
        range(1, 4),
        range(5, 14),
        range(15, 24),
        [...range(25, 30), 31, 32, 33],
      ]);
    });

    it('leads the next burst again after a quiet spell', async () => {
      const runner = new ManualRunner();
      const coalescer = new Coalescer(runner.run, { maxBatch: 100, maxConcurrent: 4, leadBatch: 2 });
      const first = range(1, 5).map((i) => coalescer.submit(i));
      await flush();
      runner.release();
      runner.release();
      await Promise.all(first);
      await flush();
      const second = range(6, 10).map((i) => coalescer.submit(i));
      await flush();
      expect(runner.batches).to.deep.equal([
        [1, 2],
        [3, 4, 5],
        [6, 7],
        [8, 9, 10],
      ]);
      runner.release();
      runner.release();
      expect(await Promise.all(second)).to.deep.equal(['v6', 'v7', 'v8', 'v9', 'v10']);
    });
  });
});
