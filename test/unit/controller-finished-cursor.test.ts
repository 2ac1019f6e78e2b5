import { expect } from 'chai';
import { FinishedCursor } from '../../src/controller/finished-cursor.ts';

const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s));

describe('FinishedCursor (each finished row taken once)', () => {
  it('takes rows once, and reads back an overlap so a late commit with an older time is still taken', () => {
    const cursor = new FinishedCursor(at(0), 10_000);
    expect(
      cursor
        .take(
          [
            { id: 1, finishedAt: at(5) },
            { id: 2, finishedAt: at(8) },
          ],
          100,
        )
        .map((r) => r.id),
    ).to.deep.equal([1, 2]);
    expect(cursor.readFrom()).to.deep.equal(at(-2));
    // Row 3 committed after row 2 was read, with an earlier finished_at: inside the overlap, so taken now.
    const again = [
      { id: 1, finishedAt: at(5) },
      { id: 3, finishedAt: at(7) },
      { id: 2, finishedAt: at(8) },
    ];
    expect(cursor.take(again, 100).map((r) => r.id)).to.deep.equal([3]);
    expect(cursor.take(again, 100)).to.deep.equal([]);
  });

  it('steps past a full read of rows it has all seen instead of reading them for ever', () => {
    const cursor = new FinishedCursor(at(0), 10_000);
    const rows = [
      { id: 1, finishedAt: at(1) },
      { id: 2, finishedAt: at(1) },
    ];
    cursor.take(rows, 2);
    const before = cursor.readFrom().getTime();
    cursor.take(rows, 2);
    expect(cursor.readFrom().getTime()).to.equal(before + 10_000);
  });
});
