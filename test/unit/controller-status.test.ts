import { expect } from 'chai';
import type { Condition, InvocationState, PoolSpec, PoolStatus, StateCounts, TaskState } from '../../src/api/types.ts';
import { blockedStatus, buildStatus, desiredConditions, sameStatus, type PoolFacts } from '../../src/controller/status.ts';
import type { RecentTrouble } from '../../src/store/invocation-store.ts';

const NOW = new Date('2024-05-01T12:00:00.250Z');
const NOW_TEXT = '2024-05-01T12:00:00Z';
const LATER = new Date('2024-05-01T12:05:00Z');
const EARLIER_TEXT = '2024-05-01T09:00:00Z';

const spec: PoolSpec = {
  function: { name: 'make-thumbnails' },
  queue: 'thumbnails',
  maxConcurrency: 10,
  tasksPerInvocation: 1,
  startTimeoutSeconds: 900,
  heartbeatTimeoutSeconds: 120,
  maxTaskAttempts: 3,
  retry: { initialDelaySeconds: 10, maxDelaySeconds: 600 },
  suspend: false,
};

const noInvocations: StateCounts<InvocationState> = {
  created: 0,
  pending: 0,
  ready: 0,
  running: 0,
  succeeded: 0,
  failed: 0,
  orphaned: 0,
  terminated: 0,
};
const noTasks: StateCounts<TaskState> = { created: 0, leased: 0, done: 0, failed: 0, cancelled: 0 };

/** An idle, healthy pool; `over` changes what the pass saw. */
function facts(
  over: {
    invocations?: Partial<StateCounts<InvocationState>>;
    tasks?: Partial<StateCounts<TaskState>>;
    trouble?: Partial<RecentTrouble>;
    spec?: Partial<PoolSpec>;
    now?: Date;
    generation?: number;
    dispatchedAt?: Date;
  } = {},
): PoolFacts {
  return {
    now: over.now ?? NOW,
    generation: over.generation ?? 3,
    spec: { ...spec, ...over.spec },
    database: 'db.internal:5432/media',
    invocations: { ...noInvocations, ...over.invocations },
    tasks: { ...noTasks, ...over.tasks },
    trouble: { orphaned: 0, wasted: 0, ...over.trouble },
    troubleWindowSeconds: 600,
    ...(over.dispatchedAt ? { dispatchedAt: over.dispatchedAt } : {}),
  };
}

function condition(f: PoolFacts, type: string) {
  const found = desiredConditions(f).find((c) => c.type === type);
  if (!found) throw new Error(`no ${type} condition`);
  return found;
}

const rejection = (code: string, over: { function?: { name: string; qualifier?: string }; acceptedSince?: boolean } = {}) => ({
  rejection: { code, message: 'refused', at: NOW, function: { name: 'make-thumbnails' }, acceptedSince: false, ...over },
});
const deferred = (code: string, count = 4) => ({ deferred: { code, message: 'slow down', count } });

interface ConditionCase {
  name: string;
  facts: PoolFacts;
  expected: { status: string; reason: string; message?: string };
}

function runCases(type: string, cases: ConditionCase[]) {
  for (const c of cases) {
    it(c.name, () => {
      const got = condition(c.facts, type);
      expect({ status: got.status, reason: got.reason }).to.deep.equal({ status: c.expected.status, reason: c.expected.reason });
      if (c.expected.message) expect(got.message).to.include(c.expected.message);
    });
  }
}

