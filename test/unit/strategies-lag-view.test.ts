import { expect } from 'chai';
import { LagView } from '../../bench/strategies/lag-view.ts';

describe('strategy benchmark: the lagging metric', () => {
  it('reports the empty value until a sample is as old as the lag', () => {
    const view = new LagView(60_000, 0);
    view.record(0, 7);
    expect(view.read(0)).to.equal(0);
    expect(view.read(59_999)).to.equal(0);
    expect(view.read(60_000)).to.equal(7);
  });

  it('reports the world as it was one lag ago, not as it is', () => {
    const view = new LagView(60_000, 0);
    for (let t = 0; t <= 120_000; t += 10_000) view.record(t, t / 10_000);
    expect(view.read(120_000)).to.equal(6);
    expect(view.read(125_000)).to.equal(6);
    expect(view.read(130_000)).to.equal(7);
  });

  it('keeps reporting the last old-enough sample when no newer one is old enough yet', () => {
    const view = new LagView(60_000, { pending: 0, running: 0 });
    view.record(1_000, { pending: 3, running: 1 });
    view.record(90_000, { pending: 0, running: 0 });
    expect(view.read(100_000)).to.deep.equal({ pending: 3, running: 1 });
    expect(view.read(150_000)).to.deep.equal({ pending: 0, running: 0 });
  });

  it('with no lag, reports the latest sample', () => {
    const view = new LagView(0, 0);
    view.record(5, 1);
    view.record(6, 2);
    expect(view.read(6)).to.equal(2);
  });

  it('refuses a sample older than the last one', () => {
    const view = new LagView(1_000, 0);
    view.record(10, 1);
    expect(() => view.record(9, 2)).to.throw(/older than the last one/);
  });
});
