// An example worker function: it "renders a thumbnail" by sleeping for the payload's `ms` (default 2000).
// The local stack registers it as `thumbnail-worker`; on AWS, bundle it with your own code and deploy it
// as a Node.js Lambda function whose handler is `worker.handler`, with DATABASE_URL in its environment.
import { setTimeout as sleep } from 'node:timers/promises';
import { taskWorker } from '@lambda-task-pool/worker';

interface ThumbnailJob {
  image?: string;
  ms?: number;
  fail?: boolean;
}

export const handler = taskWorker<ThumbnailJob, { thumbnail: string; tookMs: number }>({
  // Start a task only with at least 5 s left before the function's timeout; the rest go back to the queue.
  minTimeToStartTaskMs: 5_000,
  async process(task, ctx) {
    const started = Date.now();
    const ms = task.payload.ms ?? 2_000;
    // ctx.signal is shared by every task of the invocation: this sleep removes its abort listener when it
    // ends, so listeners do not pile up task after task, and rejects at once if the signal already aborted.
    await sleep(ms, undefined, { signal: ctx.signal });
    if (task.payload.fail) throw new Error(`could not render ${task.payload.image ?? 'the image'}`);
    return { thumbnail: `${task.payload.image ?? `task-${task.id}`}.thumb.png`, tookMs: Date.now() - started };
  },
});
