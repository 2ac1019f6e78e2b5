// The controller on the real local stack (kube-apiserver, Postgres, the local Lambda runtime):
//  - reaction time: a task INSERT to its invocation's accepted Invoke (the NOTIFY path), median and p99;
//  - dispatch throughput: invocations per second that one controller inserts and invokes for a large backlog.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { kubectlApply } from './support.ts';
import { startLocalStack } from '../dev/src/stack.ts';
import { silentLogger } from '../src/ops/logger.ts';
import { createDb } from '../src/store/db.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const NOOP = path.join(here, '..', 'test', 'fixtures', 'functions', 'noop.ts');
const REACTION_SAMPLES = 40;
const THROUGHPUT_BACKLOG = 1000; // the CRD caps maxConcurrency at 1000

function percentile(sorted: number[], p: number): number {
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

export async function run(): Promise<Record<string, number | string>> {
  const stateDir = await mkdtemp(path.join(os.tmpdir(), 'ltp-bench-'));
  const config = path.join(stateDir, 'lambda.yaml');
  // The noop function never claims its row, so the invocations stay `pending`: the measure is the controller alone.
  await writeFile(config, `concurrencyLimit: 4\nfunctions:\n  bench-noop:\n    handler: ${NOOP}#handler\n`);
  const stack = await startLocalStack({
    stateDir,
    lambdaConfigFile: config,
    logger: silentLogger(),
    controllerOverrides: { invokeParallelism: 32 },
  });
  const db = createDb(stack.databaseUrl, { max: 2 });
  try {
    // Reaction time: one task at a time into an idle pool whose every earlier invocation is finished.
    await kubectlApply(stack, { name: 'react', queue: 'react', maxConcurrency: 1, tasksPerInvocation: 1, startTimeoutSeconds: 3600 });
    await waitFor(async () => (await db.query(`SELECT count(*)::int AS n FROM ltp.queue_claims WHERE queue = 'react'`)).rows[0].n === 1);
    const reactions: number[] = [];
    for (let i = 0; i < REACTION_SAMPLES; i++) {
      const inserted = await db.query<{ id: number }>(`INSERT INTO ltp.tasks (queue) VALUES ('react') RETURNING id`);
      const taskId = inserted.rows[0]?.id;
      const row = await waitFor(async () => {
        const r = await db.query<{ ms: number }>(
          `SELECT extract(epoch FROM i.invoked_at - t.created_at)::float8 * 1000 AS ms
             FROM ltp.invocations i, ltp.tasks t
            WHERE t.id = $1 AND i.queue = 'react' AND i.invoked_at IS NOT NULL AND i.status = 'pending'`,
          [taskId],
        );
        return r.rows[0];
      });
      reactions.push(row.ms);
      // Finish the task, then retire the invocation, so the next sample starts from an idle pool.
      await db.query(
        `UPDATE ltp.tasks SET status = 'leased', invocation_id = (SELECT max(id) FROM ltp.invocations WHERE queue = 'react') WHERE id = $1`,
        [taskId],
      );
      await db.query(`UPDATE ltp.tasks SET status = 'done', finished_at = now() WHERE id = $1`, [taskId]);
      await db.query(`UPDATE ltp.invocations SET status = 'terminated', finished_at = now() WHERE queue = 'react' AND status = 'pending'`);
    }
    reactions.sort((a, b) => a - b);

    // Throughput: a backlog far beyond one pass's reach, all invocations allowed at once.
    await kubectlApply(stack, {
      name: 'flood',
      queue: 'flood',
      maxConcurrency: THROUGHPUT_BACKLOG,
      tasksPerInvocation: 1,
      startTimeoutSeconds: 3600,
    });
    await waitFor(async () => (await db.query(`SELECT count(*)::int AS n FROM ltp.queue_claims WHERE queue = 'flood'`)).rows[0].n === 1);
    await db.query(`INSERT INTO ltp.tasks (queue) SELECT 'flood' FROM generate_series(1, $1)`, [THROUGHPUT_BACKLOG]);
    const span = await waitFor(async () => {
      const r = await db.query<{ n: number; seconds: number }>(
        `SELECT count(*)::int AS n, extract(epoch FROM max(i.invoked_at) - (SELECT min(created_at) FROM ltp.tasks WHERE queue = 'flood'))::float8 AS seconds
           FROM ltp.invocations i WHERE i.queue = 'flood' AND i.invoked_at IS NOT NULL`,
      );
      const row = r.rows[0];
      return row && row.n >= THROUGHPUT_BACKLOG ? row : undefined;
    }, 300_000);
    return {
      reactionSamples: REACTION_SAMPLES,
      reactionMsP50: Math.round(percentile(reactions, 50)),
      reactionMsP99: Math.round(percentile(reactions, 99)),
      reactionMsMin: Math.round(reactions[0] ?? Number.NaN),
      throughputInvocations: span.n,
      throughputSeconds: Math.round(span.seconds * 100) / 100,
      dispatchPerSecond: Math.round(span.n / span.seconds),
    };
  } finally {
    await db.end();
    await stack.stop();
    await rm(stateDir, { recursive: true, force: true });
  }
}

async function waitFor<T>(check: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`benchmark condition not met within ${timeoutMs} ms`);
}