describe('desiredConditions', () => {
  describe('Ready', () => {
    runCases('Ready', [
      {
        name: 'is True with Reconciled and names the queue, database and function when Lambda rejected nothing',
        facts: facts(),
        expected: {
          status: 'True',
          reason: 'Reconciled',
          message: 'serving queue thumbnails from db.internal:5432/media with make-thumbnails',
        },
      },
      {
        name: 'is False with FunctionNotFound after a ResourceNotFoundException',
        facts: facts({ trouble: rejection('ResourceNotFoundException') }),
        expected: { status: 'False', reason: 'FunctionNotFound', message: 'make-thumbnails: ResourceNotFoundException: refused' },
      },
      {
        name: 'is False with AccessDenied after an AccessDeniedException',
        facts: facts({ trouble: rejection('AccessDeniedException') }),
        expected: { status: 'False', reason: 'AccessDenied', message: 'AccessDeniedException' },
      },
      {
        name: 'is False with AccessDenied after expired credentials',
        facts: facts({ trouble: rejection('ExpiredTokenException') }),
        expected: { status: 'False', reason: 'AccessDenied' },
      },
      {
        name: 'is False with InvokeRejected after any other rejection',
        facts: facts({ trouble: rejection('RequestTooLargeException') }),
        expected: { status: 'False', reason: 'InvokeRejected', message: 'RequestTooLargeException' },
      },
      {
        name: 'is True again once Lambda has accepted an invoke of the pool since the rejection',
        facts: facts({ trouble: rejection('ResourceNotFoundException', { acceptedSince: true }) }),
        expected: { status: 'True', reason: 'Reconciled' },
      },
      {
        name: 'is still False after the spec names another function, until an invoke is accepted, naming the function refused',
        facts: facts({ trouble: rejection('ResourceNotFoundException', { function: { name: 'make-thumbnail' } }) }),
        expected: {
          status: 'False',
          reason: 'FunctionNotFound',
          message: 'Lambda refused to invoke make-thumbnail: ResourceNotFoundException',
        },
      },
    ]);
  });

  describe('Active', () => {
    runCases('Active', [
      {
        name: 'is False with Idle when nothing waits and nothing is in flight',
        facts: facts(),
        expected: { status: 'False', reason: 'Idle' },
      },
      {
        name: 'is False with Idle when only finished invocations and tasks remain',
        facts: facts({ invocations: { succeeded: 9, failed: 1, orphaned: 2, terminated: 1 }, tasks: { done: 40, failed: 2 } }),
        expected: { status: 'False', reason: 'Idle' },
      },
      {
        name: 'is True while an invocation is created but not yet sent',
        facts: facts({ invocations: { created: 1 } }),
        expected: { status: 'True', reason: 'WorkInFlight' },
      },
      {
        name: 'is True while an invocation is pending',
        facts: facts({ invocations: { pending: 1 } }),
        expected: { status: 'True', reason: 'WorkInFlight' },
      },
      {
        name: 'is True while an invocation is starting',
        facts: facts({ invocations: { ready: 1 } }),
        expected: { status: 'True', reason: 'WorkInFlight' },
      },
      {
        name: 'is True while an invocation runs, and says how many',
        facts: facts({ invocations: { running: 2 }, tasks: { leased: 2 } }),
        expected: { status: 'True', reason: 'WorkInFlight', message: '2 running, 0 starting, 0 queued; 0 tasks waiting, 2 leased' },
      },
      {
        name: 'is True while tasks wait before the first dispatch',
        facts: facts({ tasks: { created: 5 } }),
        expected: { status: 'True', reason: 'WorkInFlight', message: '5 tasks waiting' },
      },
      {
        name: 'is False with NotDispatching while tasks wait but the pool is suspended',
        facts: facts({ tasks: { created: 5 }, spec: { suspend: true } }),
        expected: {
          status: 'False',
          reason: 'NotDispatching',
          message: '5 tasks waiting, but nothing is dispatched: the pool is suspended',
        },
      },
      {
        name: 'is False with NotDispatching while tasks wait and Lambda refuses the function (never WorkInFlight then)',
        facts: facts({ tasks: { created: 1 }, trouble: rejection('ResourceNotFoundException') }),
        expected: {
          status: 'False',
          reason: 'NotDispatching',
          message: '1 task waiting, but nothing is dispatched: see Ready (FunctionNotFound)',
        },
      },
      {
        name: 'stays True while started invocations run, even when Lambda refuses new ones',
        facts: facts({ tasks: { created: 3 }, invocations: { running: 2 }, trouble: rejection('AccessDeniedException') }),
        expected: { status: 'True', reason: 'WorkInFlight', message: '2 running' },
      },
      {
        name: 'says "1 task waiting", not "1 tasks"',
        facts: facts({ tasks: { created: 1 } }),
        expected: { status: 'True', reason: 'WorkInFlight', message: '1 task waiting' },
      },
    ]);
  });

  describe('Degraded', () => {
    runCases('Degraded', [
      { name: 'is False with AsExpected when nothing went wrong', facts: facts(), expected: { status: 'False', reason: 'AsExpected' } },
      {
        name: 'is True with the Ready reason when Lambda refuses the function (the conditions agree)',
        facts: facts({ tasks: { created: 1 }, trouble: rejection('ResourceNotFoundException') }),
        expected: { status: 'True', reason: 'FunctionNotFound', message: 'Lambda refused to invoke make-thumbnails' },
      },
      {
        name: 'is True with FunctionNotReady when the function cannot run the work (say, reserved concurrency 0)',
        facts: {
          ...facts(),
          function: {
            status: 'False',
            reason: 'ReservedConcurrencyTooLow',
            message: 'make-thumbnails has reserved concurrency 0',
            blocking: true,
          },
        },
        expected: { status: 'True', reason: 'FunctionNotReady', message: 'reserved concurrency 0' },
      },
      {
        name: 'is False for a configuration risk that has not hurt yet (FunctionReady=False alone says it)',
        facts: { ...facts(), function: { status: 'False', reason: 'AsyncRetriesEnabled', message: 'Lambda retries failed events' } },
        expected: { status: 'False', reason: 'AsExpected' },
      },
      {
        name: 'is False when the function guard could not check (a missing permission is not a fault of the pool)',
        facts: { ...facts(), function: { status: 'Unknown', reason: 'PermissionMissing', message: 'could not check' } },
        expected: { status: 'False', reason: 'AsExpected' },
      },
      {
        name: 'is False when invocations were only wasted (succeeded without a task)',
        facts: facts({ trouble: { wasted: 12 } }),
        expected: { status: 'False', reason: 'AsExpected' },
      },
      {
        name: 'is True with Throttled while invocations wait after a TooManyRequestsException',
        facts: facts({ trouble: deferred('TooManyRequestsException') }),
        expected: { status: 'True', reason: 'Throttled', message: '4 invocations wait to be invoked again after TooManyRequestsException' },
      },
      {
        name: 'is True with InvokeErrors while invocations wait after a ServiceException',
        facts: facts({ trouble: deferred('ServiceException', 2) }),
        expected: { status: 'True', reason: 'InvokeErrors', message: '2 invocations wait to be invoked again after ServiceException' },
      },
      {
        name: 'says "1 invocation waits" for a single deferred invocation',
        facts: facts({ trouble: deferred('ServiceException', 1) }),
        expected: { status: 'True', reason: 'InvokeErrors', message: '1 invocation waits to be invoked again after ServiceException' },
      },
      {
        name: 'is True with InvocationsOrphaned when invocations were orphaned in the window',
        facts: facts({ trouble: { orphaned: 3 } }),
        expected: { status: 'True', reason: 'InvocationsOrphaned', message: '3 invocations were orphaned' },
      },
      {
        name: 'says "1 invocation was orphaned" for a single orphan',
        facts: facts({ trouble: { orphaned: 1 } }),
        expected: { status: 'True', reason: 'InvocationsOrphaned', message: '1 invocation was orphaned in the last 10 minutes' },
      },
      {
        name: 'reports the waiting invocations rather than the orphans when both happened',
        facts: facts({ trouble: { orphaned: 3, ...deferred('TooManyRequestsException') } }),
        expected: { status: 'True', reason: 'Throttled' },
      },
    ]);
  });

  describe('Suspended', () => {
    runCases('Suspended', [
      {
        name: 'is True with SuspendedBySpec when spec.suspend is true',
        facts: facts({ spec: { suspend: true } }),
        expected: { status: 'True', reason: 'SuspendedBySpec' },
      },
      {
        name: 'is False with NotSuspended when spec.suspend is false',
        facts: facts(),
        expected: { status: 'False', reason: 'NotSuspended' },
      },
    ]);
  });

  it('always gives Ready, Active, Degraded, Suspended and FunctionReady', () => {
    expect(desiredConditions(facts()).map((c) => c.type)).to.deep.equal(['Ready', 'Active', 'Degraded', 'Suspended', 'FunctionReady']);
  });

  it('gives FunctionReady the guard verdict, and Unknown NotChecked before the first read', () => {
    expect(condition(facts(), 'FunctionReady')).to.include({ status: 'Unknown', reason: 'NotChecked' });
    const f = {
      ...facts(),
      function: { status: 'True' as const, reason: 'FunctionConfigured' as const, message: 'make-thumbnails is Active' },
    };
    expect(condition(f, 'FunctionReady')).to.include({
      status: 'True',
      reason: 'FunctionConfigured',
      message: 'make-thumbnails is Active',
    });
  });
});

