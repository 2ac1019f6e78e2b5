import { expect } from 'chai';
import { poolRetention, queueRetention, type ServedPool } from '../../src/controller/retention-sweep.ts';
import type { QueueHolder } from '../../src/store/retention.ts';

const DAY = 86_400;

// What this controller serves, and the claims in the database (a claim's retention is undefined when it
// records none, or when it is stale: src/store/retention.ts reads only fresh ones).
const served: ServedPool[] = [
  { uid: 'owner', queue: 'thumbs', retentionSeconds: 0, queueAllowed: true },
  { uid: 'intruder', queue: 'thumbs', retentionSeconds: 60, queueAllowed: false },
  { uid: 'plain', queue: 'reports', queueAllowed: true },
  { uid: 'refused-holder', queue: 'exports', retentionSeconds: 60, queueAllowed: false },
  { uid: 'intruder-elsewhere', queue: 'billing', retentionSeconds: 60, queueAllowed: true },
];
const holders = new Map<string, QueueHolder>([
  ['thumbs', { uid: 'owner', retentionSeconds: 0 }],
  ['reports', { uid: 'plain', retentionSeconds: 7 * DAY }],
  ['exports', { uid: 'refused-holder', retentionSeconds: 60 }],
  ['stale', { uid: 'a-pool-deleted-without-its-finalizer' }],
  ['billing', { uid: 'served-by-another-release', retentionSeconds: 0 }],
  ['audit', { uid: 'served-by-another-cluster', retentionSeconds: 90 * DAY }],
  ['legacy', { uid: 'served-by-an-older-controller' }],
]);

describe('queueRetention: only the pool holding a queue, and allowed it, sets how long its tasks are kept', () => {
  const rows: Array<[queue: string, expected: number, why: string]> = [
    ['thumbs', 0, "the holder's own retention (0: for ever), not the intruder's minute"],
    ['reports', 7 * DAY, 'the holder names none: the default'],
    ['nobody', 7 * DAY, 'no pool holds it: the default'],
    ['stale', 7 * DAY, 'its holder is gone (a claim nobody refreshed): the default, never for ever'],
    ['exports', 7 * DAY, 'its holder is now refused the queue by the tenancy policy: the default'],
    ['billing', 0, 'another controller serves its holder and recorded for ever; a pool here naming it cannot shorten it'],
    ['audit', 90 * DAY, "another controller serves its holder: the 90 days it recorded, not this controller's 7"],
    ['legacy', 7 * DAY, 'a claim with no retention recorded (an older controller): the default'],
  ];
  for (const [queue, expected, why] of rows) {
    it(`${queue}: ${why}`, () => {
      expect(queueRetention([queue], served, holders, 7 * DAY)).to.deep.equal([{ key: queue, maxAgeSeconds: expected }]);
    });
  }
});

describe("poolRetention: a pool's invocations follow its own retention, wherever it is served", () => {
  const rows: Array<[pool: string, expected: number, why: string]> = [
    ['owner', 0, 'served here: its own retention'],
    ['intruder', 60, 'served here: its own retention, even refused its queue (its invocations are its own)'],
    ['plain', 7 * DAY, 'served here, names none: the default'],
    ['served-by-another-cluster', 90 * DAY, 'served by another controller: what it recorded on its claim'],
    ['served-by-another-release', 0, 'served by another controller that keeps them for ever'],
    ['a-pool-deleted-without-its-finalizer', 7 * DAY, 'its claim is stale: the default'],
    ['gone', 7 * DAY, 'no pool here and no claim: the default'],
  ];
  for (const [pool, expected, why] of rows) {
    it(`${pool}: ${why}`, () => {
      expect(poolRetention([pool], served, holders, 7 * DAY)).to.deep.equal([{ key: pool, maxAgeSeconds: expected }]);
    });
  }
});
