import { expect } from 'chai';
import { parseWorkerEvent, WorkerEventError, workerEventPayload } from '../../packages/worker/src/event.ts';

describe('worker events', () => {
  const ids = [1, 42, 1_000_000_007, Number.MAX_SAFE_INTEGER];
  for (const id of ids) {
    it(`reads back invocation ${id} from the payload the controller sends`, () => {
      const payload = workerEventPayload(id);
      expect(payload).to.equal(JSON.stringify({ invocationId: String(id) }));
      expect(parseWorkerEvent(JSON.parse(payload))).to.deep.equal({ invocationId: id });
    });
  }

  it('sends the id as a string, so no JSON reader can round it', () => {
    expect(JSON.parse(workerEventPayload(Number.MAX_SAFE_INTEGER))).to.deep.equal({ invocationId: '9007199254740991' });
  });

  it('accepts a numeric id from a hand-written event', () => {
    expect(parseWorkerEvent({ invocationId: 42 })).to.deep.equal({ invocationId: 42 });
  });

  it('ignores fields other than the id, so a forged queue name cannot redirect work', () => {
    expect(parseWorkerEvent({ invocationId: '7', queue: 'payroll', tasks: 100 })).to.deep.equal({ invocationId: 7 });
  });

  const malformed: Array<{ name: string; event: unknown }> = [
    { name: 'null', event: null },
    { name: 'undefined', event: undefined },
    { name: 'a string', event: '42' },
    { name: 'a number', event: 42 },
    { name: 'an array', event: ['42'] },
    { name: 'an empty object', event: {} },
    { name: 'an id under another name', event: { invocation_id: '42' } },
    { name: 'an empty id', event: { invocationId: '' } },
    { name: 'an id with letters', event: { invocationId: '42abc' } },
    { name: 'a hexadecimal id', event: { invocationId: '0x2a' } },
    { name: 'an id with spaces', event: { invocationId: ' 42' } },
    { name: 'an id with a leading zero', event: { invocationId: '042' } },
    { name: 'a negative id', event: { invocationId: '-1' } },
    { name: 'a negative numeric id', event: { invocationId: -1 } },
    { name: 'a zero id', event: { invocationId: '0' } },
    { name: 'a zero numeric id', event: { invocationId: 0 } },
    { name: 'a fractional numeric id', event: { invocationId: 1.5 } },
    { name: 'an id in exponent form', event: { invocationId: '1e3' } },
    { name: 'a NaN id', event: { invocationId: Number.NaN } },
    { name: 'an infinite id', event: { invocationId: Number.POSITIVE_INFINITY } },
    { name: 'an id of 17 digits', event: { invocationId: '12345678901234567' } },
    { name: 'an id of a thousand digits', event: { invocationId: '9'.repeat(1000) } },
    { name: 'a 16-digit id beyond the safe integers', event: { invocationId: '9007199254740993' } },
    { name: 'a numeric id beyond the safe integers', event: { invocationId: Number.MAX_SAFE_INTEGER + 1 } },
    { name: 'a numeric id far beyond the safe integers', event: { invocationId: 1e21 } },
    { name: 'a boolean id', event: { invocationId: true } },
    { name: 'an object id', event: { invocationId: { id: '42' } } },
    { name: 'a bigint id', event: { invocationId: 42n } },
  ];

  for (const c of malformed) {
    it(`rejects ${c.name} as a malformed worker event`, () => {
      expect(() => parseWorkerEvent(c.event)).to.throw(WorkerEventError, 'malformed worker event');
    });
  }
});
