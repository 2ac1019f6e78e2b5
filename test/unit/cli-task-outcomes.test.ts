import { expect } from 'chai';
import { cancelOutcomes, retryOutcomes } from '../../src/cli/task-outcomes.ts';
import type { TaskStanding } from '../../src/store/task-store.ts';

const task = (id: number, status: TaskStanding['status'], retriedBy: number | null = null): TaskStanding => ({
  id,
  queue: 'q',
  status,
  retriedBy,
});

describe('cli task outcomes', () => {
  describe('retry', () => {
    it('reports each re-run task with the id of its new task', () => {
      const outcomes = retryOutcomes({
        requested: [4, 7],
        standings: [task(4, 'failed', 20), task(7, 'cancelled', 21)],
        rerun: new Map([
          [4, 20],
          [7, 21],
        ]),
      });
      expect(outcomes).to.deep.equal([
        { id: 4, outcome: 'retried', retryId: 20 },
        { id: 7, outcome: 'retried', retryId: 21 },
      ]);
    });

    it('says why a task was not re-run: missing, unfinished, done, or re-run already', () => {
      const outcomes = retryOutcomes({
        requested: [1, 2, 3, 4, 5],
        standings: [task(2, 'leased'), task(3, 'done'), task(4, 'failed', 9), task(5, 'created')],
        rerun: new Map(),
      });
      expect(outcomes.map((o) => (o.outcome === 'skipped' ? o.reason : o.outcome))).to.deep.equal([
        'no such task',
        'it is leased, not finished: only failed or cancelled tasks are re-run',
        'it is done: only failed or cancelled tasks are re-run',
        'already re-run as task 9 (re-run that one to try again)',
        'it is created, not finished: only failed or cancelled tasks are re-run',
      ]);
    });

    it('in a dry run, says which tasks would be re-run and which would not', () => {
      const outcomes = retryOutcomes({ requested: [1, 2], standings: [task(1, 'failed'), task(2, 'failed', 5)], rerun: undefined });
      expect(outcomes).to.deep.equal([
        { id: 1, outcome: 'would-retry' },
        { id: 2, outcome: 'skipped', reason: 'already re-run as task 5 (re-run that one to try again)' },
      ]);
    });
  });

  describe('cancel', () => {
    it('reports the tasks it cancelled, and why the others were left', () => {
      const outcomes = cancelOutcomes({
        requested: [1, 2, 3, 4, 5, 6],
        standings: [task(1, 'cancelled'), task(2, 'leased'), task(3, 'done'), task(4, 'cancelled'), task(5, 'failed')],
        cancelled: new Set([1]),
      });
      expect(outcomes.map((o) => (o.outcome === 'skipped' ? o.reason : o.outcome))).to.deep.equal([
        'cancelled',
        'it is leased: a worker is on it, and it ends done or failed',
        'it has finished (done)',
        'it was already cancelled',
        'it has finished (failed)',
        'no such task',
      ]);
    });

    it('in a dry run, would cancel the created tasks only', () => {
      const outcomes = cancelOutcomes({ requested: [1, 2], standings: [task(1, 'created'), task(2, 'leased')], cancelled: undefined });
      expect(outcomes.map((o) => o.outcome)).to.deep.equal(['would-cancel', 'skipped']);
    });

    it('says so when a created task was taken while it was being cancelled', () => {
      const [outcome] = cancelOutcomes({ requested: [1], standings: [task(1, 'created')], cancelled: new Set() });
      expect(outcome).to.include({ outcome: 'skipped' });
    });
  });
});
