import { expect } from 'chai';
import fc from 'fast-check';
import type { InvocationState } from '../../src/api/types.ts';
import { planRelease, type StrandedLease } from '../../src/planner/release.ts';

const NOW = 2_000_000;
const HB = 30_000;

type Lease = StrandedLease & { note: string };

function lease(
  id: number,
  over: {
    attempts?: number;
    maxAttempts?: number | null;
    started?: boolean;
    status?: InvocationState;
    everStarted?: boolean;
    finishedAt?: number | null;
  } = {},
): Lease {
  return {
    id,
    invocationId: 7,
    attempts: over.attempts ?? 1,
    maxAttempts: over.maxAttempts ?? null,
    started: over.started ?? true,
    note: `task ${id}`,
    invocation: {
      status: over.status ?? 'orphaned',
      everStarted: over.everStarted ?? true,
      finishedAt: over.finishedAt === undefined ? NOW - 1_000 : over.finishedAt,
      heartbeatTimeoutMs: HB,
      maxTaskAttempts: 3,
      retryInitialDelayMs: 10_000,
      retryMaxDelayMs: 600_000,
    },
  };
}

interface ReleaseCase {
  name: string;
  leases: Lease[];
  expected: { toCreated: Array<[number, number]>; toFailed: number[]; held: number[]; nextAt?: number };
}

// random() = 1 gives each delay its ceiling: min(max, initial * 2^(attempts-1)).
const release = (leases: Lease[]) => planRelease(leases, { now: NOW, random: () => 1 });

describe('planRelease', () => {
  const cases: ReleaseCase[] = [
    { name: 'releases nothing when the ended invocation held no task', leases: [], expected: { toCreated: [], toFailed: [], held: [] } },
    {
      name: 'gives back at once, at no cost, a task whose handler never started',
      leases: [lease(1, { started: false, attempts: 2 })],
      expected: { toCreated: [[1, 0]], toFailed: [], held: [] },
    },
    {
      name: 'gives back a started task with attempts left after the retry delay of its attempt',
      leases: [lease(1, { attempts: 1 }), lease(2, { attempts: 2 })],
      expected: {
        toCreated: [
          [1, 10_000],
          [2, 20_000],
        ],
        toFailed: [],
        held: [],
      },
    },
    {
      name: 'caps the retry delay at the maximum',
      leases: [lease(1, { attempts: 40, maxAttempts: 100 })],
      expected: { toCreated: [[1, 600_000]], toFailed: [], held: [] },
    },
    {
      name: 'fails a started task whose attempts reach the pool maximum',
      leases: [lease(1, { attempts: 3 })],
      expected: { toCreated: [], toFailed: [1], held: [] },
    },
    {
      name: "lets a task's own maxAttempts override the pool's, either way",
      leases: [lease(1, { attempts: 3, maxAttempts: 5 }), lease(2, { attempts: 1, maxAttempts: 1 })],
      expected: { toCreated: [[1, 40_000]], toFailed: [2], held: [] },
    },
    {
      name: 'never fails a task whose handler never started, even with its attempts used up',
      leases: [lease(1, { started: false, attempts: 3 })],
      expected: { toCreated: [[1, 0]], toFailed: [], held: [] },
    },
    {
      name: 'holds the tasks of a terminated invocation that had started until a heartbeat timeout after it ended',
      leases: [
        lease(1, { status: 'terminated', finishedAt: NOW - HB + 1 }),
        lease(2, { status: 'terminated', finishedAt: NOW - HB + 5, started: false }),
      ],
      expected: { toCreated: [], toFailed: [], held: [1, 2], nextAt: NOW + 1 },
    },
    {
      name: 'gives back the tasks of a terminated invocation once a heartbeat timeout has passed since it ended',
      leases: [lease(1, { status: 'terminated', finishedAt: NOW - HB })],
      expected: { toCreated: [[1, 10_000]], toFailed: [], held: [] },
    },
    {
      name: 'gives back at once the tasks of a terminated invocation that never started',
      leases: [lease(1, { status: 'terminated', everStarted: false, started: false })],
      expected: { toCreated: [[1, 0]], toFailed: [], held: [] },
    },
    {
      name: 'does not hold the tasks of an orphaned, succeeded or failed invocation',
      leases: [
        lease(1, { status: 'orphaned', finishedAt: NOW }),
        lease(2, { status: 'succeeded', finishedAt: NOW }),
        lease(3, { status: 'failed', finishedAt: NOW }),
      ],
      expected: {
        toCreated: [
          [1, 10_000],
          [2, 10_000],
          [3, 10_000],
        ],
        toFailed: [],
        held: [],
      },
    },
  ];

  for (const { name, leases, expected } of cases) {
    it(name, () => {
      const d = release(leases);
      expect({
        toCreated: d.toCreated.map((t) => [t.id, t.delayMs]),
        toFailed: d.toFailed.map((t) => t.id),
        held: d.held.map((t) => t.id),
        ...(d.nextAt !== undefined ? { nextAt: d.nextAt } : {}),
      }).to.deep.equal(expected);
    });
  }

  it('hands back the caller’s lease objects with their extra fields', () => {
    const d = release([lease(1, { started: false }), lease(2, { attempts: 3 })]);
    expect(d.toCreated[0]?.note).to.equal('task 1');
    expect(d.toFailed[0]?.note).to.equal('task 2');
  });

  it('spreads the delays of tasks failing together between half and all of the ceiling', () => {
    const draws = [0, 0.5, 1];
    let i = 0;
    const d = planRelease([lease(1), lease(2), lease(3)], { now: NOW, random: () => draws[i++] ?? 0 });
    expect(d.toCreated.map((t) => t.delayMs)).to.deep.equal([5_000, 7_500, 10_000]);
  });

  it('puts every lease in exactly one list, and never fails one that has attempts left or never started', () => {
    const leaseArb = fc.record({
      id: fc.integer({ min: 1, max: 10_000 }),
      attempts: fc.nat(8),
      maxAttempts: fc.option(fc.integer({ min: 1, max: 8 }), { nil: null }),
      started: fc.boolean(),
      status: fc.constantFrom<InvocationState>('succeeded', 'failed', 'orphaned', 'terminated'),
      everStarted: fc.boolean(),
      endedAgo: fc.nat(2 * HB),
    });
    fc.assert(
      fc.property(fc.uniqueArray(leaseArb, { maxLength: 30, selector: (t) => t.id }), (raw) => {
        const leases = raw.map((r) => lease(r.id, { ...r, finishedAt: NOW - r.endedAgo }));
        const d = release(leases);
        expect(d.toCreated.length + d.toFailed.length + d.held.length).to.equal(leases.length);
        for (const t of d.toFailed) expect(t.started && t.attempts >= (t.maxAttempts ?? 3)).to.equal(true);
        for (const t of d.toCreated) expect(t.delayMs).to.be.within(0, 600_000);
        for (const t of d.held) expect(t.invocation.status === 'terminated' && t.invocation.everStarted).to.equal(true);
      }),
      { seed: 0x51ed, numRuns: 300 },
    );
  });
});
