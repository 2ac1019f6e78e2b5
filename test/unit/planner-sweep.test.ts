import { expect } from 'chai';
import { liveRows } from './planner-rows.ts';
import { planSweep, type SweepDecision, type SweepInput } from '../../src/planner/sweep.ts';

const NOW = 1_000_000;
const START = 10_000; // startTimeoutMs
const HB = 5_000; // heartbeatTimeoutMs

const row = liveRows(NOW, NOW + 20_000, HB);

function sweepInput(over: Partial<SweepInput>): SweepInput {
  return {
    now: NOW,
    invocations: [],
    startTimeoutMs: START,
    connectedForMs: Number.POSITIVE_INFINITY,
    maxConcurrency: 10,
    mode: 'active',
    ...over,
  };
}

interface SweepSummary {
  orphanUnstarted: number[];
  orphanSilent: number[];
  terminate: number[];
  reinvoke: number[];
  remaining: number[];
  nextDeadline: number | undefined;
}

const sorted = (ids: readonly number[]): number[] => [...ids].sort((a, b) => a - b);

function summarize(d: SweepDecision): SweepSummary {
  return {
    orphanUnstarted: sorted(d.orphanUnstarted),
    orphanSilent: sorted(d.orphanSilent),
    terminate: sorted(d.terminate),
    reinvoke: sorted(d.reinvoke),
    remaining: sorted(d.remaining.map((i) => i.id)),
    nextDeadline: d.nextDeadline,
  };
}

const nothing: SweepSummary = {
  orphanUnstarted: [],
  orphanSilent: [],
  terminate: [],
  reinvoke: [],
  remaining: [],
  nextDeadline: undefined,
};

interface SweepCase {
  name: string;
  input: Partial<SweepInput>;
  expected: Partial<SweepSummary>;
}