describe('buildStatus', () => {
  it('reports the generation, the backlog and the counts the pass saw', () => {
    const invocations = { running: 2, succeeded: 5 };
    const tasks = { created: 7, leased: 2, done: 30 };
    const status = buildStatus({}, facts({ invocations, tasks, generation: 5 }));

    expect(status.observedGeneration).to.equal(5);
    expect(status.backlog).to.equal(7);
    expect(status.invocations).to.deep.equal({ ...noInvocations, ...invocations });
    expect(status.tasks).to.deep.equal({ ...noTasks, ...tasks });
    expect(status.conditions?.every((c) => c.observedGeneration === 5 && c.lastTransitionTime === NOW_TEXT)).to.equal(true);
  });

  it('records the dispatch time of this pass, to the second', () => {
    const status = buildStatus({ lastDispatchTime: EARLIER_TEXT }, facts({ dispatchedAt: new Date('2024-05-01T11:59:59.900Z') }));
    expect(status.lastDispatchTime).to.equal('2024-05-01T11:59:59Z');
  });

  it('keeps the previous dispatch time when this pass dispatched nothing', () => {
    const status = buildStatus({ lastDispatchTime: EARLIER_TEXT }, facts());
    expect(status.lastDispatchTime).to.equal(EARLIER_TEXT);
  });

  it('has no dispatch time before the first dispatch', () => {
    expect(buildStatus({}, facts())).to.not.have.property('lastDispatchTime');
  });

  it('builds the same status on a later pass over an unchanged world, so nothing needs patching', () => {
    const first = buildStatus({}, facts({ tasks: { created: 2 }, invocations: { running: 1 } }));
    const second = buildStatus(first, facts({ tasks: { created: 2 }, invocations: { running: 1 }, now: LATER }));
    expect(sameStatus(first, second)).to.equal(true);
  });

  it('moves only the flipped condition to the new time when the pool goes idle', () => {
    const busy = buildStatus({}, facts({ invocations: { running: 1 } }));
    const idle = buildStatus(busy, facts({ now: LATER }));
    const times = Object.fromEntries((idle.conditions ?? []).map((c) => [c.type, c.lastTransitionTime]));
    expect(times).to.deep.equal({
      Ready: NOW_TEXT,
      Active: '2024-05-01T12:05:00Z',
      Degraded: NOW_TEXT,
      Suspended: NOW_TEXT,
      FunctionReady: NOW_TEXT,
    });
  });

  it('keeps the last task error and the last decision until newer ones come', () => {
    const first = buildStatus(
      {},
      {
        ...facts(),
        wasted: 2,
        lastTaskError: { taskId: 41, attempts: 3, message: 'Error: boom', time: NOW },
        decision: { id: 7, decidedAt: NOW, reason: 'dispatched 3', backlog: 9, dispatched: 3, orphaned: 0, terminated: 0 },
      },
    );
    expect(first.wastedInvocations).to.equal(2);
    expect(first.lastTaskError).to.deep.equal({ taskId: 41, attempts: 3, message: 'Error: boom', time: NOW_TEXT });
    expect(first.lastDecision).to.deep.include({ id: 7, time: NOW_TEXT, dispatched: 3, reason: 'dispatched 3' });
    const later = buildStatus(first, facts({ now: LATER }));
    expect(later.lastTaskError).to.deep.equal(first.lastTaskError);
    expect(later.lastDecision).to.deep.equal(first.lastDecision);
  });
});

