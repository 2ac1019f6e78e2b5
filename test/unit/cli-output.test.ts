import { expect } from 'chai';
import { age, table, truncate } from '../../src/cli/output.ts';
import { plural } from '../../src/ops/plural.ts';

describe('cli output', () => {
  it('aligns a table under upper-case headers, three spaces apart, without trailing spaces', () => {
    const text = table(
      [
        { id: 1, status: 'failed', error: 'boom' },
        { id: 1234, status: 'done', error: '-' },
      ],
      [
        { header: 'id', value: (r) => String(r.id) },
        { header: 'status', value: (r) => r.status },
        { header: 'last error', value: (r) => r.error },
      ],
    );
    expect(text.split('\n')).to.deep.equal(['ID     STATUS   LAST ERROR', '1      failed   boom', '1234   done     -']);
  });

  it('keeps a multi-line cell on one line', () => {
    expect(table([{ e: 'a\n  b' }], [{ header: 'e', value: (r) => r.e }]).split('\n')).to.deep.equal(['E', 'a b']);
  });

  it('shows ages as kubectl does', () => {
    const now = new Date('2026-01-10T12:00:00Z');
    expect(age(new Date('2026-01-10T11:59:18Z'), now)).to.equal('42s');
    expect(age(new Date('2026-01-10T11:55:00Z'), now)).to.equal('5m');
    expect(age(new Date('2026-01-10T09:00:00Z'), now)).to.equal('3h');
    expect(age(new Date('2025-12-29T12:00:00Z'), now)).to.equal('12d');
    expect(age(undefined, now)).to.equal('');
  });

  it('cuts long text with an ellipsis', () => {
    expect(truncate('abcdef', 4)).to.equal('abc…');
    expect(truncate('abc', 4)).to.equal('abc');
  });

  it('counts in the singular for exactly one', () => {
    expect([0, 1, 2].map((n) => plural(n, 'task'))).to.deep.equal(['0 tasks', '1 task', '2 tasks']);
    expect(plural(1, 'invocation waits', 'invocations wait')).to.equal('1 invocation waits');
  });
});
