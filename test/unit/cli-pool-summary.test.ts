import { expect } from 'chai';
import { queuedInvocations, startedInvocations, summarizePool } from '../../src/cli/pool-summary.ts';

describe('cli pool summary', () => {
  it('reads what a pool asks for and what the controller reported', () => {
    const summary = summarizePool({
      metadata: { namespace: 'team-a', name: 'thumbs', uid: 'u1', generation: 3, creationTimestamp: '2026-01-01T00:00:00Z' },
      spec: { function: { name: 'thumbnail-worker', qualifier: 'live' }, queue: 'thumbnails', maxConcurrency: 10, tasksPerInvocation: 3 },
      status: {
        observedGeneration: 3,
        backlog: 24,
        invocations: { created: 1, pending: 7, ready: 1, running: 2, succeeded: 5, failed: 0, orphaned: 1, terminated: 0 },
        tasks: { created: 24, leased: 6, done: 12, failed: 2, cancelled: 1 },
        conditions: [{ type: 'Ready', status: 'True', reason: 'Reconciled', message: 'ok', lastTransitionTime: '2026-01-01T00:00:01Z' }],
      },
    });
    expect(summary).to.include({
      namespace: 'team-a',
      name: 'thumbs',
      queue: 'thumbnails',
      function: 'thumbnail-worker:live',
      ready: 'True',
    });
    expect(summary).to.include({ reason: 'Reconciled', backlog: 24, suspend: false, observedGeneration: 3 });
    expect(summary.tasks).to.deep.equal({ created: 24, leased: 6, done: 12, failed: 2, cancelled: 1 });
    expect(queuedInvocations(summary)).to.equal(8);
    expect(startedInvocations(summary)).to.equal(3);
  });

  it('shows a pool the controller has not reconciled yet as Unknown, and an old status without cancelled as 0 cancelled', () => {
    const fresh = summarizePool({ metadata: { namespace: 'ns', name: 'p', uid: 'u' }, spec: { queue: 'q' } });
    expect(fresh).to.include({ ready: 'Unknown', reason: 'NotReconciled', backlog: null, tasks: null });
    const old = summarizePool({
      metadata: { namespace: 'ns', name: 'p', uid: 'u' },
      status: { tasks: { created: 1, leased: 0, done: 2, failed: 0 } },
    });
    expect(old.tasks).to.deep.equal({ created: 1, leased: 0, done: 2, failed: 0, cancelled: 0 });
  });
});
