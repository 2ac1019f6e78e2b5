// Hostile input through the database: NOTIFY floods with junk on both wake-up channels, task payloads and
// results over Lambda's 1 MB async limit, and producer INSERTs with hostile queue names or payloads. The
// controller stays healthy and bounded (a flood of wake-ups costs far fewer passes than notifications), the
// Invoke payload stays the invocation id alone, and the healthy pool keeps finishing its tasks exactly once.
// See docs/security.md (DB-*).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import pg from 'pg';
import { INVOCATIONS_CHANNEL, TASKS_CHANNEL } from '../../src/store/notifications.ts';
import { enqueueTasks } from '../../src/store/task-store.ts';
import { kubectl } from '../support/kube.ts';
import { applyPool, condition, eventually, getPool } from '../support/system.ts';
import { LIVE_ROWS_READ, loadPoolSnapshot } from '../../src/store/pool-snapshot.ts';
import {
  createDatabase,
  removePools,
  HEALTHY,
  HealthyProbe,
  NS,
  poolUid,
  readyReason,
  secret,
  securityStack,
  workerFunction,
  type SecurityStack,
} from './stack.ts';

const PAYLOAD_WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'payload-worker.ts');

/** The controller's count of reconcile passes so far, from /metrics. */
async function reconciles(stack: SecurityStack): Promise<number> {
  const text = await (await fetch(stack.metricsUrl)).text();
  let total = 0;
  for (const m of text.matchAll(/^ltp_reconcile_duration_seconds_count\{outcome="\w+"\} (\d+)$/gm)) total += Number(m[1]);
  return total;
}

/**
 * Sends 18,000 junk NOTIFYs (500 per statement) and 2,000 naming a real target, each in a transaction of its
 * own (Postgres folds identical notifications within one transaction; these must each reach the controller).
 */
async function flood(client: pg.Client, channel: string, target: string): Promise<void> {
  const shapes = [
    (i: number) => `no-such-queue-${i}`,
    (i: number) => `x'; DROP TABLE ltp.tasks; -- ${i}`,
    (i: number) => `очередь-🎯-${i}`,
    (i: number) => `${i}`.padEnd(7_999, '#'),
    (i: number) => `\\x00\\n${i}`,
  ];
  const junk = Array.from({ length: 18_000 }, (_, i) => shapes[i % shapes.length]?.(i) ?? '');
  for (let i = 0; i < junk.length; i += 500) {
    await client.query(`SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p`, [channel, junk.slice(i, i + 500)]);
  }
  for (let i = 0; i < 2_000; i += 1) await client.query(`SELECT pg_notify($1, $2)`, [channel, target]);
}

