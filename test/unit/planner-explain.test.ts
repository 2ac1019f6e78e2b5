import { expect } from 'chai';
import { explainPass, type PassFacts } from '../../src/planner/explain.ts';
import { planPool, type PoolPlanInput } from '../../src/planner/pool-plan.ts';
import { timedOutRows } from '../../src/planner/timed-out.ts';

const base: PoolPlanInput = {
  now: 1_000_000,
  mode: 'active',
  backlog: 111,
  invocations: [],
  maxConcurrency: 40,
  tasksPerInvocation: 3,
  startTimeoutMs: 900_000,
  connectedForMs: Number.POSITIVE_INFINITY,
};

function facts(input: PoolPlanInput, over: Partial<PassFacts> = {}): PassFacts {
  return {
    plan: planPool(input),
    backlog: input.backlog,
    backlogCapped: false,
    maxConcurrency: input.maxConcurrency,
    tasksPerInvocation: input.tasksPerInvocation,
    startTimeoutSeconds: 900,
    heartbeatTimeoutSeconds: 120,
    orphanedUnstarted: 0,
    orphanedSilent: 0,
    terminated: 0,
    mode: input.mode,
    releasedTasks: 0,
    failedTasks: 0,
    ...over,
  };
}

describe('explainPass (the why of a decision)', () => {
  it('says why 37 were started: the backlog, the tasks per invocation and the room under the cap', () => {
    const text = explainPass(facts(base));
    expect(text).to.equal(
      'dispatched 37: backlog of 111 tasks; 37 more wanted at 3 tasks each; 40 of maxConcurrency 40 free (0 running, 0 starting, 0 queued)',
    );
  });

  it('says when the cap held the dispatch back', () => {
    const running = Array.from({ length: 30 }, (_, i) => ({
      id: i + 1,
      status: 'running' as const,
      createdAt: 999_000,
      invokeAfter: 999_000,
      heartbeatAt: 999_900,
      heartbeatTimeoutMs: 120_000,
    }));
    const text = explainPass(facts({ ...base, invocations: running }));
    expect(text).to.include('dispatched 10 (capped by maxConcurrency)').and.include('10 of maxConcurrency 40 free (30 running');
  });

  it('says a suspended pool dispatched nothing, and what it terminated', () => {
    const text = explainPass(facts({ ...base, mode: 'suspended' }, { terminated: 2 }));
    expect(text).to.include('terminated 2 queued invocations (the pool is suspended)').and.include('dispatched 0: the pool is suspended');
  });

  it('says what it orphaned and gave back, in singular when it is one', () => {
    const text = explainPass(facts({ ...base, backlog: 0 }, { orphanedUnstarted: 1, releasedTasks: 1 }));
    expect(text).to.equal('orphaned 1 that did not start within 900s; gave back 1 task their ended invocations held');
  });
});

describe('timedOutRows (a heartbeat lost at the function timeout)', () => {
  const at = (s: number) => new Date(1_000_000 + s * 1000);
  const row = (id: number, ranSeconds: number, heartbeatTimeoutSeconds = 20) => ({
    id,
    readyAt: at(0),
    heartbeatAt: at(ranSeconds),
    heartbeatTimeoutSeconds,
  });

  it('calls a row that went silent at about the timeout timed out, and an early silence not', () => {
    const result = timedOutRows([row(1, 58), row(2, 12), row(3, 61)], 60);
    expect([...result.ids]).to.deep.equal([1, 3]);
    expect(result.ranSeconds).to.equal(61);
  });

  it('says nothing when heartbeats are too sparse to tell, or the timeout is unknown', () => {
    expect([...timedOutRows([row(1, 3, 120)], 3).ids]).to.deep.equal([]);
    expect([...timedOutRows([row(1, 58)], undefined).ids]).to.deep.equal([]);
  });
});
