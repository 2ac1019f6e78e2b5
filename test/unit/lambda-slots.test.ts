import { expect } from 'chai';
import { Slots } from '../../src/lambda/slots.ts';

/** Lets every settled promise run its continuations. */
const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('slots (bounded invoke parallelism)', () => {
  it('lets `size` holders in at once and the rest in arrival order as slots are released', async () => {
    const slots = new Slots(2);
    const order: number[] = [];
    const holders = [1, 2, 3, 4, 5].map((i) => slots.acquire().then(() => order.push(i)));
    await flush();
    expect(order).to.deep.equal([1, 2]);
    expect(slots.busy).to.equal(5);
    slots.release();
    await flush();
    expect(order).to.deep.equal([1, 2, 3]);
    slots.release();
    slots.release();
    await flush();
    expect(order).to.deep.equal([1, 2, 3, 4, 5]);
    expect(slots.busy).to.equal(2);
    slots.release();
    slots.release();
    await Promise.all(holders);
    expect(slots.busy).to.equal(0);
  });

  it('keeps arrival order across many waiters that come and go (a deep pool queues a thousand)', async () => {
    const slots = new Slots(3);
    const order: number[] = [];
    const run = async (i: number) => {
      await slots.acquire();
      order.push(i);
      await flush();
      slots.release();
    };
    await Promise.all(Array.from({ length: 1_000 }, (_, i) => run(i)));
    expect(order).to.deep.equal(Array.from({ length: 1_000 }, (_, i) => i));
    expect(slots.busy).to.equal(0);
    // Still a working semaphore once its queue was drained.
    await slots.acquire();
    expect(slots.busy).to.equal(1);
  });

  it('says when it falls idle: at once when nothing holds a slot, else when the last holder releases', async () => {
    const slots = new Slots(1);
    let idle = false;
    await slots.idle();
    await slots.acquire();
    const waiter = slots.acquire();
    const idleAgain = slots.idle().then(() => (idle = true));
    slots.release();
    await waiter;
    await flush();
    expect(idle, 'a waiter took the slot: not idle yet').to.equal(false);
    slots.release();
    await idleAgain;
    expect(idle).to.equal(true);
    expect(slots.busy).to.equal(0);
  });
});