describe('security: hostile input through the database (NOTIFY floods, oversized payloads, producer INSERTs)', function () {
  this.timeout(180_000);
  let stack: SecurityStack;
  let probe: HealthyProbe;
  let producer: pg.Client;

  before(async function () {
    this.timeout(240_000);
    stack = await securityStack();
    probe = new HealthyProbe(stack).start();
    producer = new pg.Client({ connectionString: stack.database.url });
    await producer.connect();
  });

  after(async function () {
    this.timeout(60_000);
    await producer?.end();
    await removePools(NS.a, ['payloads']);
    await removePools(NS.b, ['forged-rows']);
  });

  it(`[DB-01] a flood of 20,000 junk NOTIFYs on ${TASKS_CHANNEL} (unknown queues, SQL, Unicode, 8 kB payloads, the healthy queue itself): the controller stays healthy and folds them`, async () => {
    const before = await reconciles(stack);
    await flood(producer, TASKS_CHANNEL, HEALTHY.queue);
    await probe.check();
    probe.start();
    const passes = (await reconciles(stack)) - before;
    // 2,000 of them named the healthy queue, each in a transaction of its own: the work queue folds them.
    expect(passes, 'reconcile passes of every pool during the flood').to.be.below(1_000);
  });

  it(`[DB-02] a flood of 20,000 junk NOTIFYs on ${INVOCATIONS_CHANNEL} (unknown uids, junk, the healthy pool's uid): the controller stays healthy and folds them`, async () => {
    const uid = JSON.parse((await kubectl(['get', 'ltp', HEALTHY.name, '-n', HEALTHY.namespace, '-o', 'json'])).stdout).metadata
      .uid as string;
    const before = await reconciles(stack);
    await flood(producer, INVOCATIONS_CHANNEL, uid);
    await probe.check();
    probe.start();
    expect((await reconciles(stack)) - before, 'reconcile passes of every pool during the flood').to.be.below(1_000);
  });

  describe('payloads over Lambda’s 1 MB async limit', () => {
    before(async function () {
      this.timeout(60_000);
      stack.lambda.register({ ...workerFunction('team-a-payload', stack.database.url), handler: PAYLOAD_WORKER });
      await applyPool({
        namespace: NS.a,
        name: 'payloads',
        functionName: 'team-a-payload',
        queue: 'team-a/payloads',
        maxConcurrency: 2,
        tasksPerInvocation: 2,
      });
      await readyReason(NS.a, 'payloads', 'Reconciled');
    });

    it('[DB-03] a 2 MiB task payload: enqueued as is, the Invoke carries only the invocation id, and the worker gets the whole payload from Postgres', async () => {
      const payload = { blob: 'p'.repeat(2 * 1024 * 1024) };
      const [id] = await enqueueTasks(stack.database.db, { queue: 'team-a/payloads', payloads: [payload] });
      const done = await eventually('the 2 MiB task done', async () => {
        const r = await stack.database.db.query<{ status: string; result: { payloadBytes: number } | null }>(
          `SELECT status, result FROM ltp.tasks WHERE id = $1`,
          [id],
        );
        return r.rows[0]?.status === 'done' ? r.rows[0] : undefined;
      });
      expect(done.result?.payloadBytes).to.equal(Buffer.byteLength(JSON.stringify(payload)));
      const events = stack.lambda.events('team-a-payload');
      expect(events.length).to.be.greaterThan(0);
      expect(Math.max(...events.map((e) => e.payloadBytes)), 'the largest Invoke payload, in bytes').to.be.below(64);
    });

    it('[DB-04] a 2 MiB task result: stored whole in the task row (Lambda never carries it)', async () => {
      const [id] = await enqueueTasks(stack.database.db, { queue: 'team-a/payloads', payloads: [{ resultBytes: 2 * 1024 * 1024 }] });
      const done = await eventually('the task with a 2 MiB result done', async () => {
        const r = await stack.database.db.query<{ status: string; bytes: number }>(
          `SELECT status, octet_length(result::text) AS bytes FROM ltp.tasks WHERE id = $1`,
          [id],
        );
        return r.rows[0]?.status === 'done' ? r.rows[0] : undefined;
      });
      expect(done.bytes).to.be.above(2 * 1024 * 1024);
    });
  });

  const hostileQueues: Array<[string, string]> = [
    ['SQL metacharacters', "healthy'; DELETE FROM ltp.tasks; --"],
    ['Unicode', 'очередь-🎯'],
    ['129 characters', 'q'.repeat(129)],
    ['an empty name', ''],
    ['a leading slash', '/healthy'],
  ];
  it(`[DB-05] producer INSERTs with hostile queue names (${hostileQueues.map(([what]) => what).join(', ')}): the database refuses each, stores nothing`, async () => {
    for (const [what, queue] of hostileQueues) {
      const error = await producer.query(`INSERT INTO ltp.tasks (queue, payload) VALUES ($1, '{}')`, [queue]).then(
        () => undefined,
        (e: unknown) => e as { code?: string; constraint?: string },
      );
      expect(error?.code, what).to.equal('23514');
      expect(error?.constraint, what).to.equal('tasks_queue_check');
    }
    const stored = await producer.query<{ n: number }>(`SELECT count(*)::int AS n FROM ltp.tasks WHERE queue = ANY($1)`, [
      hostileQueues.map(([, q]) => q),
    ]);
    expect(stored.rows[0]?.n).to.equal(0);
  });

  it('[DB-06] a producer INSERT with a payload that is not JSON: the database refuses it (22P02)', async () => {
    const error = await producer.query(`INSERT INTO ltp.tasks (queue, payload) VALUES ('healthy', $1)`, ['{"unterminated": ']).then(
      () => undefined,
      (e: unknown) => e as { code?: string },
    );
    expect(error?.code).to.equal('22P02');
  });

  it('[DB-07] a pool’s own database holding 5,000 live invocation rows written by its owner: a pass reads at most 2,000 of them, and the pool dispatches nothing more', async () => {
    const url = await createDatabase(stack, `sec_forged_${process.pid}`);
    await secret('forged-db', { url });
    await applyPool({
      namespace: NS.b,
      name: 'forged-rows',
      functionName: 'team-b-worker',
      queue: 'team-b/forged-rows',
      maxConcurrency: 2,
      tasksPerInvocation: 1,
      extraSpec: { database: { secretRef: { name: 'forged-db' } } },
    });
    await readyReason(NS.b, 'forged-rows', 'Reconciled');
    const uid = await poolUid(NS.b, 'forged-rows');
    const own = new pg.Pool({ connectionString: url, max: 2 });
    try {
      await own.query(
        `INSERT INTO ltp.invocations (pool_namespace, pool_name, pool_uid, queue, status, function_name, tasks_per_invocation,
                                      max_task_attempts, heartbeat_timeout_seconds, ready_at, running_at, heartbeat_at)
         SELECT $1, 'forged-rows', $2, 'team-b/forged-rows', 'running', 'team-b-worker', 1, 3, 3600, now(), now(), now()
           FROM generate_series(1, 5000)`,
        [NS.b, uid],
      );
      await enqueueTasks(own, { queue: 'team-b/forged-rows', payloads: [{}, {}, {}] });
      await eventually(
        'the status to count the 5,000 rows',
        async () => (await getPool(NS.b, 'forged-rows'))?.status.invocations?.running === 5000,
      );
      const snapshot = await loadPoolSnapshot(own, {
        poolUid: uid,
        queue: 'team-b/forged-rows',
        backlogLimit: 10,
        withNextDue: false,
        rejectionWithinMs: 60_000,
        outcomesLimit: 0,
        outcomesWithinSeconds: 3600,
        strandedLimit: 10,
      });
      expect(snapshot.live, 'live rows a pass reads').to.have.length(LIVE_ROWS_READ);
      await new Promise((r) => setTimeout(r, 3_000));
      const rows = await own.query<{ n: number }>(`SELECT count(*)::int AS n FROM ltp.invocations`);
      expect(rows.rows[0]?.n, 'no invocation dispatched past the forged ones').to.equal(5000);
      expect(condition(await getPool(NS.b, 'forged-rows'), 'Ready')?.status).to.equal('True');
    } finally {
      await own.end();
    }
  });

  it('the healthy pool kept dispatching and finishing its tasks, each exactly once, while this group ran', async () => {
    await probe.check();
  });
});
