// The event recorder's own logic (folding repeats, sending in the background, yielding to dispatch), with
// a recording stand-in for the API client. The real API server is exercised by the end-to-end tests.
import { expect } from 'chai';
import type { CoreV1Api } from '@kubernetes/client-node';
import { EventRecorder } from '../../src/controller/events.ts';
import { requestOptions } from '../../src/controller/kube.ts';
import { silentLogger } from '../../src/ops/logger.ts';

const POOL = { namespace: 'jobs', name: 'thumbs', uid: 'uid-1' };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `holdAnswers`: each send stays in flight until its entry in `answers` is called. */
function recorder(now: () => number, busy: () => boolean = () => false, holdAnswers = false) {
  const sent: Array<{ reason: string; message: string }> = [];
  const pools: string[] = [];
  const answers: Array<() => void> = [];
  const core = {
    createNamespacedEvent: async (req: { body: { reason?: string; message?: string; involvedObject?: { name?: string } } }) => {
      sent.push({ reason: req.body.reason ?? '', message: req.body.message ?? '' });
      pools.push(req.body.involvedObject?.name ?? '');
      if (holdAnswers) await new Promise<void>((resolve) => answers.push(resolve));
      return {};
    },
  } as unknown as CoreV1Api;
  return { sent, pools, answers, events: new EventRecorder(core, requestOptions(), silentLogger(), 30_000, now, busy) };
}

describe('EventRecorder', () => {
  it('sends the first event of a reason at once and folds repeats within the window into the next one', async () => {
    let clock = 0;
    const { sent, events } = recorder(() => clock);
    events.record(POOL, 'Normal', 'Dispatched', 'invoked 3');
    events.record(POOL, 'Normal', 'Dispatched', 'invoked 2');
    events.record(POOL, 'Normal', 'Dispatched', 'invoked 1');
    clock = 31_000;
    events.record(POOL, 'Normal', 'Dispatched', 'invoked 4');
    await events.flush();
    expect(sent).to.deep.equal([
      { reason: 'Dispatched', message: 'invoked 3' },
      { reason: 'Dispatched', message: 'invoked 4 (and 2 similar in the last 31s)' },
    ]);
  });

  it('forgets the windows of a deleted pool only: a pool of the same uid reports at once, another pool still folds', async () => {
    const { sent, events } = recorder(() => 0);
    const other = { ...POOL, name: 'other', uid: 'uid-2' };
    events.record(POOL, 'Warning', 'Throttled', 'slow down');
    events.record(other, 'Warning', 'Throttled', 'slow down');
    events.forget(POOL.uid);
    events.record(POOL, 'Warning', 'Throttled', 'again');
    events.record(other, 'Warning', 'Throttled', 'again');
    await events.flush();
    expect(sent.map((e) => e.message)).to.deep.equal(['slow down', 'slow down', 'again']);
  });

  it('returns at once and sends in the background, holding events back while dispatch is busy', async () => {
    let busy = true;
    const { sent, events } = recorder(
      () => 0,
      () => busy,
    );
    events.record(POOL, 'Warning', 'Throttled', 'slow down');
    await sleep(50);
    expect(sent).to.deep.equal([]);
    busy = false;
    await sleep(300);
    expect(sent.map((e) => e.reason)).to.deep.equal(['Throttled']);
  });

  it('holds back the events still waiting when dispatch turns busy while others are being sent', async () => {
    let busy = false;
    const { pools, answers, events } = recorder(
      () => 0,
      () => busy,
      true,
    );
    for (const name of ['a', 'b', 'c', 'd']) events.record({ ...POOL, name, uid: name }, 'Normal', 'Dispatched', 'invoked 1');
    expect(pools, 'two at a time while dispatch is idle').to.deep.equal(['a', 'b']);
    busy = true;
    for (const answer of answers.splice(0)) answer();
    await sleep(50);
    expect(pools, 'the sends under way finish; the rest wait for dispatch').to.deep.equal(['a', 'b']);
    busy = false;
    await sleep(300);
    expect(pools).to.deep.equal(['a', 'b', 'c', 'd']);
    for (const answer of answers.splice(0)) answer();
    await events.flush();
  });

  it('gives up on the events still waiting once a flush with a timeout has waited that long', async () => {
    const { sent, events } = recorder(Date.now, () => true);
    events.record(POOL, 'Warning', 'Throttled', 'slow down');
    const started = Date.now();
    await events.flush(100);
    expect(Date.now() - started, 'the flush returned after its timeout').to.be.within(90, 1_000);
    expect(sent, 'nothing was sent while dispatch was busy').to.deep.equal([]);
    await events.flush();
    expect(sent, 'the dropped event is gone for good').to.deep.equal([]);
  });

  it('sends an event held back by a dispatch that stays busy once it has waited 5 s', async () => {
    let clock = 0;
    const { sent, events } = recorder(
      () => clock,
      () => true,
    );
    events.record(POOL, 'Warning', 'Throttled', 'slow down');
    await sleep(300);
    expect(sent, 'held back while dispatch is busy').to.deep.equal([]);
    clock = 5_001;
    await sleep(300);
    expect(sent.map((e) => e.reason)).to.deep.equal(['Throttled']);
  });
});
