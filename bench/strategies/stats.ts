// The strategy benchmark's figures for one dispatcher and profile, computed from the worker's own journal
// and the tasks' creation times. Pure: no I/O, no clock.
import type { JournalLine } from './journal.ts';

export interface Span {
  start: number;
  end: number;
}

export interface Delivery extends Span {
  invocation: number;
  /** The delivery's claim took the invocation (not a duplicate nor a late arrival). */
  claimed: boolean;
  leased: number;
  started: number;
  outcome: string;
}

/** Pairs each delivery's start with its end (one process runs one delivery at a time). Unended ones are left out. */
export function deliveries(lines: readonly JournalLine[]): Delivery[] {
  const open = new Map<string, number>();
  const out: Delivery[] = [];
  for (const line of lines) {
    if (line.kind !== 'delivery') continue;
    const key = `${line.pid}/${line.invocation}`;
    if (line.phase === 'start') {
      open.set(key, line.at);
      continue;
    }
    const start = open.get(key);
    if (start === undefined) continue;
    open.delete(key);
    out.push({
      invocation: line.invocation,
      start,
      end: line.at,
      claimed: line.outcome !== 'skipped' && line.outcome !== 'error',
      leased: line.leased,
      started: line.started,
      outcome: line.outcome,
    });
  }
  return out.sort((a, b) => a.start - b.start);
}

/** The most spans open at one instant. A span that ends when another starts does not overlap it. */
export function peakOverlap(spans: readonly Span[]): number {
  const edges = spans.flatMap((s) => [
    { at: s.start, d: 1 },
    { at: s.end, d: -1 },
  ]);
  edges.sort((a, b) => a.at - b.at || a.d - b.d);
  let open = 0;
  let peak = 0;
  for (const e of edges) {
    open += e.d;
    peak = Math.max(peak, open);
  }
  return peak;
}

/**
 * The most spans open at once within each step of `stepMs` from `from` to `to`: [[seconds since from, peak], ...].
 * For a chart: a peak between two samples is not lost.
 */
export function overlapSeries(spans: readonly Span[], args: { from: number; to: number; stepMs: number }): Array<[number, number]> {
  const { from, to, stepMs } = args;
  const steps = Math.max(1, Math.ceil((to - from) / stepMs));
  const series: Array<[number, number]> = [];
  for (let i = 0; i < steps; i += 1) {
    const lo = from + i * stepMs;
    const hi = lo + stepMs;
    // Spans that touch the step, clipped to it; their peak overlap is the step's peak.
    const inside = spans.filter((s) => s.start < hi && s.end > lo).map((s) => ({ start: Math.max(s.start, lo), end: Math.min(s.end, hi) }));
    series.push([(i * stepMs) / 1000, peakOverlap(inside)]);
  }
  return series;
}

/** The nearest-rank percentile (p in 0..100) of the values; NaN when there are none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1] ?? Number.NaN;
}

export interface RunFacts {
  lines: readonly JournalLine[];
  /** Every task of the run, with its creation time (epoch ms). */
  tasks: ReadonlyArray<{ id: number; createdAt: number }>;
  /** Invocations the dispatcher started (rows inserted and invoked). */
  invocations: number;
  /** Each invocation's life by its row: from the row's creation (before the invoke) to its finish. */
  invocationSpans: readonly Span[];
  cap: number;
  idealSeconds: number;
}

export interface RunFigures {
  tasks: number;
  /** Tasks whose handler ended at least once. */
  tasksDone: number;
  /** Tasks whose handler ran more than once (a lost lease given to another invocation). */
  tasksRunTwice: number;
  invocations: number;
  /** Invocations that started no task: they leased nothing, or never ran. */
  wasted: number;
  invocationsPerTask: number;
  /** Deliveries of the function, duplicates included. */
  deliveries: number;
  /** Deliveries whose claim found the invocation already taken (Lambda's duplicates). */
  duplicateDeliveries: number;
  /** Deliveries whose handler threw. */
  failedDeliveries: number;
  /**
   * The most invocations in flight at once, by their rows: created and not finished, whether still in
   * Lambda's queue or running. This is what maxConcurrency caps (DESIGN.md §5).
   */
  peakInFlight: number;
  /** The most invocations running at once (deliveries that claimed their invocation), from the journal. */
  peakLive: number;
  /** The same with every delivery counted, duplicates included. */
  peakDeliveries: number;
  cap: number;
  /** From the first task's creation to the last task's end. */
  makespanSeconds: number;
  idealSeconds: number;
  makespanVsIdeal: number;
  /** From a task's creation to its first start. */
  waitP50Seconds: number;
  waitP99Seconds: number;
}

export function runFigures(facts: RunFacts): RunFigures {
  const all = deliveries(facts.lines);
  const claimed = all.filter((d) => d.claimed);
  const productive = new Set(claimed.filter((d) => d.started > 0).map((d) => d.invocation));
  const firstStart = new Map<number, number>();
  const runs = new Map<number, number>();
  let lastEnd = Number.NEGATIVE_INFINITY;
  for (const line of facts.lines) {
    if (line.kind !== 'task') continue;
    if (line.phase === 'start') {
      if (!firstStart.has(line.task)) firstStart.set(line.task, line.at);
    } else {
      runs.set(line.task, (runs.get(line.task) ?? 0) + 1);
      lastEnd = Math.max(lastEnd, line.at);
    }
  }
  const createdAt = new Map(facts.tasks.map((t) => [t.id, t.createdAt]));
  const firstCreated = Math.min(...facts.tasks.map((t) => t.createdAt));
  const waits = [...firstStart].flatMap(([task, at]) => {
    const created = createdAt.get(task);
    return created === undefined ? [] : [(at - created) / 1000];
  });
  const makespanSeconds = (lastEnd - firstCreated) / 1000;
  return {
    tasks: facts.tasks.length,
    tasksDone: facts.tasks.filter((t) => runs.has(t.id)).length,
    tasksRunTwice: [...runs.values()].filter((n) => n > 1).length,
    invocations: facts.invocations,
    wasted: facts.invocations - productive.size,
    invocationsPerTask: facts.tasks.length === 0 ? Number.NaN : facts.invocations / facts.tasks.length,
    deliveries: all.length,
    duplicateDeliveries: all.filter((d) => d.outcome === 'skipped').length,
    failedDeliveries: all.filter((d) => d.outcome === 'error').length,
    peakInFlight: peakOverlap(facts.invocationSpans),
    peakLive: peakOverlap(claimed),
    peakDeliveries: peakOverlap(all),
    cap: facts.cap,
    makespanSeconds,
    idealSeconds: facts.idealSeconds,
    makespanVsIdeal: makespanSeconds / facts.idealSeconds,
    waitP50Seconds: percentile(waits, 50),
    waitP99Seconds: percentile(waits, 99),
  };
}