describe('blockedStatus', () => {
  const counts = { ...noInvocations, running: 2 };
  const taskCounts = { ...noTasks, created: 4 };
  const previous: PoolStatus = buildStatus(
    { lastDispatchTime: EARLIER_TEXT },
    facts({ invocations: { running: 2 }, tasks: { created: 4 }, generation: 3 }),
  );

  const block = (
    over: { specVerdict?: boolean; suspend?: boolean; generation?: number; reason?: 'InvalidSpec' | 'DatabaseUnavailable' } = {},
  ) =>
    blockedStatus(previous, {
      now: LATER,
      generation: over.generation ?? 4,
      reason: over.reason ?? 'DatabaseUnavailable',
      message: 'connect ECONNREFUSED db.internal:5432',
      specVerdict: over.specVerdict ?? false,
      suspend: over.suspend ?? false,
    });
  const find = (s: PoolStatus, type: string): Condition | undefined => s.conditions?.find((c) => c.type === type);

  it('sets Ready False with the reason and message, from the time it was blocked', () => {
    const ready = find(block(), 'Ready');
    expect(ready).to.deep.include({
      status: 'False',
      reason: 'DatabaseUnavailable',
      message: 'connect ECONNREFUSED db.internal:5432',
      lastTransitionTime: '2024-05-01T12:05:00Z',
    });
  });

  it('keeps the counts, backlog and dispatch time last seen', () => {
    const status = block();
    expect(status.invocations).to.deep.equal(counts);
    expect(status.tasks).to.deep.equal(taskCounts);
    expect(status.backlog).to.equal(4);
    expect(status.lastDispatchTime).to.equal(EARLIER_TEXT);
  });

  it('says Active only while invocations last seen running, and Degraded for the same reason as Ready', () => {
    const status = block();
    expect(find(status, 'Active')).to.deep.include({ status: 'True', reason: 'WorkInFlight', lastTransitionTime: NOW_TEXT });
    expect(find(status, 'Active')?.message).to.include('nothing new is dispatched: see Ready (DatabaseUnavailable)');
    expect(find(status, 'Degraded')).to.deep.include({
      status: 'True',
      reason: 'DatabaseUnavailable',
      lastTransitionTime: '2024-05-01T12:05:00Z',
    });
  });

  it('leaves observedGeneration alone when the world could not be reached', () => {
    expect(block({ specVerdict: false, generation: 4 }).observedGeneration).to.equal(3);
  });

  it('advances observedGeneration when the verdict is on the spec itself', () => {
    expect(block({ specVerdict: true, reason: 'InvalidSpec', generation: 4 }).observedGeneration).to.equal(4);
  });

  it('reports Suspended from the spec even while blocked', () => {
    expect(find(block({ suspend: true }), 'Suspended')).to.deep.include({
      status: 'True',
      reason: 'SuspendedBySpec',
      lastTransitionTime: '2024-05-01T12:05:00Z',
    });
    expect(find(block({ suspend: false }), 'Suspended')).to.deep.include({
      status: 'False',
      reason: 'NotSuspended',
      lastTransitionTime: NOW_TEXT,
    });
  });

  it('works on a pool that never had a status', () => {
    const status = blockedStatus(
      {},
      { now: LATER, generation: 1, reason: 'InvalidSpec', message: 'spec.queue is required', specVerdict: true, suspend: false },
    );
    expect(status.observedGeneration).to.equal(1);
    expect(status.conditions?.map((c) => `${c.type}=${c.status}`)).to.deep.equal([
      'Ready=False',
      'Active=False',
      'Degraded=True',
      'Suspended=False',
    ]);
  });
});

