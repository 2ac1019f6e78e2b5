import { expect } from 'chai';
import { DispatchIdle } from '../../src/controller/dispatch-idle.ts';
import { WhenIdle } from '../../src/lambda/when-idle.ts';
import { settled } from '../support/settled.ts';

/** An invoker's idle(), as the tests set it: busy or not. */
class InvokerState {
  private busy = false;
  private readonly idle = new WhenIdle();
  set(busy: boolean) {
    this.busy = busy;
    if (!busy) this.idle.settle();
  }
  wait = () => this.idle.wait(this.busy);
}

/** A DispatchIdle on a clock the test moves (`clock.ms`). */
function setup(stuckMs = 60_000) {
  const invoker = new InvokerState();
  const clock = { ms: 0 };
  const idle = new DispatchIdle({ invokerIdle: invoker.wait, stuckMs, now: () => clock.ms });
  return { invoker, clock, idle };
}

describe('DispatchIdle', () => {
  it('resolves at once when no invoke and no pass is under way', async () => {
    expect(await settled(setup().idle.wait())).to.equal(true);
  });

  it('waits for the invoker to go idle', async () => {
    const { invoker, idle } = setup();
    invoker.set(true);
    const waiting = idle.wait();
    expect(await settled(waiting), 'while invokes are under way').to.equal(false);
    invoker.set(false);
    expect(await settled(waiting), 'once they are answered').to.equal(true);
  });

  it('keeps waiting while the invoker has run dry but a pass still has rows on their way to it', async () => {
    const { invoker, idle } = setup();
    idle.begin(); // a pass whose later rows are still being inserted
    invoker.set(true); // its first rows are invoked
    const waiting = idle.wait();
    invoker.set(false); // and answered: the invoker is dry
    expect(await settled(waiting), 'the invoker dry, a pass still preparing').to.equal(false);
    invoker.set(true); // the later rows reach the invoker
    idle.end();
    expect(await settled(waiting), 'the later rows being invoked').to.equal(false);
    invoker.set(false);
    expect(await settled(waiting), 'every row answered, no pass preparing').to.equal(true);
  });

  it('waits for every pass under way, not the first to end', async () => {
    const { idle } = setup();
    idle.begin();
    idle.begin();
    const waiting = idle.wait();
    idle.end();
    expect(await settled(waiting), 'one pass of two still preparing').to.equal(false);
    idle.end();
    expect(await settled(waiting)).to.equal(true);
  });

  it('stops waiting for passes that made no progress for stuckMs (one waiting on a lock, say)', async () => {
    const { clock, idle } = setup(50);
    idle.begin(); // at 0 ms, and nothing since
    clock.ms = 40;
    const waiting = idle.wait();
    expect(await settled(waiting), '40 ms without progress').to.equal(false);
    clock.ms = 50;
    await waiting; // within the 10 ms left of stuckMs
    clock.ms = 60;
    idle.begin(); // progress: another pass began
    const again = idle.wait();
    expect(await settled(again), 'a pass began 0 ms ago').to.equal(false);
    idle.end();
    idle.end();
    expect(await settled(again), 'both passes done').to.equal(true);
  });

  it('stops waiting once the caller has given up, at the next change', async () => {
    const { invoker, idle } = setup();
    let givenUp = false;
    idle.begin();
    const waiting = idle.wait(() => givenUp);
    expect(await settled(waiting), 'a pass preparing').to.equal(false);
    givenUp = true;
    invoker.set(true); // dispatch is not idle
    idle.end(); // a change: the wait looks at givenUp again
    expect(await settled(waiting), 'given up while invokes are under way').to.equal(true);
  });

  it('refuses an end() without a begin()', () => {
    expect(() => setup().idle.end()).to.throw(/without a begin/);
  });
});
