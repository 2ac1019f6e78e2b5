import { expect } from 'chai';
import { queueRetention } from '../../src/controller/retention-sweep.ts';

const DAY = 86_400;

describe('queueRetention: only the pool holding a queue sets how long its tasks are kept', () => {
  const served = [
    { uid: 'owner', queue: 'thumbs', retentionSeconds: 0 },
    { uid: 'intruder', queue: 'thumbs', retentionSeconds: 60 },
    { uid: 'plain', queue: 'reports' },
    { uid: 'moved', queue: 'new-queue', retentionSeconds: 120 },
  ];
  const holders = new Map([
    ['thumbs', 'owner'],
    ['reports', 'plain'],
    ['elsewhere', 'another-controllers-pool'],
    ['old-queue', 'moved'],
  ]);
  const rows: Array<[queue: string, expected: number | undefined, why: string]> = [
    ['thumbs', 0, "the holder's own retention (0: for ever), not the intruder's minute"],
    ['reports', 7 * DAY, 'the holder names none: the default'],
    ['nobody', 7 * DAY, 'no pool holds it: the default'],
    ['elsewhere', undefined, 'held by a pool not served here: left alone'],
    ['old-queue', undefined, 'its holder now names another queue: left alone until it lets go'],
  ];
  for (const [queue, expected, why] of rows) {
    it(`${queue}: ${why}`, () => {
      const [target] = queueRetention([queue], served, holders, 7 * DAY);
      expect(target?.maxAgeSeconds).to.equal(expected);
    });
  }
});
