// What `retry` and `cancel` did (or, in a dry run, would do) to each task they were given, and why not when
// they did not. Pure: the commands pass what the database answered.
import type { TaskState } from '../api/types.ts';
import type { TaskStanding } from '../store/task-store.ts';

export type RetryOutcome =
  | { id: number; outcome: 'retried'; retryId: number }
  | { id: number; outcome: 'would-retry' }
  | { id: number; outcome: 'skipped'; reason: string };

export type CancelOutcome =
  { id: number; outcome: 'cancelled' } | { id: number; outcome: 'would-cancel' } | { id: number; outcome: 'skipped'; reason: string };

const UNFINISHED: readonly TaskState[] = ['created', 'leased'];

/**
 * `standings` are read after the re-run (or instead of it, in a dry run: `rerun` undefined); `rerun` maps an
 * old task id to the id of the new row that re-runs it.
 */
export function retryOutcomes(args: {
  requested: readonly number[];
  standings: readonly TaskStanding[];
  rerun: ReadonlyMap<number, number> | undefined;
}): RetryOutcome[] {
  const byId = new Map(args.standings.map((s) => [s.id, s]));
  return args.requested.map((id): RetryOutcome => {
    const retryId = args.rerun?.get(id);
    if (retryId !== undefined) return { id, outcome: 'retried', retryId };
    const task = byId.get(id);
    if (!task) return { id, outcome: 'skipped', reason: 'no such task' };
    if (UNFINISHED.includes(task.status))
      return { id, outcome: 'skipped', reason: `it is ${task.status}, not finished: only failed or cancelled tasks are re-run` };
    if (task.status === 'done') return { id, outcome: 'skipped', reason: 'it is done: only failed or cancelled tasks are re-run' };
    if (task.retriedBy !== null)
      return { id, outcome: 'skipped', reason: `already re-run as task ${task.retriedBy} (re-run that one to try again)` };
    if (args.rerun === undefined) return { id, outcome: 'would-retry' };
    return { id, outcome: 'skipped', reason: 'it changed while being re-run: look again with lambda-task-pool tasks' };
  });
}

/**
 * `standings` are read after the cancel (or instead of it, in a dry run: `cancelled` undefined); `cancelled`
 * holds the ids this call cancelled.
 */
export function cancelOutcomes(args: {
  requested: readonly number[];
  standings: readonly TaskStanding[];
  cancelled: ReadonlySet<number> | undefined;
}): CancelOutcome[] {
  const byId = new Map(args.standings.map((s) => [s.id, s]));
  return args.requested.map((id): CancelOutcome => {
    if (args.cancelled?.has(id)) return { id, outcome: 'cancelled' };
    const task = byId.get(id);
    if (!task) return { id, outcome: 'skipped', reason: 'no such task' };
    switch (task.status) {
      case 'created':
        return args.cancelled === undefined
          ? { id, outcome: 'would-cancel' }
          : { id, outcome: 'skipped', reason: 'it changed while being cancelled: look again with lambda-task-pool tasks' };
      case 'leased':
        return { id, outcome: 'skipped', reason: 'it is leased: a worker is on it, and it ends done or failed' };
      case 'cancelled':
        return { id, outcome: 'skipped', reason: 'it was already cancelled' };
      case 'done':
      case 'failed':
        return { id, outcome: 'skipped', reason: `it has finished (${task.status})` };
    }
  });
}
