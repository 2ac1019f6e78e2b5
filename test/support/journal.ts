// Judging from outside: what the worker really did (its file journal, and for a process that was killed
// mid-task, the runtime's record of when it died) and what the rows' own timestamps say.
import { readFile } from 'node:fs/promises';
import type { Queryable } from '../../src/store/db.ts';
import type { JournalLine } from '../fixtures/functions/file-journal-worker.ts';

export interface Execution {
  task: number;
  invocation: number;
  attempt: number;
  pid: number;
  start: number;
  /** When the handler stopped: its own end line, or the end of the delivery that was killed under it. */
  end: number;
  outcome: 'ok' | 'threw' | 'aborted' | 'killed' | 'unknown';
}

export interface DeliveryView {
  pid?: number;
  startedAt?: number;
  endedAt?: number;
  outcome?: string;
}

export async function readJournal(file: string): Promise<JournalLine[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as JournalLine);
}

/**
 * Pairs each start with its end. A start without an end belongs to a process that was killed (a crash or
 * a timeout): its end is when the runtime saw that delivery end. `now` closes what is still running.
 */
export function executions(lines: readonly JournalLine[], deliveries: readonly DeliveryView[], now = Date.now()): Execution[] {
  const open = new Map<string, JournalLine>();
  const out: Execution[] = [];
  const key = (l: JournalLine) => `${l.pid}/${l.task}/${l.invocation}`;
  for (const line of lines) {
    if (line.phase === 'start') {
      open.set(key(line), line);
      continue;
    }
    const start = open.get(key(line));
    if (!start) continue;
    open.delete(key(line));
    out.push({
      task: line.task,
      invocation: line.invocation,
      attempt: line.attempt,
      pid: line.pid,
      start: start.at,
      end: line.at,
      outcome: line.outcome ?? 'unknown',
    });
  }
  for (const start of open.values()) {
    const killed = deliveries.find(
      (d) => d.pid === start.pid && (d.startedAt ?? 0) <= start.at && d.endedAt !== undefined && d.endedAt >= start.at,
    );
    out.push({
      task: start.task,
      invocation: start.invocation,
      attempt: start.attempt,
      pid: start.pid,
      start: start.at,
      end: killed?.endedAt ?? now,
      outcome: killed ? 'killed' : 'unknown',
    });
  }
  return out.sort((a, b) => a.start - b.start);
}

/** Pairs of executions of one task whose spans overlap in time. */
export function overlappingExecutions(all: readonly Execution[]): Array<[Execution, Execution]> {
  const byTask = new Map<number, Execution[]>();
  for (const e of all) byTask.set(e.task, [...(byTask.get(e.task) ?? []), e]);
  const pairs: Array<[Execution, Execution]> = [];
  for (const list of byTask.values()) {
    const sorted = [...list].sort((a, b) => a.start - b.start);
    for (let i = 0; i < sorted.length; i += 1) {
      for (let j = i + 1; j < sorted.length; j += 1) {
        const a = sorted[i];
        const b = sorted[j];
        if (a && b && b.start < a.end) pairs.push([a, b]);
      }
    }
  }
  return pairs;
}

/**
 * The most invocations of each pool that were live (created, pending, ready or running) at one instant,
 * computed from the rows' own timestamps: each row is live from created_at until finished_at.
 */
export async function peakLiveByPool(db: Queryable): Promise<Map<string, number>> {
  const result = await db.query<{ pool: string; peak: number }>(
    `WITH spans AS (
       SELECT pool_namespace || '/' || pool_name AS pool, created_at AS t, 1 AS d FROM ltp.invocations
       UNION ALL
       SELECT pool_namespace || '/' || pool_name, finished_at, -1 FROM ltp.invocations WHERE finished_at IS NOT NULL),
     running AS (
       SELECT pool, sum(d) OVER (PARTITION BY pool ORDER BY t, d ROWS UNBOUNDED PRECEDING) AS live FROM spans)
     SELECT pool, max(live)::int AS peak FROM running GROUP BY pool`,
  );
  return new Map(result.rows.map((r) => [r.pool, r.peak]));
}
