import { expect } from 'chai';
import { LeaseKeeper, defaultFenceMarginMs, heartbeatIntervalMs, type StopReason } from '../../packages/worker/src/lease-keeper.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A keeper on a hand-driven clock; heartbeats are answered by `answer` (real timers, a 10 ms interval). */
function keeper(args: { timeoutMs: number; marginMs: number; answer?: () => Promise<boolean>; intervalMs?: number }) {
  let clock = 1_000;
  const stops: Array<{ reason: StopReason; detail: string }> = [];
  const k = new LeaseKeeper(
    {
      heartbeatTimeoutMs: args.timeoutMs,
      fenceMarginMs: args.marginMs,
      intervalMs: args.intervalMs ?? 60_000,
      beat: args.answer ?? (async () => true),
      onStop: (reason, detail) => stops.push({ reason, detail }),
      now: () => clock,
    },
    clock,
  );
  return { k, stops, advance: (ms: number) => (clock += ms), at: () => clock };
}

describe('LeaseKeeper', () => {
  it('fences the invocation once no renewal has succeeded for the heartbeat timeout minus the margin', () => {
    const { k, stops, advance } = keeper({ timeoutMs: 10_000, marginMs: 2_000 });
    advance(7_999);
    expect(k.fenced).to.equal(false);
    expect(k.signal.aborted).to.equal(false);
    expect(k.msUntilFence()).to.equal(1);
    advance(1);
    expect(k.fenced).to.equal(true);
    expect(k.signal.aborted).to.equal(true);
    expect(stops.map((s) => s.reason)).to.deep.equal(['fenced']);
    expect(stops[0]?.detail).to.include('10000 ms');
    k.close();
  });

  it('dates a renewal from when it was sent, so a slow answer never buys extra time', () => {
    const { k, advance, at } = keeper({ timeoutMs: 10_000, marginMs: 2_000 });
    advance(5_000);
    const sentAt = at();
    advance(4_000); // the answer took 4 s
    k.renewed(sentAt);
    expect(k.msUntilFence()).to.equal(4_000);
    advance(4_000);
    expect(k.fenced).to.equal(true);
    k.close();
  });

  it('ignores a renewal older than the one it already has', () => {
    const { k, advance } = keeper({ timeoutMs: 10_000, marginMs: 2_000 });
    advance(3_000);
    k.renewed(500);
    expect(k.msUntilFence()).to.equal(5_000);
    k.close();
  });

  it('stops, without fencing, when a heartbeat finds the invocation ended by the controller', async () => {
    const { k, stops } = keeper({ timeoutMs: 10_000, marginMs: 2_000, intervalMs: 10, answer: async () => false });
    await sleep(60);
    expect(k.stopped).to.equal('ended');
    expect(k.fenced).to.equal(false);
    expect(k.signal.aborted).to.equal(true);
    expect(stops.map((s) => s.reason)).to.deep.equal(['ended']);
    k.close();
  });

  it('still fences an invocation that was already stopping, so it writes nothing once its lease may be gone', async () => {
    const { k, stops, advance } = keeper({ timeoutMs: 10_000, marginMs: 2_000, intervalMs: 10, answer: async () => false });
    await sleep(60);
    advance(8_000);
    expect(k.fenced).to.equal(true);
    expect(stops.map((s) => s.reason)).to.deep.equal(['ended', 'fenced']);
    let resolved = false;
    await Promise.race([k.untilFenced().then(() => (resolved = true)), sleep(50)]);
    expect(resolved).to.equal(true);
    k.close();
  });

  it('keeps renewing while heartbeats succeed, and counts a failed heartbeat as no renewal', async () => {
    let fail = false;
    const { k, advance } = keeper({
      timeoutMs: 10_000,
      marginMs: 2_000,
      intervalMs: 10,
      answer: async () => {
        if (fail) throw new Error('connection refused');
        return true;
      },
    });
    advance(6_000);
    await sleep(60);
    expect(k.msUntilFence()).to.equal(8_000);
    fail = true;
    advance(6_000);
    await sleep(60);
    expect(k.msUntilFence()).to.equal(2_000);
    k.close();
  });

  it('does not fence a healthy worker over one beat stuck on a dead connection: it gives up, and the next goes at once', async function () {
    this.timeout(10_000);
    // Heartbeat timeout 3 s, margin 0.6 s: the fence comes 2.4 s after the last renewal; 1.2 s asked, cut to 0.8 s.
    const stops: StopReason[] = [];
    const sent: number[] = [];
    const began = performance.now();
    let beats = 0;
    const k = new LeaseKeeper(
      {
        heartbeatTimeoutMs: 3_000,
        fenceMarginMs: 600,
        intervalMs: 1_200,
        // The second beat went out on a connection the network dropped: no answer, until its own timeout.
        beat: (timeoutMs) => {
          beats += 1;
          sent.push(Math.round(performance.now() - began));
          if (beats !== 2) return Promise.resolve(true);
          return new Promise((_, reject) => setTimeout(() => reject(new Error('Query read timeout')), timeoutMs));
        },
        onStop: (reason) => stops.push(reason),
      },
      performance.now(),
    );
    try {
      await sleep(4_500);
      expect(stops, `beats sent at ${sent.join(', ')} ms`).to.deep.equal([]);
      expect(k.fenced).to.equal(false);
      // The third beat follows the stuck one at its timeout (1 s), not at the next tick after it.
      expect((sent[2] ?? 0) - (sent[1] ?? 0), `beats sent at ${sent.join(', ')} ms`).to.be.within(950, 1_200);
    } finally {
      k.close();
    }
  });

  it('aborts the signal when the function is about to run out of time', async () => {
    const { k, stops } = keeper({ timeoutMs: 10_000, marginMs: 2_000 });
    k.stopBeforeDeadline(3_030, 3_000);
    await sleep(100);
    expect(k.stopped).to.equal('timeout');
    expect(k.signal.aborted).to.equal(true);
    expect(stops[0]?.detail).to.include('3000 ms left');
    k.close();
  });

  it('keeps a healthy worker alive when heartbeatIntervalMs is as long as the heartbeat timeout, and says so once', async () => {
    const stops: StopReason[] = [];
    const capped: Array<[number, number]> = [];
    let beats = 0;
    const k = new LeaseKeeper(
      {
        heartbeatTimeoutMs: 900,
        fenceMarginMs: 300,
        intervalMs: 900,
        beat: async () => {
          beats += 1;
          return true;
        },
        onStop: (reason) => stops.push(reason),
        onIntervalCapped: (requestedMs, usedMs) => capped.push([requestedMs, usedMs]),
      },
      performance.now(),
    );
    await sleep(1_300);
    k.close();
    expect(stops).to.deep.equal([]);
    expect(k.signal.aborted).to.equal(false);
    expect(beats).to.be.at.least(3);
    expect(capped).to.deep.equal([[900, 200]]);
  });

  const intervals: Array<{ name: string; requestedMs?: number; expected: { intervalMs: number; cappedFrom?: number } }> = [
    { name: 'renews a quarter of the timeout apart by default', expected: { intervalMs: 15_000 } },
    { name: 'keeps an interval well inside the time to the fence', requestedMs: 5_000, expected: { intervalMs: 5_000 } },
    { name: 'keeps an interval of exactly a third of the time to the fence', requestedMs: 16_000, expected: { intervalMs: 16_000 } },
    {
      name: 'cuts a longer interval to a third of the time to the fence',
      requestedMs: 60_000,
      expected: { intervalMs: 16_000, cappedFrom: 60_000 },
    },
  ];
  for (const c of intervals) {
    it(c.name, () =>
      expect(heartbeatIntervalMs({ heartbeatTimeoutMs: 60_000, fenceMarginMs: 12_000, requestedMs: c.requestedMs })).to.deep.equal(
        c.expected,
      ),
    );
  }

  it('uses a margin of a fifth of the timeout, at least a second', () => {
    expect(defaultFenceMarginMs(120_000)).to.equal(24_000);
    expect(defaultFenceMarginMs(5_000)).to.equal(1_000);
  });
});
