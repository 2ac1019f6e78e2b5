// Gives memory back to the system once the controller goes quiet after a busy spell. V8 keeps the pages a
// burst's garbage took (a burst of 1,000 pools left 13 MB more anonymous memory that 60 s of quiet did not
// return), so an idle controller stayed at its peak. When the event loop has been quiet for a few seconds
// and the resident set has grown since the last release, one full collection of the "last resort" kind
// (V8's CollectAllAvailableGarbage: it shrinks the young generation and unmaps free pages) runs. It takes
// 80 ms at 1,000 idle pools and 222 ms after their burst (370 -> 163 MB), only when nothing else is
// running, at most once per `minGrowthBytes` of growth. That collection also throws compiled code away, so
// the burst after it starts cold: bursts that came back every few seconds each followed a release and ran at
// about 0.6 of their rate (docs/scale.md, 2026-12-07). So the quiet a release waits for doubles each time the
// loop gets busy again soon after one, and halves again after a release that a long quiet followed.
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { Logger } from './logger.ts';

export interface MemoryReleasePolicy {
  /** The event loop counts as quiet below this share of busy time in a sample. */
  quietUtilization: number;
  /** Quiet samples in a row before a release, at first and after long quiet. */
  quietSamples: number;
  /** The most quiet samples in a row a release comes to wait for when bursts keep following releases. */
  maxQuietSamples: number;
  /** Growth of the resident set since the last release (or start) that makes a release worth its pause. */
  minGrowthBytes: number;
}

export const MEMORY_RELEASE_DEFAULTS: MemoryReleasePolicy & { sampleMs: number } = {
  sampleMs: 1_000,
  quietUtilization: 0.1,
  quietSamples: 3,
  maxQuietSamples: 60,
  minGrowthBytes: 8 * 1024 * 1024,
};

/**
 * A release is judged over this many times the quiet it waited for: a busy sample within them means the
 * loop was not done (the quiet needed doubles); none means it was (the quiet needed halves).
 */
const JUDGED_OVER = 4;

export interface MemoryReleaseState {
  /** Quiet samples in a row so far. */
  quiet: number;
  /** The resident set right after the last release, or at start. */
  baselineBytes: number;
  /** Quiet samples in a row a release waits for now; policy.quietSamples when unset. */
  needed?: number;
  /** Samples since the last release, while it is being judged (JUDGED_OVER). */
  sinceRelease?: number;
}

/** One sample's decision: the state after it, and whether to release now. */
export function nextMemoryRelease(
  state: MemoryReleaseState,
  sample: { utilization: number; rssBytes: number },
  policy: MemoryReleasePolicy,
): { state: MemoryReleaseState; release: boolean } {
  // The resident set may shrink on its own; growth is measured from the lowest point seen since.
  const baselineBytes = Math.min(state.baselineBytes, sample.rssBytes);
  const busy = sample.utilization >= policy.quietUtilization;
  let needed = state.needed ?? policy.quietSamples;
  let sinceRelease = state.sinceRelease === undefined ? undefined : state.sinceRelease + 1;
  if (sinceRelease !== undefined) {
    if (busy) {
      // The loop got busy again soon after the last release: wait for longer quiet before the next one.
      needed = Math.min(policy.maxQuietSamples, needed * 2);
      sinceRelease = undefined;
    } else if (sinceRelease >= JUDGED_OVER * needed) {
      needed = Math.max(policy.quietSamples, Math.floor(needed / 2));
      sinceRelease = undefined;
    }
  }
  const quiet = busy ? 0 : state.quiet + 1;
  const release = quiet >= needed && sample.rssBytes - baselineBytes >= policy.minGrowthBytes;
  const next: MemoryReleaseState = { quiet: release ? 0 : quiet, baselineBytes, needed };
  if (release) next.sinceRelease = 0;
  else if (sinceRelease !== undefined) next.sinceRelease = sinceRelease;
  return { state: next, release };
}

type GcFunction = (options: { type: 'major'; execution: 'async'; flavor: 'last-resort' }) => Promise<void>;

/**
 * V8's gc() from a context of its own: the flag makes V8 install it in contexts created after it is set,
 * so the main context's global object stays as it was (Node documents this use of setFlagsFromString).
 */
function lastResortGc(): GcFunction {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as GcFunction;
}

export interface MemoryRelease {
  stop(): void;
}

/** Samples the event loop and the resident set every `sampleMs` and releases memory when `nextMemoryRelease` says so. */
export function startMemoryRelease(options: {
  logger: Logger;
  onRelease?: (freedBytes: number) => void;
  policy?: Partial<typeof MEMORY_RELEASE_DEFAULTS>;
}): MemoryRelease {
  const policy = { ...MEMORY_RELEASE_DEFAULTS, ...options.policy };
  const gc = lastResortGc();
  let state: MemoryReleaseState = { quiet: 0, baselineBytes: process.memoryUsage.rss() };
  let last: EventLoopUtilization = performance.eventLoopUtilization();
  let releasing = false;
  const timer = setInterval(() => {
    if (releasing) return;
    const now = performance.eventLoopUtilization();
    const utilization = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    const rssBytes = process.memoryUsage.rss();
    const next = nextMemoryRelease(state, { utilization, rssBytes }, policy);
    state = next.state;
    if (!next.release) return;
    releasing = true;
    const started = performance.now();
    gc({ type: 'major', execution: 'async', flavor: 'last-resort' })
      .then(() => {
        const after = process.memoryUsage.rss();
        state = { ...state, quiet: 0, baselineBytes: after };
        options.onRelease?.(Math.max(0, rssBytes - after));
        options.logger.debug('memory released after a busy spell', {
          rssBeforeMb: Math.round(rssBytes / 1e5) / 10,
          rssAfterMb: Math.round(after / 1e5) / 10,
          ms: Math.round(performance.now() - started),
        });
      })
      .catch((error: unknown) => options.logger.warn('memory release failed', { error: String(error) }))
      .finally(() => {
        releasing = false;
        last = performance.eventLoopUtilization();
      });
  }, policy.sampleMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
