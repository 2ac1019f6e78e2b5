// What the strategy benchmark writes (bench/results/strategies.json) and the table it puts in
// docs/strategies.md. Pure.
import type { Dispatcher } from './dispatchers.ts';
import type { RunFigures } from './stats.ts';
import type { Ideal, Profile } from './workload.ts';

export interface StrategyRun {
  profile: string;
  dispatcher: Dispatcher;
  figures: RunFigures;
  /** The most invocations running at once in each second since the first task: [[second, count], ...]. */
  timeline: Array<[number, number]>;
  /** The local runtime's own counters for the function, and the rows' own verdict, to cross-check the journal. */
  crossCheck: {
    lambdaAccepted: number;
    lambdaDuplicates: number;
    lambdaColdStarts: number;
    lambdaMaxConcurrent: number;
    rowsWithoutStartedTask: number;
    rowsByStatus: Record<string, number>;
  };
  /** Benchmark dispatchers only: ticks taken, and Invoke calls refused. */
  ticks?: number;
  rejected?: number;
}

export interface StrategiesReport {
  at: string;
  machine: { cpus: number; model?: string; memoryGiB: number; node: string };
  seed: number;
  tickMs: number;
  lagMs: number;
  /** Whether the dispatchers of a profile ran at the same time (each on its own queue and function). */
  concurrent: boolean;
  profiles: Array<Profile & { ideal: Ideal }>;
  runs: StrategyRun[];
  wallSeconds: number;
}

const fixed = (value: number, digits: number) => (Number.isFinite(value) ? value.toFixed(digits) : '–');

/** The comparison table, one row per profile and dispatcher, in Markdown. */
export function markdownTable(report: Pick<StrategiesReport, 'profiles' | 'runs'>): string {
  const header = [
    '| Profile | Dispatcher | Invocations | Wasted | Invocations per task | Peak running (cap) | Makespan s (ideal) | vs ideal | Task wait p50 / p99 s |',
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
          `${f.peakLive} (${f.cap})`,
          `${fixed(f.makespanSeconds, 1)} (${fixed(f.idealSeconds, 1)})`,
          `${f.makespanVsIdeal >= 1 ? '+' : ''}${fixed((f.makespanVsIdeal - 1) * 100, 0)}%`,
          `${fixed(f.waitP50Seconds, 1)} / ${fixed(f.waitP99Seconds, 1)}`,
        ];
      })
      .map((cells) => `| ${cells.join(' | ')} |`),
  );
  return [...header, ...rows].join('\n');
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
