// What the worker refuses before it touches a database: timing options that are not milliseconds, and a
// database URL that could never work, said without any piece of the password.
import { expect } from 'chai';
import { WorkerConfigError } from '../../packages/worker/src/database.ts';
import { taskWorker } from '../../packages/worker/src/index.ts';

const process_ = () => 'ok';

describe('worker configuration', () => {
  const bad: Array<[option: string, value: unknown]> = [
    ['minTimeToStartTaskMs', Number.NaN],
    ['minTimeToStartTaskMs', -1],
    ['stopBeforeTimeoutMs', Number.NaN],
    ['stopBeforeTimeoutMs', Number.POSITIVE_INFINITY],
    ['heartbeatIntervalMs', Number.NaN],
    ['heartbeatIntervalMs', 0],
    ['heartbeatIntervalMs', '5000'],
  ];
  for (const [option, value] of bad) {
    it(`refuses ${option}: ${String(value)} (${typeof value}) when the worker is made, naming the option`, () => {
      expect(() => taskWorker({ process: process_, [option]: value })).to.throw(WorkerConfigError, option);
    });
  }

  it('takes 0 for the time margins, and leaves the defaults alone', () => {
    expect(() =>
      taskWorker({ process: process_, minTimeToStartTaskMs: 0, stopBeforeTimeoutMs: 0, heartbeatIntervalMs: 250 }),
    ).not.to.throw();
    expect(() => taskWorker({ process: process_ })).not.to.throw();
  });

  const password = 'S3cr@tPart#Rest';
  const urls = [
    `postgres://app:${password}@db.example.com:5432/tasks`,
    `mysql://app:${password}@db.example.com/tasks`,
    `postgres://app:S3cr@tPart/Rest@db.example.com/tasks`,
  ];
  for (const url of urls) {
    it(`refuses ${url.split(':')[0]} URL with an unencoded password without repeating any piece of it`, async () => {
      const handler = taskWorker({ databaseUrl: url, process: process_ });
      const error = await handler({ invocationId: '1' }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).to.be.instanceOf(WorkerConfigError);
      const message = (error as Error).message;
      for (const piece of ['S3cr', 'tPart', 'Rest']) expect(message).not.to.include(piece);
    });
  }
});
