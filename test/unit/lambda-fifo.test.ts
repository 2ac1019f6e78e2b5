import { expect } from 'chai';
import { Fifo } from '../../src/lambda/fifo.ts';

describe('fifo (the invoker queue)', () => {
  it('gives items back in the order they were put, and nothing once empty', () => {
    const fifo = new Fifo<number>();
    for (const n of [3, 1, 2]) fifo.put(n);
    expect(fifo.length).to.equal(3);
    expect([fifo.take(), fifo.take()]).to.deep.equal([3, 1]);
    fifo.put(9);
    expect(fifo.length).to.equal(2);
    expect([fifo.take(), fifo.take(), fifo.take()]).to.deep.equal([2, 9, undefined]);
    expect(fifo.length).to.equal(0);
  });

  it('keeps falsy items (0, empty string) as items, not as the end', () => {
    const fifo = new Fifo<number | string>();
    fifo.put(0);
    fifo.put('');
    expect([fifo.take(), fifo.take(), fifo.length]).to.deep.equal([0, '', 0]);
  });

  it('keeps its order in a queue that never runs dry (taken items are dropped from the front as it goes)', () => {
    const fifo = new Fifo<number>();
    let next = 0;
    let expected = 0;
    const wrong: string[] = [];
    for (let i = 0; i < 3; i += 1) fifo.put(next++);
    for (let round = 0; round < 50_000; round += 1) {
      fifo.put(next++);
      if (round % 3 === 0) fifo.put(next++);
      const got = fifo.take();
      if (got !== expected) wrong.push(`round ${round}: ${got} for ${expected}`);
      expected += 1;
    }
    expect(wrong.slice(0, 3)).to.deep.equal([]);
    expect(fifo.length).to.equal(next - expected);
    const rest: number[] = [];
    for (let item = fifo.take(); item !== undefined; item = fifo.take()) rest.push(item);
    expect(rest.length).to.equal(next - expected);
    expect([rest[0], rest.at(-1)]).to.deep.equal([expected, next - 1]);
  });

  it('is usable again after it drained, many times over', () => {
    const fifo = new Fifo<number>();
    const out: number[] = [];
    for (let round = 0; round < 1_000; round += 1) {
      fifo.put(round);
      fifo.put(-round);
      out.push(fifo.take() ?? Number.NaN, fifo.take() ?? Number.NaN);
    }
    expect(out.length).to.equal(2_000);
    expect(out.slice(-2)).to.deep.equal([999, -999]);
    expect(fifo.length).to.equal(0);
  });
});
