// The decision trace of one pool: its decisions since a time, each with the invocations it started and how
// they ended. What `lambda-task-pool trace` prints; built from the ledger alone.
import type { Queryable } from '../store/db.ts';
import { decisionsSince, invocationsOfDecisions, type DecisionRow, type TracedInvocation } from '../store/decisions.ts';

export interface TraceEntry extends DecisionRow {
  invocations: TracedInvocation[];
  /** The started invocations by state, and the tasks they started. */
  ended: Record<string, number>;
  tasksStarted: number;
}

export async function loadTrace(db: Queryable, args: { poolUid: string; since: Date; limit: number }): Promise<TraceEntry[]> {
  const decisions = await decisionsSince(db, args);
  const invocations = await invocationsOfDecisions(
    db,
    decisions.map((d) => d.id),
  );
  const byDecision = new Map<number, TracedInvocation[]>();
  for (const inv of invocations) {
    const list = byDecision.get(inv.decisionId) ?? [];
    list.push(inv);
    byDecision.set(inv.decisionId, list);
  }
  return decisions.map((d) => {
    const own = byDecision.get(d.id) ?? [];
    const ended: Record<string, number> = {};
    for (const inv of own) ended[inv.status] = (ended[inv.status] ?? 0) + 1;
    return { ...d, invocations: own, ended, tasksStarted: own.reduce((n, i) => n + i.tasksStarted, 0) };
  });
}

/** The trace as text: one block per decision. */
export function formatTrace(entries: readonly TraceEntry[], options: { utc?: boolean } = {}): string {
  if (entries.length === 0) return 'no decisions in this window\n';
  const time = (d: Date) =>
    options.utc === false
      ? d.toLocaleString()
      : d
          .toISOString()
          .replace('T', ' ')
          .replace(/\.\d{3}Z$/, 'Z');
  const lines: string[] = [];
  for (const e of entries) {
    const i = e.inputs;
    const o = e.outcome;
    lines.push(
      `${time(e.decidedAt)}  decision ${e.id}: dispatched ${o.dispatched}` +
        (o.orphaned.length ? `, orphaned ${o.orphaned.length}` : '') +
        (o.terminated.length ? `, terminated ${o.terminated.length}` : '') +
        (o.reinvoked.length ? `, invoked again ${o.reinvoked.length}` : '') +
        (o.releasedTasks + o.failedTasks ? `, gave back ${o.releasedTasks} tasks (${o.failedTasks} failed)` : ''),
    );
    lines.push(
      `    saw: backlog ${i.backlogCapped ? '>=' : ''}${i.backlog}, queued ${i.queued}, ready ${i.ready}, running ${i.running}; ` +
        `want ${i.want}, headroom ${i.headroom} (maxConcurrency ${i.maxConcurrency}, ${i.tasksPerInvocation} per invocation)`,
    );
    lines.push(`    why: ${e.reason}`);
    if (e.invocations.length > 0) {
      const ids = e.invocations.map((inv) => inv.id);
      const range = ids.length === 1 ? `${ids[0]}` : `${Math.min(...ids)}..${Math.max(...ids)}`;
      const states = Object.entries(e.ended)
        .map(([state, n]) => `${n} ${state}`)
        .join(', ');
      lines.push(`    started ${e.invocations.length} (ids ${range}): ${states}; ${e.tasksStarted} tasks started`);
      for (const inv of e.invocations.filter((x) => x.errorCode)) {
        lines.push(`      invocation ${inv.id}: ${inv.status} (${inv.errorCode})`);
      }
    }
  }
  return lines.join('\n') + '\n';
}
