// The fault soak, small enough for every test run (about 3 minutes): every fault of `npm run soak` at once,
// judged from outside. `npm run soak` runs the full one (3,000 tasks, longer faults).
import { expect } from 'chai';
import { SMALL_SOAK, runSoak } from '../../bench/soak/soak.ts';

describe('fault soak, small (own kube-apiserver, Postgres, Lambda runtime and controller process)', function () {
  this.timeout(600_000);

  it('finishes every task exactly once under duplicates, drops, throttles, crashes, controller kills, a frozen Postgres, a partitioned worker and a frozen API server, with no violation', async () => {
    const report = await runSoak(SMALL_SOAK);
    expect(report.violations, JSON.stringify(report)).to.deep.equal({
      tasksNotDone: 0,
      overlappingExecutions: 0,
      instantsAboveCap: 0,
      failedWithoutHandlerFailure: 0,
      wastedInvocations: 0,
    });
    // The faults really happened.
    expect(report.observed.controllerKills, 'controller kills').to.be.at.least(2);
    expect(report.observed.lambdaDuplicates, 'duplicate deliveries').to.be.greaterThan(0);
    expect(report.observed.lambdaThrottled, 'throttled invokes').to.be.greaterThan(0);
    expect(report.observed.peakLiveInvocations).to.equal(SMALL_SOAK.maxConcurrency);
  });
});
