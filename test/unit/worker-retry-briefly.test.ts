import { expect } from 'chai';
import { retryBriefly } from '../../packages/worker/src/retry-briefly.ts';

/** A call that fails with `errors` in turn, then answers 'claimed'; time passes only in the injected sleep. */
function scripted(errors: unknown[]) {
  let clock = 0;
  let calls = 0;
  const waits: number[] = [];
  const call = async () => {
    calls += 1;
    const error = errors.shift();
    if (error !== undefined) throw error;
    return 'claimed';
  };
  const options = {
    policy: { initialMs: 100, maxMs: 2_000 },
    budgetMs: 5_000,
    onRetry: () => undefined,
    now: () => clock,
    sleep: async (ms: number) => {
      waits.push(ms);
      clock += ms;
    },
  };
  return { call, options, waits, calls: () => calls };
}

const stale = () => Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' });

describe('retryBriefly (the function check and the claim)', () => {
  it('retries a connection the server closed, with backoff, until the call answers', async () => {
    const s = scripted([stale(), new Error('Connection terminated unexpectedly'), stale()]);
    expect(await retryBriefly(s.call, s.options)).to.equal('claimed');
    expect(s.calls()).to.equal(4);
    expect(s.waits).to.have.length(3);
    expect(s.waits[0]).to.be.within(50, 100);
    expect(s.waits[2]).to.be.within(200, 400);
  });

  it('gives up with the last error once the next attempt would start after the budget', async () => {
    const s = scripted(Array.from({ length: 50 }, stale));
    let caught: unknown;
    await retryBriefly(s.call, s.options).catch((error: unknown) => (caught = error));
    expect(caught).to.include({ code: '57P01' });
    expect(s.waits.reduce((a, b) => a + b, 0)).to.be.at.most(5_000);
    expect(s.calls()).to.be.within(4, 10);
  });

  it('does not retry an error no retry can fix', async () => {
    const s = scripted([Object.assign(new Error('invalid input syntax'), { code: '22P02' })]);
    let caught: unknown;
    await retryBriefly(s.call, s.options).catch((error: unknown) => (caught = error));
    expect(caught).to.include({ code: '22P02' });
    expect(s.calls()).to.equal(1);
  });
});