describe('sameStatus', () => {
  const base = buildStatus({ lastDispatchTime: EARLIER_TEXT }, facts({ invocations: { running: 2 }, tasks: { created: 4, done: 8 } }));

  const reversedKeys = <T extends object>(o: T): T => Object.fromEntries(Object.entries(o).reverse()) as T;

  it('treats counts listed in another key order as the same', () => {
    const other: PoolStatus = {
      ...base,
      invocations: reversedKeys(base.invocations ?? noInvocations),
      tasks: reversedKeys(base.tasks ?? noTasks),
    };
    expect(sameStatus(base, other)).to.equal(true);
  });

  it('treats conditions listed in another order as the same', () => {
    const other: PoolStatus = { ...base, conditions: [...(base.conditions ?? [])].reverse() };
    expect(sameStatus(base, other)).to.equal(true);
  });

  const withCondition = (type: string, change: Partial<Condition>): PoolStatus => ({
    ...base,
    conditions: (base.conditions ?? []).map((c) => (c.type === type ? { ...c, ...change } : c)),
  });

  const changes: Array<{ name: string; other: PoolStatus }> = [
    { name: 'one invocation count', other: { ...base, invocations: { ...noInvocations, running: 2, succeeded: 1 } } },
    { name: 'one task count', other: { ...base, tasks: { ...noTasks, created: 4, done: 9 } } },
    { name: 'the backlog', other: { ...base, backlog: 5 } },
    { name: 'observedGeneration', other: { ...base, observedGeneration: 4 } },
    { name: 'lastDispatchTime', other: { ...base, lastDispatchTime: NOW_TEXT } },
    { name: 'counts that disappear', other: { ...base, invocations: undefined } },
    { name: 'a condition status', other: withCondition('Ready', { status: 'False' }) },
    { name: 'a condition reason', other: withCondition('Degraded', { reason: 'Throttled' }) },
    { name: 'a condition message', other: withCondition('Active', { message: '3 running' }) },
    { name: 'a condition transition time', other: withCondition('Suspended', { lastTransitionTime: EARLIER_TEXT }) },
    { name: 'a condition observedGeneration', other: withCondition('Ready', { observedGeneration: 99 }) },
    { name: 'a missing condition', other: { ...base, conditions: (base.conditions ?? []).slice(1) } },
  ];
  for (const c of changes) {
    it(`sees a change in ${c.name}`, () => {
      expect(sameStatus(base, c.other)).to.equal(false);
      expect(sameStatus(c.other, base)).to.equal(false);
    });
  }
});
