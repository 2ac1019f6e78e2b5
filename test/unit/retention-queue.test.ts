import { expect } from 'chai';
import { queueRetention, type ServedPool } from '../../src/controller/retention-sweep.ts';

const DAY = 86_400;

describe('queueRetention: only the pool holding a queue, and allowed it, sets how long its tasks are kept', () => {
  const served: ServedPool[] = [
    { uid: 'owner', queue: 'thumbs', retentionSeconds: 0, queueAllowed: true },
    { uid: 'intruder', queue: 'thumbs', retentionSeconds: 60, queueAllowed: false },
    { uid: 'plain', queue: 'reports', queueAllowed: true },
    { uid: 'refused-holder', queue: 'exports', retentionSeconds: 60, queueAllowed: false },
  ];
  const holders = new Map([
    ['thumbs', 'owner'],
    ['reports', 'plain'],
    ['exports', 'refused-holder'],
    ['stale', 'a-pool-deleted-without-its-finalizer'],
  ]);
  const rows: Array<[queue: string, expected: number, why: string]> = [
    ['thumbs', 0, "the holder's own retention (0: for ever), not the intruder's minute"],
    ['reports', 7 * DAY, 'the holder names none: the default'],
    ['nobody', 7 * DAY, 'no pool holds it: the default'],
    ['stale', 7 * DAY, 'its holder is gone (or another controller serves it): the default, never for ever'],
    ['exports', 7 * DAY, 'its holder is now refused the queue by the tenancy policy: the default'],
  ];
  for (const [queue, expected, why] of rows) {
    it(`${queue}: ${why}`, () => {
      expect(queueRetention([queue], served, holders, 7 * DAY)).to.deep.equal([{ key: queue, maxAgeSeconds: expected }]);
    });
  }
});
