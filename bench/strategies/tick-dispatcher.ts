// The loop that runs a benchmark dispatcher (naive, approximate, keda-accurate) against the real stack.
// Every tick it counts the created tasks of its queue, samples the true in-flight count into a lagging
// metric, decides with its pure formula, and starts that many invocations the way the product does: a row
// per invocation first (the worker SDK's protocol needs it, and it is how waste is counted the same way),
// then an asynchronous Invoke through the AWS SDK carrying the row's id. It never reads the rows to decide,
// except through the metric, 60 s late.
import type { Invoker } from '../../src/lambda/invoker.ts';
import type { Db } from '../../src/store/db.ts';
import { insertInvocations, markInvoked, markRejected } from '../../src/store/invocation-store.ts';
import { DISPATCH, type BenchDispatcher, type InFlight } from './dispatchers.ts';
import { LagView } from './lag-view.ts';

export interface TickDispatcherOptions {
  dispatcher: BenchDispatcher;
  db: Db;
  invoker: Invoker;
  queue: string;
  functionName: string;
  cap: number;
  tasksPerInvocation: number;
  tickMs: number;
  /** How late the in-flight metric is. */
  lagMs: number;
  /** Stop ticking once this resolves true (checked every tick). */
  finished(): Promise<boolean>;
  log(line: string): void;
}

export interface TickRecord {
  at: number;
  backlog: number;
  truth: InFlight;
  seen: InFlight;
  dispatched: number;
}

export interface TickDispatcherReport {
  ticks: TickRecord[];
  /** Invoke calls Lambda refused (none are expected: the benchmark injects no throttles). */
  rejected: number;
}

async function backlogOf(db: Db, queue: string): Promise<number> {
  const r = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ltp.tasks WHERE queue = $1 AND status = 'created'`, [queue]);
  return r.rows[0]?.n ?? 0;
}

/** What really is in flight: the ground truth that the lagging metric reports a minute later. */
async function inFlightOf(db: Db, queue: string): Promise<InFlight> {
  const r = await db.query<{ pending: number; running: number }>(
    `SELECT count(*) FILTER (WHERE status IN ('created', 'pending'))::int AS pending,
            count(*) FILTER (WHERE status IN ('ready', 'running'))::int AS running
       FROM ltp.invocations WHERE queue = $1 AND status IN ('created', 'pending', 'ready', 'running')`,
    [queue],
  );
  return { pending: r.rows[0]?.pending ?? 0, running: r.rows[0]?.running ?? 0 };
}

export async function runTickDispatcher(options: TickDispatcherOptions): Promise<TickDispatcherReport> {
  const { db, invoker, queue, functionName, cap, tasksPerInvocation } = options;
  const decide = DISPATCH[options.dispatcher];
  const metric = new LagView<InFlight>(options.lagMs, { pending: 0, running: 0 });
  const template = {
    pool: { namespace: 'bench', name: options.dispatcher, uid: `bench-${queue}` },
    queue,
    functionName,
    tasksPerInvocation,
    maxTaskAttempts: 3,
    heartbeatTimeoutSeconds: 60,
    retryInitialDelayMs: 1_000,
    retryMaxDelayMs: 10_000,
  };
  const report: TickDispatcherReport = { ticks: [], rejected: 0 };
  const first = Date.now();
  for (let tick = 0; ; tick += 1) {
    if (await options.finished()) return report;
    const at = Date.now();
    const [backlog, truth] = await Promise.all([backlogOf(db, queue), inFlightOf(db, queue)]);
    metric.record(at, truth);
    const seen = metric.read(at);
    const dispatched = decide({ backlog, seen, cap, tasksPerInvocation });
    if (dispatched > 0) {
      const ids = await insertInvocations(db, { template, count: dispatched, invokeAfterMs: 0 });
      const results = await invoker.invokeBatch({ name: functionName }, ids);
      const accepted = results.flatMap((r) => (r.accepted ? [{ id: r.id, ...(r.requestId ? { requestId: r.requestId } : {}) }] : []));
      await markInvoked(db, accepted);
      const refused = results.flatMap((r) => (r.accepted ? [] : [r]));
      if (refused.length > 0) {
        report.rejected += refused.length;
        const failure = refused[0]?.failure;
        options.log(`${options.dispatcher}/${queue}: ${refused.length} invokes refused (${failure?.code ?? 'unknown'})`);
        await markRejected(db, { ids: refused.map((r) => r.id), code: failure?.code ?? 'Refused', message: 'refused by Lambda' });
      }
    }
    report.ticks.push({ at, backlog, truth, seen, dispatched });
    // Ticks keep their schedule: a slow tick is followed at once by the next.
    const next = first + (tick + 1) * options.tickMs;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, next - Date.now())));
  }
}
