import { expect } from 'chai';
import { AsyncQueue } from '../../dev/src/lambda-runtime/async-queue.ts';
import type { AsyncSettings } from '../../dev/src/lambda-runtime/config.ts';
import { DEFAULT_ASYNC_SETTINGS } from '../../dev/src/lambda-runtime/config.ts';
import {
  decideAfterFailure,
  decideThrottle,
  DUPLICATE_DELAY_MS,
  eventExpiresAt,
  planEvent,
  sampleDelay,
} from '../../dev/src/lambda-runtime/delivery-policy.ts';
import { mulberry32, randomFor } from '../../dev/src/lambda-runtime/random.ts';

function settings(overrides: Partial<AsyncSettings>): AsyncSettings {
  return { ...DEFAULT_ASYNC_SETTINGS, ...overrides };
}

describe('lambda runtime delivery policy', () => {
  describe('random streams', () => {
    it('gives the same numbers for the same seed and function name', () => {
      const a = randomFor(7, 'worker');
      const b = randomFor(7, 'worker');
      const drawsA = Array.from({ length: 20 }, () => a.next());
      const drawsB = Array.from({ length: 20 }, () => b.next());
      expect(drawsA).to.deep.equal(drawsB);
    });

    it('gives different streams to different seeds and different functions', () => {
      const first = (seed: number, name: string): number[] => {
        const random = randomFor(seed, name);
        return Array.from({ length: 5 }, () => random.next());
      };
      expect(first(7, 'worker')).to.not.deep.equal(first(8, 'worker'));
      expect(first(7, 'worker')).to.not.deep.equal(first(7, 'mailer'));
    });

    it('draws numbers in [0, 1) that spread evenly', () => {
      const random = mulberry32(1);
      const buckets = [0, 0, 0, 0];
      for (let i = 0; i < 4000; i++) {
        const u = random.next();
        expect(u).to.be.at.least(0).and.below(1);
        const index = Math.floor(u * 4);
        buckets[index] = (buckets[index] ?? 0) + 1;
      }
      for (const count of buckets) expect(count).to.be.within(850, 1150);
    });
  });

  describe('throttling an Invoke call', () => {
    it('never throttles at rate 0 and always at rate 1, with a Reason and retryAfterSeconds', () => {
      const random = mulberry32(3);
      for (let i = 0; i < 50; i++) expect(decideThrottle(random, 0)).to.equal(undefined);
      for (let i = 0; i < 50; i++) {
        const throttle = decideThrottle(random, 1);
        expect(throttle?.reason).to.be.oneOf(['ReservedFunctionConcurrentInvocationLimitExceeded', 'CallerRateLimitExceeded']);
        expect(throttle?.retryAfterSeconds).to.equal(1);
      }
    });

    it('throttles about throttleRate of the calls', () => {
      const random = mulberry32(11);
      let hits = 0;
      for (let i = 0; i < 2000; i++) if (decideThrottle(random, 0.25)) hits++;
      expect(hits).to.be.within(400, 600);
    });

    it('draws as many numbers whatever the rate, so later decisions do not shift', () => {
      const a = mulberry32(5);
      const b = mulberry32(5);
      decideThrottle(a, 0);
      decideThrottle(b, 1);
      expect(a.next()).to.equal(b.next());
    });
  });

  describe('planning an accepted event', () => {
    it('delivers once, now, with the default settings', () => {
      const plan = planEvent(mulberry32(1), DEFAULT_ASYNC_SETTINGS);
      expect(plan).to.deep.equal({
        dropped: false,
        startDelayMs: 0,
        duplicateDelayMs: undefined,
        crashAfterMs: [undefined, undefined, undefined, undefined],
      });
    });

    it('drops every event at dropRate 1 and duplicates every event at duplicateRate 1', () => {
      const random = mulberry32(2);
      for (let i = 0; i < 20; i++) {
        const plan = planEvent(random, settings({ dropRate: 1, duplicateRate: 1 }));
        expect(plan.dropped).to.equal(true);
        expect(plan.duplicateDelayMs).to.be.within(DUPLICATE_DELAY_MS.min, DUPLICATE_DELAY_MS.max);
      }
    });

    it('crashes every delivery at crashRate 1, within crashAfterMs', () => {
      const plan = planEvent(mulberry32(4), settings({ crashRate: 1, crashAfterMs: { min: 100, max: 200 } }));
      expect(plan.crashAfterMs).to.have.length(4);
      for (const after of plan.crashAfterMs) expect(after).to.be.within(100, 200);
    });

    it('picks start delays within the range', () => {
      const random = mulberry32(9);
      const delays = Array.from({ length: 200 }, () => planEvent(random, settings({ startDelayMs: { min: 10, max: 20 } })).startDelayMs);
      expect(Math.min(...delays)).to.equal(10);
      expect(Math.max(...delays)).to.equal(20);
      expect(sampleDelay(0.99, 5)).to.equal(5);
    });

    it('plans the same fates for the same seed', () => {
      const faulty = settings({ dropRate: 0.3, duplicateRate: 0.4, crashRate: 0.2, startDelayMs: { min: 0, max: 100 } });
      const a = randomFor(42, 'worker');
      const b = randomFor(42, 'worker');
      const plansA = Array.from({ length: 50 }, () => planEvent(a, faulty));
      const plansB = Array.from({ length: 50 }, () => planEvent(b, faulty));
      expect(plansA).to.deep.equal(plansB);
      expect(plansA.filter((plan) => plan.dropped).length).to.be.within(5, 25);
    });
  });

  describe('after a failed delivery', () => {
    const retrySettings = { maximumRetryAttempts: 2 as const, retryDelaysMs: [60_000, 120_000] as [number, number] };
    const acceptedAt = 1_000_000;
    const sixHours = eventExpiresAt(acceptedAt, 21_600);
    const cases: Array<{ name: string; input: Parameters<typeof decideAfterFailure>[0]; expected: ReturnType<typeof decideAfterFailure> }> =
      [
        {
          name: 'retries the first failure after the first delay',
          input: { attempt: 1, settings: retrySettings, expiresAt: sixHours, now: acceptedAt + 500 },
          expected: { kind: 'retry', attempt: 2, dueAt: acceptedAt + 500 + 60_000 },
        },
        {
          name: 'retries the second failure after the second delay',
          input: { attempt: 2, settings: retrySettings, expiresAt: sixHours, now: acceptedAt + 70_000 },
          expected: { kind: 'retry', attempt: 3, dueAt: acceptedAt + 70_000 + 120_000 },
        },
        {
          name: 'gives up after the last retry',
          input: { attempt: 3, settings: retrySettings, expiresAt: sixHours, now: acceptedAt + 200_000 },
          expected: { kind: 'exhausted' },
        },
        {
          name: 'never retries when maximumRetryAttempts is 0',
          input: { attempt: 1, settings: { ...retrySettings, maximumRetryAttempts: 0 }, expiresAt: sixHours, now: acceptedAt },
          expected: { kind: 'exhausted' },
        },
        {
          name: 'stops after one retry when maximumRetryAttempts is 1',
          input: { attempt: 2, settings: { ...retrySettings, maximumRetryAttempts: 1 }, expiresAt: sixHours, now: acceptedAt },
          expected: { kind: 'exhausted' },
        },
        {
          name: 'drops the event when the retry would be due after its maximum age',
          input: { attempt: 1, settings: retrySettings, expiresAt: eventExpiresAt(acceptedAt, 60), now: acceptedAt + 1_000 },
          expected: { kind: 'expired' },
        },
      ];
    for (const { name, input, expected } of cases) {
      it(name, () => {
        expect(decideAfterFailure(input)).to.deep.equal(expected);
      });
    }
  });

  describe('the queue of pending deliveries', () => {
    it('hands out due deliveries in due order, first in first out among equals', () => {
      const queue = new AsyncQueue();
      queue.push({ requestId: 'late', attempt: 1, duplicate: false, dueAt: 300, expiresAt: 10_000 });
      queue.push({ requestId: 'a', attempt: 1, duplicate: false, dueAt: 100, expiresAt: 10_000 });
      queue.push({ requestId: 'b', attempt: 1, duplicate: false, dueAt: 100, expiresAt: 10_000 });
      expect(queue.takeDue(50)).to.equal(undefined);
      expect(queue.countDue(150)).to.equal(2);
      expect(queue.takeDue(150)?.requestId).to.equal('a');
      expect(queue.takeDue(150)?.requestId).to.equal('b');
      expect(queue.takeDue(150)).to.equal(undefined);
      expect(queue.takeDue(300)?.requestId).to.equal('late');
      expect(queue.size).to.equal(0);
    });

    it('gives up expired deliveries, and wakes at the next due time or expiry', () => {
      const queue = new AsyncQueue();
      queue.push({ requestId: 'waiting', attempt: 1, duplicate: false, dueAt: 0, expiresAt: 500 });
      queue.push({ requestId: 'retry', attempt: 2, duplicate: false, dueAt: 800, expiresAt: 5_000 });
      expect(queue.nextWakeAt(100)).to.equal(501);
      expect(queue.countRetriesWaiting(100)).to.equal(1);
      expect(queue.takeExpired(400)).to.deep.equal([]);
      expect(queue.takeExpired(501).map((item) => item.requestId)).to.deep.equal(['waiting']);
      expect(queue.nextWakeAt(600)).to.equal(800);
      expect(queue.drain().map((item) => item.requestId)).to.deep.equal(['retry']);
      expect(queue.nextWakeAt(600)).to.equal(undefined);
    });
  });
});
