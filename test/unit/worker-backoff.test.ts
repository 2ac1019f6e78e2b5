import { expect } from 'chai';
import { backoffMs } from '../../packages/worker/src/backoff.ts';
import { invokeRetryDelayMs } from '../../src/planner/invoke-retry.ts';

describe('backoffMs', () => {
  const policy = { initialMs: 1_000, maxMs: 30_000 };
  const cases: Array<{ name: string; attempt: number; random: number; expected: number }> = [
    { name: 'waits the whole initial delay on the first retry when the draw is 1', attempt: 1, random: 1, expected: 1_000 },
    { name: 'waits half the initial delay on the first retry when the draw is 0', attempt: 1, random: 0, expected: 500 },
    { name: 'doubles with every attempt', attempt: 4, random: 1, expected: 8_000 },
    { name: 'draws between half and all of the ceiling', attempt: 3, random: 0.5, expected: 3_000 },
    { name: 'never exceeds the maximum', attempt: 30, random: 1, expected: 30_000 },
    { name: 'treats an attempt below 1 as the first', attempt: 0, random: 1, expected: 1_000 },
    { name: 'keeps a huge attempt finite', attempt: 5_000, random: 1, expected: 30_000 },
  ];
  for (const c of cases) {
    it(c.name, () => expect(backoffMs(c.attempt, policy, () => c.random)).to.equal(c.expected));
  }
  it('never waits with a zero policy', () => expect(backoffMs(3, { initialMs: 0, maxMs: 0 }, () => 1)).to.equal(0));
});

describe('invokeRetryDelayMs', () => {
  it('honours the wait a throttle names, plus up to half of it again', () => {
    const failure = { kind: 'throttled' as const, code: 'TooManyRequestsException', message: '', retryAfterMs: 2_000 };
    expect(invokeRetryDelayMs(failure, 1, () => 0)).to.equal(2_000);
    expect(invokeRetryDelayMs(failure, 1, () => 1)).to.equal(3_000);
  });
  it('backs off exponentially, per row, from 1 s for a throttle that names no wait', () => {
    const failure = { kind: 'throttled' as const, code: 'TooManyRequestsException', message: '' };
    expect([1, 2, 3, 10].map((n) => invokeRetryDelayMs(failure, n, () => 1))).to.deep.equal([1_000, 2_000, 4_000, 60_000]);
  });
  it('backs off exponentially from 2 s for a transient error', () => {
    const failure = { kind: 'transient' as const, code: 'ServiceException', message: '' };
    expect([1, 2, 6].map((n) => invokeRetryDelayMs(failure, n, () => 1))).to.deep.equal([2_000, 4_000, 60_000]);
  });
  it('spreads rows that failed together', () => {
    const failure = { kind: 'transient' as const, code: 'ServiceException', message: '' };
    const delays = new Set(Array.from({ length: 20 }, () => invokeRetryDelayMs(failure, 3)));
    expect(delays.size).to.be.greaterThan(1);
    for (const d of delays) expect(d).to.be.within(4_000, 8_000);
  });
});
