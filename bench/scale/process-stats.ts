// Resident memory and CPU time of a process, and the times of one of its threads, from /proc (Linux).
import { readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

/** The fields of /proc/PID/status given in kB, as MB with one decimal. */
async function statusMb(pid: number, ...fields: string[]): Promise<number[]> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(status)?.[1] ?? Number.NaN);
  return fields.map((field) => Math.round((kb(field) / 1024) * 10) / 10);
}

/** User and system CPU seconds from the text of /proc/PID/stat (or of a thread's, /proc/PID/task/TID/stat). */
function statUserSystemSeconds(stat: string): { user: number; system: number } {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 }; // utime, stime; CLK_TCK is 100 on Linux
}

/** User + system CPU seconds from the text of /proc/PID/stat. */
function statCpuSeconds(stat: string): number {
  const { user, system } = statUserSystemSeconds(stat);
  return user + system;
}

/** Resident set size in MB. */
export async function rssMb(pid: number): Promise<number> {
  const [rss] = await statusMb(pid, 'VmRSS');
  return rss ?? Number.NaN;
}

/**
 * The resident set's two parts in MB: anonymous memory (V8's heap, malloc's arenas: what the process itself
 * allocated) and file-backed pages (mostly Node's own binary, which the kernel may drop when they go cold;
 * this machine runs DAMON with a `pageout` scheme). Which part moves from run to run tells where to look.
 */
export async function rssPartsMb(pid: number): Promise<{ anonMb: number; fileMb: number }> {
  const [anon = Number.NaN, file = Number.NaN, shmem = Number.NaN] = await statusMb(pid, 'RssAnon', 'RssFile', 'RssShmem');
  return { anonMb: anon, fileMb: Math.round((file + shmem) * 10) / 10 };
}

/** User + system CPU seconds the process has used so far. */
export async function cpuSeconds(pid: number): Promise<number> {
  return statCpuSeconds(await readFile(`/proc/${pid}/stat`, 'utf8'));
}

/** The share of one core the process used over `ms`. */
export async function cpuShare(pid: number, ms: number): Promise<number> {
  const before = await cpuSeconds(pid);
  const started = performance.now();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const after = await cpuSeconds(pid);
  return (after - before) / ((performance.now() - started) / 1000);
}

/** CPU seconds the whole machine has spent busy so far (every core: all but idle and iowait), from /proc/stat. */
export async function machineBusySeconds(): Promise<number> {
  const stat = await readFile('/proc/stat', 'utf8');
  const fields = (/^cpu\s+(.*)$/m.exec(stat)?.[1] ?? '').trim().split(/\s+/).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
  return (user + nice + system + irq + softirq + steal) / 100;
}

/**
 * Waits until the machine is quiet: over the last `windowMs` it used less than `cores` of its cores, and the
 * process `pid` (the controller) at most one clock tick. Returns how long that took; after `maxMs` it returns
 * anyway, with a negative figure, so a machine that never quiets shows in the results instead of hanging them.
 */
export async function untilQuiet(pid: number, options: { windowMs?: number; cores?: number; maxMs?: number } = {}): Promise<number> {
  const { windowMs = 250, cores = 0.3, maxMs = 15_000 } = options;
  const started = performance.now();
  for (;;) {
    const [machine, own] = [await machineBusySeconds(), await cpuSeconds(pid)];
    await new Promise((resolve) => setTimeout(resolve, windowMs));
    const busy = (await machineBusySeconds()) - machine;
    const ownBusy = (await cpuSeconds(pid)) - own;
    const waited = performance.now() - started;
    if (busy < (cores * windowMs) / 1000 && ownBusy <= 0.01) return waited;
    if (waited > maxMs) return -waited;
  }
}

/**
 * CPU seconds each process has used so far, keyed by pid and named by its command (a Node process by its
 * script, as every Node process's command reads MainThread).
 */
export async function cpuSecondsByProcess(): Promise<Map<string, { name: string; seconds: number }>> {
  const byPid = new Map<string, { name: string; seconds: number }>();
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
      let name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')).replace(/[-/:].*$/, '');
      if (name === 'MainThread' || name === 'node') {
        const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
        name = `node ${path.basename(argv.findLast((a) => /\.(m?[jt]s)$/.test(a)) ?? '?')}`;
      }
      byPid.set(pid, { name, seconds: statCpuSeconds(stat) });
    } catch {
      // it ended meanwhile
    }
  }
  return byPid;
}

/** CPU ms per process name between two readings of cpuSecondsByProcess, the busiest first (those that used none left out). */
export function cpuMsBetween(
  before: Map<string, { name: string; seconds: number }>,
  after: Map<string, { name: string; seconds: number }>,
): Record<string, number> {
  const byName = new Map<string, number>();
  for (const [pid, { name, seconds }] of after) byName.set(name, (byName.get(name) ?? 0) + seconds - (before.get(pid)?.seconds ?? 0));
  const used = [...byName].map(([name, seconds]) => [name, Math.round(seconds * 1000)] as const);
  return Object.fromEntries(used.filter(([, ms]) => ms > 0).sort((a, b) => b[1] - a[1]));
}

/**
 * One thread's time so far, in ms: on a core and waiting on a run queue for one (/proc/.../schedstat, in ns),
 * and the user and system parts of the first (/proc/.../stat, in clock ticks of 10 ms). Whether a client's
 * main thread ran slower code or waited for a core: a busy thread whose on-core time is close to the wall
 * clock, with little run-queue wait, was never short of a core.
 */
export interface ThreadTimes {
  onCoreMs: number;
  runQueueMs: number;
  userMs: number;
  systemMs: number;
}

/** The times of the thread at `dir`: `/proc/thread-self` (the calling thread), or `/proc/PID/task/TID`. */
export function threadTimes(dir = '/proc/thread-self'): ThreadTimes {
  const [onCoreNs = Number.NaN, runQueueNs = Number.NaN] = readFileSync(`${dir}/schedstat`, 'utf8').trim().split(' ').map(Number);
  const { user, system } = statUserSystemSeconds(readFileSync(`${dir}/stat`, 'utf8'));
  return { onCoreMs: onCoreNs / 1e6, runQueueMs: runQueueNs / 1e6, userMs: user * 1000, systemMs: system * 1000 };
}

/** The times a thread used between two readings, in whole ms. */
export function threadTimesBetween(before: ThreadTimes, after: ThreadTimes): ThreadTimes {
  const ms = (key: keyof ThreadTimes) => Math.round(after[key] - before[key]);
  return { onCoreMs: ms('onCoreMs'), runQueueMs: ms('runQueueMs'), userMs: ms('userMs'), systemMs: ms('systemMs') };
}