describe('planSweep', () => {
  const cases: SweepCase[] = [
    {
      name: 'reports nothing and no deadline for a pool without live invocations',
      input: {},
      expected: {},
    },

    // Start deadline: createdAt + startTimeoutMs, for created and pending rows.
    {
      name: 'keeps a created invocation one millisecond before its start deadline',
      input: { invocations: [row(1, 'created', { createdAt: NOW - START + 1 })] },
      expected: { remaining: [1], nextDeadline: NOW + 1 },
    },
    {
      name: 'orphans a created invocation exactly at its start deadline',
      input: { invocations: [row(1, 'created', { createdAt: NOW - START })] },
      expected: { orphanUnstarted: [1] },
    },
    {
      name: 'orphans a created invocation after its start deadline',
      input: { invocations: [row(1, 'created', { createdAt: NOW - START - 1 })] },
      expected: { orphanUnstarted: [1] },
    },
    {
      name: 'keeps a pending invocation one millisecond before its start deadline',
      input: { invocations: [row(1, 'pending', { createdAt: NOW - START + 1 })] },
      expected: { remaining: [1], nextDeadline: NOW + 1 },
    },
    {
      name: 'orphans a pending invocation exactly at its start deadline',
      input: { invocations: [row(1, 'pending', { createdAt: NOW - START })] },
      expected: { orphanUnstarted: [1] },
    },
    {
      name: 'orphans a pending invocation after its start deadline',
      input: { invocations: [row(1, 'pending', { createdAt: NOW - START - 1 })] },
      expected: { orphanUnstarted: [1] },
    },
    {
      name: 'does not hold a started invocation to the start deadline',
      input: { invocations: [row(1, 'running', { createdAt: NOW - 10 * START, heartbeatAt: NOW })] },
      expected: { remaining: [1], nextDeadline: NOW + HB },
    },

    // Heartbeat deadline: (heartbeatAt ?? createdAt) + heartbeatTimeoutMs, for ready and running rows.
    {
      name: 'keeps a running invocation one millisecond before its heartbeat deadline',
      input: { invocations: [row(1, 'running', { heartbeatAt: NOW - HB + 1 })] },
      expected: { remaining: [1], nextDeadline: NOW + 1 },
    },
    {
      name: 'orphans a running invocation exactly at its heartbeat deadline',
      input: { invocations: [row(1, 'running', { heartbeatAt: NOW - HB })] },
      expected: { orphanSilent: [1] },
    },
    {
      name: 'orphans a ready invocation whose last heartbeat is older than the timeout',
      input: { invocations: [row(1, 'ready', { heartbeatAt: NOW - HB - 1 })] },
      expected: { orphanSilent: [1] },
    },
    {
      name: 'measures a ready invocation that never sent a heartbeat from its createdAt',
      input: { invocations: [row(1, 'ready', { createdAt: NOW - HB, heartbeatAt: null })] },
      expected: { orphanSilent: [1] },
    },
    {
      name: 'keeps a ready invocation without heartbeat while its createdAt is inside the timeout',
      input: { invocations: [row(1, 'ready', { createdAt: NOW - HB + 10, heartbeatAt: null })] },
      expected: { remaining: [1], nextDeadline: NOW + 10 },
    },
    {
      name: 'prefers a recent heartbeat over an old createdAt',
      input: { invocations: [row(1, 'running', { createdAt: NOW - 100_000, heartbeatAt: NOW - 10 })] },
      expected: { remaining: [1], nextDeadline: NOW - 10 + HB },
    },

    // The controller's own connectivity: a heartbeat that could not have been written is not lost.
    {
      name: 'keeps a silent running invocation while the controller has reached the database for less than its heartbeat timeout',
      input: { connectedForMs: HB - 1, invocations: [row(1, 'running', { heartbeatAt: NOW - 10 * HB })] },
      expected: { remaining: [1], nextDeadline: NOW + 1 },
    },
    {
      name: 'orphans a silent running invocation once the controller has reached the database for a whole heartbeat timeout',
      input: { connectedForMs: HB, invocations: [row(1, 'running', { heartbeatAt: NOW - 10 * HB })] },
      expected: { orphanSilent: [1] },
    },
    {
      name: 'waits a whole heartbeat timeout after the controller reconnects, however long the worker has been silent',
      input: { connectedForMs: 0, invocations: [row(1, 'ready', { heartbeatAt: NOW - HB })] },
      expected: { remaining: [1], nextDeadline: NOW + HB },
    },
    {
      name: 'judges each row by the heartbeat timeout it was dispatched with, not the current one',
      input: {
        invocations: [
          { ...row(1, 'running', { heartbeatAt: NOW - 3_000 }), heartbeatTimeoutMs: 2_000 },
          { ...row(2, 'running', { heartbeatAt: NOW - 3_000 }), heartbeatTimeoutMs: 9_000 },
        ],
      },
      expected: { orphanSilent: [1], remaining: [2], nextDeadline: NOW + 6_000 },
    },
    {
      name: 'still orphans a queued invocation at its start deadline while the controller has just reconnected',
      input: { connectedForMs: 0, invocations: [row(1, 'pending', { createdAt: NOW - START })] },
      expected: { orphanUnstarted: [1] },
    },

    // Suspended: queued rows end as terminated, started ones finish.
    {
      name: 'terminates queued invocations but lets started ones finish when suspended',
      input: {
        mode: 'suspended',
        invocations: [
          row(1, 'created', { invokeAfter: NOW - 1 }),
          row(2, 'pending'),
          row(3, 'ready', { heartbeatAt: NOW - 1_000 }),
          row(4, 'running', { heartbeatAt: NOW - 2_000 }),
        ],
      },
      expected: { terminate: [1, 2], remaining: [3, 4], nextDeadline: NOW - 2_000 + HB },
    },
    {
      name: 'still orphans a silent running invocation and an expired queued one when suspended',
      input: {
        mode: 'suspended',
        invocations: [row(1, 'running', { heartbeatAt: NOW - HB }), row(2, 'pending', { createdAt: NOW - START })],
      },
      expected: { orphanSilent: [1], orphanUnstarted: [2] },
    },
    {
      name: 'ignores maxConcurrency when suspended because every queued invocation is already terminated',
      input: { mode: 'suspended', maxConcurrency: 1, invocations: [row(1, 'running'), row(2, 'ready')] },
      expected: { remaining: [1, 2], nextDeadline: NOW + HB },
    },

    // Deleting: every live row ends as terminated, whatever its deadlines.
    {
      name: 'terminates every live invocation when deleting, even ones past their deadlines',
      input: {
        mode: 'deleting',
        invocations: [
          row(1, 'created', { createdAt: NOW - START, invokeAfter: NOW - 1 }),
          row(2, 'pending'),
          row(3, 'ready', { heartbeatAt: NOW - HB }),
          row(4, 'running'),
        ],
      },
      expected: { terminate: [1, 2, 3, 4] },
    },

    // Scale-down: the newest queued rows beyond maxConcurrency end as terminated.
    {
      name: 'terminates the newest queued invocations beyond maxConcurrency',
      input: {
        maxConcurrency: 2,
        invocations: [row(1, 'created'), row(4, 'created'), row(2, 'pending'), row(3, 'pending')],
      },
      expected: { terminate: [3, 4], remaining: [1, 2], nextDeadline: NOW - 1_000 + START },
    },
    {
      name: 'never terminates a started invocation when scaling down, even if the pool stays over maxConcurrency',
      input: {
        maxConcurrency: 1,
        invocations: [row(1, 'running'), row(2, 'ready'), row(3, 'created')],
      },
      expected: { terminate: [3], remaining: [1, 2], nextDeadline: NOW + HB },
    },
    {
      name: 'terminates nothing when the live count equals maxConcurrency',
      input: { maxConcurrency: 2, invocations: [row(1, 'running'), row(2, 'created')] },
      expected: { remaining: [1, 2], nextDeadline: NOW + HB },
    },
    {
      name: 'counts orphaned invocations out before deciding whether the pool is over maxConcurrency',
      input: {
        maxConcurrency: 2,
        invocations: [row(1, 'running', { heartbeatAt: NOW - HB }), row(2, 'created'), row(3, 'pending')],
      },
      expected: { orphanSilent: [1], remaining: [2, 3], nextDeadline: NOW - 1_000 + START },
    },
    {
      name: 'terminates every queued invocation when maxConcurrency is zero',
      input: { maxConcurrency: 0, invocations: [row(1, 'created'), row(2, 'running')] },
      expected: { terminate: [1], remaining: [2], nextDeadline: NOW + HB },
    },
    {
      name: 'takes no deadline from an invocation the scale-down terminated',
      input: {
        maxConcurrency: 1,
        invocations: [row(1, 'running', { heartbeatAt: NOW }), row(2, 'created', { createdAt: NOW - START + 1_000 })],
      },
      expected: { terminate: [2], remaining: [1], nextDeadline: NOW + HB },
    },

    // Reinvoke: created rows whose invokeAfter has come, and that survive the sweep.
    {
      name: 'invokes again a created invocation whose invokeAfter is now',
      input: { invocations: [row(1, 'created', { invokeAfter: NOW })] },
      expected: { reinvoke: [1], remaining: [1], nextDeadline: NOW - 1_000 + START },
    },
    {
      name: 'invokes again a created invocation whose invokeAfter has passed',
      input: { invocations: [row(1, 'created', { invokeAfter: NOW - 1 })] },
      expected: { reinvoke: [1], remaining: [1], nextDeadline: NOW - 1_000 + START },
    },
    {
      name: 'waits for a created invocation whose invokeAfter is still ahead and takes it as the next deadline',
      input: { invocations: [row(1, 'created', { invokeAfter: NOW + 1 })] },
      expected: { remaining: [1], nextDeadline: NOW + 1 },
    },
    {
      name: 'never invokes a pending invocation again, whatever its invokeAfter',
      input: { invocations: [row(1, 'pending', { invokeAfter: NOW - 1 })] },
      expected: { remaining: [1], nextDeadline: NOW - 1_000 + START },
    },
    {
      name: 'does not invoke again a created invocation it orphans',
      input: { invocations: [row(1, 'created', { createdAt: NOW - START, invokeAfter: NOW - 1 })] },
      expected: { orphanUnstarted: [1] },
    },
    {
      name: 'does not invoke again a created invocation the scale-down terminates',
      input: { maxConcurrency: 1, invocations: [row(1, 'running'), row(2, 'created', { invokeAfter: NOW - 1 })] },
      expected: { terminate: [2], remaining: [1], nextDeadline: NOW + HB },
    },
    {
      name: 'does not invoke again a created invocation of a suspended pool',
      input: { mode: 'suspended', invocations: [row(1, 'created', { invokeAfter: NOW - 1 })] },
      expected: { terminate: [1] },
    },

    // nextDeadline: the earliest deadline of a remaining row.
    {
      name: 'takes the next deadline from the earliest start deadline',
      input: {
        invocations: [
          row(1, 'pending', { createdAt: NOW - START + 2_000 }),
          row(2, 'running', { heartbeatAt: NOW - HB + 3_000 }),
          row(3, 'created', { invokeAfter: NOW + 4_000 }),
        ],
      },
      expected: { remaining: [1, 2, 3], nextDeadline: NOW + 2_000 },
    },
    {
      name: 'takes the next deadline from the earliest heartbeat deadline',
      input: {
        invocations: [
          row(1, 'pending', { createdAt: NOW - START + 4_000 }),
          row(2, 'running', { heartbeatAt: NOW - HB + 2_000 }),
          row(3, 'created', { invokeAfter: NOW + 3_000 }),
        ],
      },
      expected: { remaining: [1, 2, 3], nextDeadline: NOW + 2_000 },
    },
    {
      name: 'takes the next deadline from the earliest future invokeAfter',
      input: {
        invocations: [
          row(1, 'pending', { createdAt: NOW - START + 4_000 }),
          row(2, 'running', { heartbeatAt: NOW - HB + 3_000 }),
          row(3, 'created', { invokeAfter: NOW + 2_000 }),
        ],
      },
      expected: { remaining: [1, 2, 3], nextDeadline: NOW + 2_000 },
    },
  ];

  for (const { name, input, expected } of cases) {
    it(name, () => {
      expect(summarize(planSweep(sweepInput(input)))).to.deep.equal({ ...nothing, ...expected });
    });
  }

  it('returns the remaining rows themselves, unchanged', () => {
    const rows = [row(1, 'running'), row(2, 'created', { invokeAfter: NOW - 1 })];
    const { remaining } = planSweep(sweepInput({ invocations: rows }));
    expect(remaining).to.have.length(2);
    expect(remaining[0]).to.equal(rows[0]);
    expect(remaining[1]).to.equal(rows[1]);
  });
});
