import { expect } from 'chai';
import { mergeConditions, type ConditionInput } from '../../src/api/conditions.ts';
import type { Condition } from '../../src/api/types.ts';

const EARLIER = '2024-05-01T10:00:00Z';
const NOW = new Date('2024-05-01T12:30:15.678Z');
const NOW_TEXT = '2024-05-01T12:30:15Z';

const readyTrue: Condition = {
  type: 'Ready',
  status: 'True',
  reason: 'Reconciled',
  message: 'serving queue q',
  lastTransitionTime: EARLIER,
  observedGeneration: 1,
};

interface MergeCase {
  name: string;
  current: Condition[] | undefined;
  desired: ConditionInput;
  expected: Partial<Condition>;
}

describe('mergeConditions', () => {
  const cases: MergeCase[] = [
    {
      name: 'stamps a condition type seen for the first time with now, to the second',
      current: undefined,
      desired: { type: 'Ready', status: 'True', reason: 'Reconciled', message: 'serving queue q' },
      expected: { lastTransitionTime: NOW_TEXT },
    },
    {
      name: 'keeps the transition time when nothing changes',
      current: [readyTrue],
      desired: { type: 'Ready', status: 'True', reason: 'Reconciled', message: 'serving queue q' },
      expected: { lastTransitionTime: EARLIER },
    },
    {
      name: 'keeps the transition time when only the message changes',
      current: [readyTrue],
      desired: { type: 'Ready', status: 'True', reason: 'Reconciled', message: 'serving queue q from another database' },
      expected: { lastTransitionTime: EARLIER, message: 'serving queue q from another database' },
    },
    {
      name: 'keeps the transition time when only the reason changes',
      current: [{ ...readyTrue, status: 'False', reason: 'SecretNotFound' }],
      desired: { type: 'Ready', status: 'False', reason: 'DatabaseUnavailable', message: 'connection refused' },
      expected: { lastTransitionTime: EARLIER, reason: 'DatabaseUnavailable', message: 'connection refused' },
    },
    {
      name: 'moves the transition time to now when the status flips from True to False',
      current: [readyTrue],
      desired: { type: 'Ready', status: 'False', reason: 'FunctionNotFound', message: 'no such function' },
      expected: { status: 'False', reason: 'FunctionNotFound', lastTransitionTime: NOW_TEXT },
    },
    {
      name: 'moves the transition time to now when the status flips from Unknown to True',
      current: [{ ...readyTrue, status: 'Unknown' }],
      desired: { type: 'Ready', status: 'True', reason: 'Reconciled', message: 'serving queue q' },
      expected: { status: 'True', lastTransitionTime: NOW_TEXT },
    },
    {
      name: 'cuts a message longer than 1024 characters',
      current: undefined,
      desired: { type: 'Ready', status: 'False', reason: 'InvokeRejected', message: 'x'.repeat(5000) },
      expected: { message: 'x'.repeat(1024) },
    },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const [merged] = mergeConditions(c.current, [c.desired], { now: NOW, generation: 7 });
      expect(merged).to.deep.include({ type: c.desired.type, observedGeneration: 7, ...c.expected });
    });
  }

  it('stamps observedGeneration on every condition, changed or not', () => {
    const current: Condition[] = [
      readyTrue,
      { type: 'Active', status: 'False', reason: 'Idle', message: 'idle', lastTransitionTime: EARLIER, observedGeneration: 1 },
    ];
    const merged = mergeConditions(
      current,
      [
        { type: 'Ready', status: 'True', reason: 'Reconciled', message: 'serving queue q' },
        { type: 'Active', status: 'True', reason: 'WorkInFlight', message: '1 running' },
        { type: 'Suspended', status: 'False', reason: 'NotSuspended', message: 'dispatching' },
      ],
      { now: NOW, generation: 9 },
    );

    expect(merged.map((c) => [c.type, c.observedGeneration, c.lastTransitionTime])).to.deep.equal([
      ['Ready', 9, EARLIER],
      ['Active', 9, NOW_TEXT],
      ['Suspended', 9, NOW_TEXT],
    ]);
  });

  it('leaves the current conditions it was given untouched', () => {
    const current: Condition[] = [{ ...readyTrue }];
    mergeConditions(current, [{ type: 'Ready', status: 'False', reason: 'InvalidSpec', message: 'bad' }], { now: NOW, generation: 2 });
    expect(current).to.deep.equal([readyTrue]);
  });
});
