// What a perfect dispatcher would score on a profile: a simulation of exact dispatch (the ledger's
// arithmetic) with no overhead at all: no pass time, no invoke time, no database round trip, instant
// reaction to every finish. The ideal N/(c·k)·(k·d + delay) assumes every invocation gets the mean start
// delay and the mean task times; with random ones the last invocations end unevenly, so even this
// dispatcher overshoots the ideal a little. The benchmark reports that overshoot beside the measured one,
// to tell the controller's own cost from the workload's tail. Pure: seeded, no clock.
import { mulberry32, type Random } from '../../dev/src/lambda-runtime/random.ts';
import { burstPlan, idealMakespan, type Profile } from './workload.ts';

type Event = { at: number; kind: 'arrive'; tasks: number[] } | { at: number; kind: 'start' } | { at: number; kind: 'end' };

const uniform = (random: Random, range: { min: number; max: number }) => range.min + random.next() * (range.max - range.min);

/** One simulated run: the makespan in ms, from the first burst to the last task's end. */
export function simulatePerfect(profile: Profile, seed: number): number {
  // Start delays from a stream of their own, apart from the task durations of burstPlan.
  const random = mulberry32(seed ^ 0x5bd1e995);
  const k = profile.tasksPerInvocation;
  const events: Event[] = burstPlan(profile, seed).map((b) => ({ at: b.atMs, kind: 'arrive', tasks: b.taskMs }));
  const backlog: number[] = [];
  let queued = 0;
  let live = 0;
  let lastEnd = 0;
  const push = (event: Event) => {
    // Kept sorted by time; equal times in insertion order.
    let i = events.length;
    while (i > 0 && (events[i - 1]?.at ?? 0) > event.at) i -= 1;
    events.splice(i, 0, event);
  };
  for (let event = events.shift(); event !== undefined; event = events.shift()) {
    const now = event.at;
    if (event.kind === 'arrive') backlog.push(...event.tasks);
    else if (event.kind === 'start') {
      queued -= 1;
      const leased = backlog.splice(0, k);
      push({ at: now + leased.reduce((sum, ms) => sum + ms, 0), kind: 'end' });
    } else {
      live -= 1;
      lastEnd = Math.max(lastEnd, now);
    }
    // The ledger's arithmetic (DESIGN.md §5), with nothing but queued and started invocations in flight.
    const want = Math.ceil(Math.max(0, backlog.length - queued * k) / k);
    const dispatch = Math.max(0, Math.min(want, profile.cap - live));
    for (let i = 0; i < dispatch; i += 1) {
      queued += 1;
      live += 1;
      push({ at: now + uniform(random, profile.startDelayMs), kind: 'start' });
    }
  }
  return lastEnd;
}

export interface PerfectScore {
  runs: number;
  /** Makespan ÷ ideal over the simulated runs. */
  mean: number;
  p50: number;
  p90: number;
}

export function perfectScore(profile: Profile, runs = 500): PerfectScore {
  const ideal = idealMakespan(profile).seconds * 1000;
  const ratios = Array.from({ length: runs }, (_, i) => simulatePerfect(profile, i + 1) / ideal).sort((a, b) => a - b);
  const at = (q: number) => ratios[Math.min(ratios.length - 1, Math.floor(q * ratios.length))] ?? Number.NaN;
  return { runs, mean: ratios.reduce((sum, r) => sum + r, 0) / ratios.length, p50: at(0.5), p90: at(0.9) };
}
