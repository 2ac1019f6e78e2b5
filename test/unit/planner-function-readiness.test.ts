import { expect } from 'chai';
import type { FunctionSettings } from '../../src/lambda/function-settings.ts';
import { functionVerdict, neededTimeoutSeconds, type StartSignals } from '../../src/planner/function-readiness.ts';

const spec = { maxConcurrency: 10, tasksPerInvocation: 3, startTimeoutSeconds: 900, function: { name: 'thumbs' } };

const healthy: FunctionSettings = {
  configuration: { state: 'Active', lastUpdateStatus: 'Successful', timeoutSeconds: 120, memoryMb: 512 },
  reservedConcurrency: 10,
  asyncConfig: { maximumRetryAttempts: 0, maximumEventAgeSeconds: 3600, configured: true },
  problems: [],
};
const quiet: StartSignals = { waiting: 0, oldestWaitMs: 0, startedSince: true };

const cases: Array<{
  name: string;
  settings?: FunctionSettings;
  signals?: StartSignals;
  status: string;
  reason: string;
  message?: string;
}> = [
  { name: 'a well-configured function is ready', settings: healthy, signals: quiet, status: 'True', reason: 'FunctionConfigured' },
  { name: 'nothing read yet is Unknown', status: 'Unknown', reason: 'NotChecked' },
  {
    name: 'a missing function',
    settings: {
      problems: [{ action: 'lambda:GetFunctionConfiguration', code: 'ResourceNotFoundException', message: 'Function not found' }],
    },
    status: 'False',
    reason: 'FunctionNotFound',
  },
  {
    name: 'a function that is not Active',
    settings: { ...healthy, configuration: { ...healthy.configuration!, state: 'Failed', stateReason: 'image pull failed' } },
    status: 'False',
    reason: 'FunctionNotActive',
    message: 'its state is Failed: image pull failed',
  },
  {
    name: 'reserved concurrency below maxConcurrency',
    settings: { ...healthy, reservedConcurrency: 4 },
    status: 'False',
    reason: 'ReservedConcurrencyTooLow',
    message: 'invocations beyond 4 wait',
  },
  {
    name: 'reserved concurrency 0 throttles everything',
    settings: { ...healthy, reservedConcurrency: 0 },
    status: 'False',
    reason: 'ReservedConcurrencyTooLow',
    message: 'throttles every invocation',
  },
  {
    name: 'no reserved concurrency (the unreserved pool) is fine',
    settings: { ...healthy, reservedConcurrency: null },
    status: 'True',
    reason: 'FunctionConfigured',
  },
  {
    name: 'a timeout too short for the tasks of one invocation',
    settings: { ...healthy, configuration: { ...healthy.configuration!, timeoutSeconds: 30 } },
    signals: { ...quiet, taskDurationMs: 20_000 },
    status: 'False',
    reason: 'FunctionTimeoutTooShort',
    message: 'raise its timeout to at least 65s',
  },
  {
    name: 'an event age below the start timeout',
    settings: { ...healthy, asyncConfig: { maximumRetryAttempts: 0, maximumEventAgeSeconds: 300, configured: true } },
    status: 'False',
    reason: 'EventAgeTooShort',
    message: 'drops events older than 300s',
  },
  {
    name: "async retries on by AWS's default",
    settings: { ...healthy, asyncConfig: { maximumRetryAttempts: 2, maximumEventAgeSeconds: 21_600, configured: false } },
    status: 'False',
    reason: 'AsyncRetriesEnabled',
    message: "AWS's default",
  },
  {
    name: 'accepted invocations that never start, well past the usual delay',
    settings: healthy,
    signals: { waiting: 4, oldestWaitMs: 120_000, usualStartDelayMs: 2_000, startedSince: false },
    status: 'False',
    reason: 'InvocationsNotStarting',
    message: 'may be failing before it runs',
  },
  {
    name: 'accepted invocations that wait, but others started since: not stalled',
    settings: healthy,
    signals: { waiting: 4, oldestWaitMs: 120_000, usualStartDelayMs: 2_000, startedSince: true },
    status: 'True',
    reason: 'FunctionConfigured',
  },
  {
    name: 'a slow start within five times the usual delay is not a stall',
    settings: healthy,
    signals: { waiting: 2, oldestWaitMs: 90_000, usualStartDelayMs: 30_000, startedSince: false },
    status: 'True',
    reason: 'FunctionConfigured',
  },
  {
    name: 'a missing permission is Unknown and names the action',
    settings: {
      ...healthy,
      reservedConcurrency: undefined,
      problems: [{ action: 'lambda:GetFunctionConcurrency', code: 'AccessDeniedException', message: 'not authorized' }],
    } as FunctionSettings,
    status: 'Unknown',
    reason: 'PermissionMissing',
    message: 'lambda:GetFunctionConcurrency',
  },
];

describe('functionVerdict (FunctionReady)', () => {
  for (const c of cases) {
    it(c.name, () => {
      const verdict = functionVerdict({ spec, settings: c.settings, signals: c.signals });
      expect({ status: verdict.status, reason: verdict.reason }).to.deep.equal({ status: c.status, reason: c.reason });
      if (c.message) expect(verdict.message).to.include(c.message);
    });
  }

  it('reports every problem in the message, the most severe first', () => {
    const verdict = functionVerdict({
      spec,
      settings: {
        ...healthy,
        reservedConcurrency: 2,
        asyncConfig: { maximumRetryAttempts: 2, maximumEventAgeSeconds: 60, configured: true },
      },
      signals: quiet,
    });
    expect(verdict.reason).to.equal('ReservedConcurrencyTooLow');
    expect(verdict.message).to.include('drops events older than 60s').and.include('retries failed events of thumbs 2 times');
  });

  it('needs room for tasksPerInvocation tasks and the worker overhead', () => {
    expect(neededTimeoutSeconds({ tasksPerInvocation: 3 }, 10_000)).to.equal(35);
  });
});
