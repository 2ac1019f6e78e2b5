// The strategy benchmark's workload: tasks in bursts, the same for every dispatcher of a profile (the task
// durations come from a seeded stream), and the ideal makespan it is judged against. Pure.
import { mulberry32, uniformInt } from '../../dev/src/lambda-runtime/random.ts';

export interface Range {
  min: number;
  max: number;
}

export interface Profile {
  /** Short id, used in function, queue and pool names. */
  id: string;
  /** What a reader sees in the table. */
  label: string;
  tasks: number;
  burstSize: number;
  /** Time between bursts; short enough that the backlog never runs dry at full concurrency. */
  burstEveryMs: number;
  tasksPerInvocation: number;
  /** maxConcurrency of every dispatcher. */
  cap: number;
  /** Lambda's delay between accepting an event and starting it (uniform). */
  startDelayMs: Range;
  /** How long one task works (uniform). */
  taskMs: Range;
  /** Share of events Lambda delivers twice. */
  duplicateRate: number;
}

const COMMON = {
  tasks: 300,
  burstSize: 50,
  tasksPerInvocation: 3,
  cap: 10,
  taskMs: { min: 500, max: 1_500 },
  duplicateRate: 0.05,
} as const;

export const PROFILES: readonly Profile[] = [
  { ...COMMON, id: 'd5', label: 'start delay 1–5 s', burstEveryMs: 5_000, startDelayMs: { min: 1_000, max: 5_000 } },
  { ...COMMON, id: 'd30', label: 'start delay 1–30 s', burstEveryMs: 15_000, startDelayMs: { min: 1_000, max: 30_000 } },
];

export interface Burst {
  /** When, after the first burst, this one is inserted. */
  atMs: number;
  /** One entry per task: how long it works. */
  taskMs: number[];
}

/** The bursts of a profile. The same seed gives the same tasks. */
export function burstPlan(profile: Profile, seed: number): Burst[] {
  const random = mulberry32(seed);
  const bursts: Burst[] = [];
  for (let made = 0, i = 0; made < profile.tasks; i += 1) {
    const size = Math.min(profile.burstSize, profile.tasks - made);
    bursts.push({ atMs: i * profile.burstEveryMs, taskMs: Array.from({ length: size }, () => uniformInt(random.next(), profile.taskMs)) });
    made += size;
  }
  return bursts;
}

const mean = (range: Range) => (range.min + range.max) / 2;

export interface Ideal {
  seconds: number;
  /** The mean task duration d used, in seconds. */
  taskSeconds: number;
  /** The mean start delay used, in seconds. */
  delaySeconds: number;
}

/**
 * The ideal makespan N/(c·k)·(k·d + delay): N/(c·k) rounds of c invocations, each waiting its start
 * delay and then running k tasks of d seconds, with nothing lost between rounds. d and delay are means.
 */
export function idealMakespan(profile: Profile): Ideal {
  const taskSeconds = mean(profile.taskMs) / 1000;
  const delaySeconds = mean(profile.startDelayMs) / 1000;
  const k = profile.tasksPerInvocation;
  const seconds = (profile.tasks / (profile.cap * k)) * (k * taskSeconds + delaySeconds);
  return { seconds, taskSeconds, delaySeconds };
}
