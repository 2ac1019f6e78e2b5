// What the strategy benchmark writes (bench/results/strategies.json) and the table it puts in
// docs/strategies.md. Pure.
import type { Dispatcher } from './dispatchers.ts';
import type { PerfectScore } from './perfect.ts';
import type { RunFigures } from './stats.ts';
import type { Ideal, Profile } from './workload.ts';

export interface StrategyRun {
  profile: string;
  dispatcher: Dispatcher;
  figures: RunFigures;
  /** The most invocations running at once in each second since the first task: [[second, count], ...]. */
  timeline: Array<[number, number]>;
  /** The local runtime's own counters for the function (its warm-up left out), and the rows' own verdict, to cross-check the journal. */
  crossCheck: {
    lambdaAccepted: number;
    lambdaDuplicates: number;
    lambdaColdStarts: number;
    /** The runtime's most concurrent executions of the function, warm-up (cap processes) included. */
    lambdaMaxConcurrent: number;
    rowsWithoutStartedTask: number;
    rowsByStatus: Record<string, number>;
  };
  /** The machine's load average (1, 5, 15 min) when the run began and ended: other work on it shows here. */
  load: { before: number[]; after: number[] };
  /** Benchmark dispatchers only: ticks taken, and Invoke calls refused. */
  ticks?: number;
  rejected?: number;
}

export type ProfileReport = Profile & { ideal: Ideal; perfect: PerfectScore };

export interface StrategiesReport {
  at: string;
  machine: { cpus: number; model?: string; memoryGiB: number; node: string };
  /** The local runtime's account concurrency (STRATEGIES_LAMBDA_CONCURRENCY): what the machine hosts at once. */
  lambdaConcurrencyLimit: number;
  seed: number;
  tickMs: number;
  lagMs: number;
  /** Whether the dispatchers of a profile ran at the same time (each on its own queue and function). */
  concurrent: boolean;
  profiles: ProfileReport[];
  runs: StrategyRun[];
  wallSeconds: number;
}

const fixed = (value: number, digits: number) => (Number.isFinite(value) ? value.toFixed(digits) : '–');
const percent = (ratio: number) => `${ratio >= 1 ? '+' : ''}${fixed((ratio - 1) * 100, 0)}%`;
const seconds = (ms: number) => fixed(ms / 1000, 0);

/** The workload of each profile, its ideal makespan, and what a perfect dispatcher would score on it. */
export function profilesTable(profiles: readonly ProfileReport[]): string {
  const header = [
    '| Profile | Tasks | Bursts | Start delay s | Task s | Ideal makespan s | Perfect dispatcher vs ideal (mean, p90) |',
    '| --- | ---: | --- | --- | --- | ---: | ---: |',
  ];
  const rows = profiles.map((p) => [
    p.label,
    String(p.tasks),
    `${p.burstSize} every ${seconds(p.burstEveryMs)} s`,
    `${fixed(p.startDelayMs.min / 1000, 0)}–${fixed(p.startDelayMs.max / 1000, 0)} (mean ${fixed(p.ideal.delaySeconds, 1)})`,
    `${fixed(p.taskMs.min / 1000, 1)}–${fixed(p.taskMs.max / 1000, 1)} (mean ${fixed(p.ideal.taskSeconds, 1)})`,
    fixed(p.ideal.seconds, 1),
    `${percent(p.perfect.mean)}, ${percent(p.perfect.p90)}`,
  ]);
  return [...header, ...rows.map((cells) => `| ${cells.join(' | ')} |`)].join('\n');
}

/** The comparison table, one row per profile and dispatcher, in Markdown. */
export function runsTable(report: Pick<StrategiesReport, 'profiles' | 'runs'>): string {
  const header = [
    '| Profile | Dispatcher | Invocations | Wasted | Invocations per task | Peak in flight / running (cap) | Makespan s (ideal) | vs ideal | Task wait p50 / p99 s |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  const rows = report.profiles.flatMap((profile) =>
    report.runs
      .filter((run) => run.profile === profile.id)
      .map((run) => {
        const f = run.figures;
        return [
          profile.label,
          `\`${run.dispatcher}\``,
          String(f.invocations),
          String(f.wasted),
          fixed(f.invocationsPerTask, 2),
          `${f.peakInFlight} / ${f.peakLive} (${f.cap})`,
          `${fixed(f.makespanSeconds, 1)} (${fixed(f.idealSeconds, 1)})`,
          percent(f.makespanVsIdeal),
          `${fixed(f.waitP50Seconds, 1)} / ${fixed(f.waitP99Seconds, 1)}`,
        ];
      })
      .map((cells) => `| ${cells.join(' | ')} |`),
  );
  return [...header, ...rows].join('\n');
}

/** Both tables, as they go into docs/strategies.md. */
export function markdownTables(report: Pick<StrategiesReport, 'profiles' | 'runs'>): string {
  return `${runsTable(report)}\n\n${profilesTable(report.profiles)}`;
}

export const TABLE_START = '<!-- strategies-table:start -->';
export const TABLE_END = '<!-- strategies-table:end -->';

/** Replaces what lies between the table markers of a document; the document must have both. */
export function replaceTable(document: string, table: string): string {
  const start = document.indexOf(TABLE_START);
  const end = document.indexOf(TABLE_END);
  if (start < 0 || end < start) throw new Error(`the document has no ${TABLE_START} ... ${TABLE_END} section`);
  return `${document.slice(0, start + TABLE_START.length)}\n${table}\n${document.slice(end)}`;
}
