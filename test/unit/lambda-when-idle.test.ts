import { expect } from 'chai';
import { WhenIdle } from '../../src/lambda/when-idle.ts';
import { settled } from '../support/settled.ts';

describe('WhenIdle', () => {
  it('resolves at once when nothing is busy', async () => {
    expect(await settled(new WhenIdle().wait(false))).to.equal(true);
  });

  it('gives every caller while busy one promise, resolved by settle(), and a new one after it', async () => {
    const idle = new WhenIdle();
    const a = idle.wait(true);
    const b = idle.wait(true);
    expect(a, 'the same promise for both callers').to.equal(b);
    expect(await settled(a), 'before settle()').to.equal(false);
    idle.settle();
    expect(await settled(a), 'after settle()').to.equal(true);
    const c = idle.wait(true);
    expect(c, 'a wait after settle() is a new one').to.not.equal(a);
    expect(await settled(c)).to.equal(false);
  });

  it('lets settle() with no one waiting pass', async () => {
    const idle = new WhenIdle();
    idle.settle();
    expect(await settled(idle.wait(true)), 'a later wait is not resolved by an earlier settle()').to.equal(false);
  });
});
