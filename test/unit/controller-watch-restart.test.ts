import { expect } from 'chai';
import { restartOnFailure, type RestartableWatch } from '../../src/controller/watch-restart.ts';

/** Lets every settled promise run its continuations. */
const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A watch whose starts answer as the test says: resolve, reject, or report an error while starting. */
class ScriptedWatch implements RestartableWatch {
  starts = 0;
  private readonly handlers: Array<(error: unknown) => void> = [];

  constructor(private readonly script: Array<'ok' | 'reject' | 'error-then-ok'>) {}

  on(_event: 'error', callback: (error: unknown) => void): void {
    this.handlers.push(callback);
  }

  fail(error: unknown): void {
    this.handlers.forEach((h) => h(error));
  }

  async start(): Promise<void> {
    const step = this.script[this.starts] ?? 'ok';
    this.starts += 1;
    if (step === 'reject') throw new Error('exec plugin failed: aws eks get-token exited 1');
    // client-node's list failure: an error event, then start() resolves.
    if (step === 'error-then-ok') this.fail(new Error('list refused'));
  }
}

function harness(script: Array<'ok' | 'reject' | 'error-then-ok'>, options: { throwOnRestored?: boolean } = {}) {
  const watch = new ScriptedWatch(script);
  const scheduled: Array<{ fn: () => void; ms: number }> = [];
  const log: string[] = [];
  let stopped = false;
  restartOnFailure(watch, {
    backoff: { initialMs: 200, maxMs: 3_200 },
    stopped: () => stopped,
    onFailing: (error, retryInMs) => log.push(`failing in ${retryInMs}: ${error instanceof Error ? error.message : String(error)}`),
    onRestored: () => {
      log.push('restored');
      if (options.throwOnRestored) throw new Error('enqueue failed');
    },
    onCallbackError: (error) => log.push(`callback failed: ${error instanceof Error ? error.message : String(error)}`),
    schedule: (fn, ms) => scheduled.push({ fn, ms }),
    random: () => 0.5,
  });
  /** Fires the restarts scheduled so far, one round. */
  const fire = async () => {
    const due = scheduled.splice(0);
    due.forEach((s) => s.fn());
    await flush();
  };
  return { watch, scheduled, log, fire, stop: () => void (stopped = true) };
}

describe('restarting a failed pool watch', () => {
  it('restarts a failed watch after a backoff and says when it is restored', async () => {
    const h = harness(['ok']);
    h.watch.fail(new Error('connection reset'));
    expect(h.scheduled).to.have.length(1);
    await h.fire();
    expect(h.watch.starts).to.equal(1);
    expect(h.log).to.deep.equal(['failing in 150: connection reset', 'restored']);
  });

  it('retries a restart that rejects without an error event, until one succeeds (before, the watch stayed stopped)', async () => {
    const h = harness(['reject', 'reject', 'ok']);
    h.watch.fail(new Error('watch closed'));
    await h.fire();
    await h.fire();
    await h.fire();
    expect(h.watch.starts).to.equal(3);
    expect(h.log).to.deep.equal([
      'failing in 150: watch closed',
      'failing in 300: exec plugin failed: aws eks get-token exited 1',
      'failing in 600: exec plugin failed: aws eks get-token exited 1',
      'restored',
    ]);
    expect(h.scheduled, 'nothing left to do once restored').to.have.length(0);
  });

  it('schedules one restart for a start that reports an error and then resolves, and is not restored by it', async () => {
    const h = harness(['error-then-ok', 'ok']);
    h.watch.fail(new Error('watch closed'));
    await h.fire();
    expect(h.log).to.deep.equal(['failing in 150: watch closed', 'failing in 300: list refused']);
    expect(h.scheduled).to.have.length(1);
    await h.fire();
    expect(h.log.at(-1)).to.equal('restored');
    expect(h.watch.starts).to.equal(2);
  });

  it('says when its own handling of a restart throws, instead of leaving an unhandled rejection', async () => {
    const h = harness(['ok'], { throwOnRestored: true });
    h.watch.fail(new Error('watch closed'));
    await h.fire();
    expect(h.log).to.deep.equal(['failing in 150: watch closed', 'restored', 'callback failed: enqueue failed']);
  });

  it('starts nothing once the controller is stopping', async () => {
    const h = harness(['reject']);
    h.watch.fail(new Error('watch closed'));
    h.stop();
    await h.fire();
    h.watch.fail(new Error('again'));
    expect(h.watch.starts).to.equal(0);
    expect(h.scheduled).to.have.length(0);
  });
});
