import { expect } from 'chai';
import {
  approximateDispatch,
  kedaAccurateDecision,
  naiveDispatch,
  type KedaAccurateDecision,
  type TickInput,
} from '../../bench/strategies/dispatchers.ts';

const K = 3;
const CAP = 10;

function input(backlog: number, seen: { pending?: number; running?: number } = {}): TickInput {
  return { backlog, seen: { pending: seen.pending ?? 0, running: seen.running ?? 0 }, cap: CAP, tasksPerInvocation: K };
}

describe('strategy benchmark: naive dispatch', () => {
  const cases: Array<{ name: string; input: TickInput; expected: number }> = [
    { name: 'invokes nothing for an empty backlog', input: input(0), expected: 0 },
    { name: 'invokes one per k created tasks, rounding a partial batch up', input: input(7), expected: 3 },
    { name: 'invokes at most the cap in one tick', input: input(50), expected: 10 },
    {
      name: 'invokes again for the same created tasks, whatever is already in flight',
      input: input(9, { pending: 3, running: 10 }),
      expected: 3,
    },
  ];
  for (const c of cases) it(c.name, () => expect(naiveDispatch(c.input)).to.equal(c.expected));
});

describe('strategy benchmark: approximate dispatch', () => {
  const cases: Array<{ name: string; input: TickInput; expected: number }> = [
    { name: 'invokes nothing for an empty backlog', input: input(0), expected: 0 },
    { name: 'invokes ceil(backlog / k) while the metric shows nothing in flight', input: input(7), expected: 3 },
    { name: 'tops the in-flight count up to the cap, no further', input: input(50, { pending: 4, running: 2 }), expected: 4 },
    { name: 'subtracts running invocations too, though their tasks have left the backlog', input: input(9, { running: 2 }), expected: 1 },
    { name: 'invokes nothing while the metric shows more in flight than the backlog needs', input: input(6, { pending: 5 }), expected: 0 },
  ];
  for (const c of cases) it(c.name, () => expect(approximateDispatch(c.input)).to.equal(c.expected));
});

describe("strategy benchmark: KEDA ScaledJob's accurate strategy", () => {
  const cases: Array<{ name: string; input: TickInput; expected: KedaAccurateDecision }> = [
    {
      name: 'creates no job while the queue is empty',
      input: input(0),
      expected: { maxScale: 0, runningJobCount: 0, pendingJobCount: 0, effectiveMaxScale: 0, create: 0 },
    },
    {
      name: 'creates maxScale = ceil(queue / target) jobs when nothing runs',
      input: input(7),
      expected: { maxScale: 3, runningJobCount: 0, pendingJobCount: 0, effectiveMaxScale: 3, create: 3 },
    },
    {
      name: 'caps maxScale at maxReplicaCount',
      input: input(50),
      expected: { maxScale: 10, runningJobCount: 0, pendingJobCount: 0, effectiveMaxScale: 10, create: 10 },
    },
    {
      name: 'subtracts pending jobs, and not running ones, while under maxReplicaCount',
      input: input(15, { pending: 2, running: 3 }),
      expected: { maxScale: 5, runningJobCount: 5, pendingJobCount: 2, effectiveMaxScale: 3, create: 3 },
    },
    {
      name: 'fills up to maxReplicaCount minus every unfinished job when maxScale + running - pending exceeds it',
      input: input(30, { pending: 2, running: 5 }),
      expected: { maxScale: 10, runningJobCount: 7, pendingJobCount: 2, effectiveMaxScale: 3, create: 3 },
    },
    {
      name: 'creates nothing when more are pending than the queue asks for',
      input: input(6, { pending: 4 }),
      expected: { maxScale: 2, runningJobCount: 4, pendingJobCount: 4, effectiveMaxScale: 0, create: 0 },
    },
    {
      name: 'creates no more jobs than there are queued tasks (scaleTo is the queue length)',
      input: { backlog: 2, seen: { pending: 0, running: 0 }, cap: CAP, tasksPerInvocation: 1 },
      expected: { maxScale: 2, runningJobCount: 0, pendingJobCount: 0, effectiveMaxScale: 2, create: 2 },
    },
  ];
  for (const c of cases) it(c.name, () => expect(kedaAccurateDecision(c.input)).to.deep.equal(c.expected));

  it('over-invokes as naive does while the lagging view still shows nothing in flight', () => {
    expect(kedaAccurateDecision(input(30)).create).to.equal(naiveDispatch(input(30)));
  });
});
