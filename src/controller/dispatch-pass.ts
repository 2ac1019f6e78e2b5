// One dispatch pass for one pool: its database half (pass-act.ts: gather under the pool's advisory lock,
// sweep, decide, insert, commit) and then its Lambda half (pass-invoke.ts: invoke, record the answers).
// The controller batches the database halves of many pools (pass-batcher.ts); a pass of its own, as the
// finalizer and the tests run it, waits for its pool's lock.
import type { FunctionRef } from '../api/types.ts';
import type { Invoker } from '../lambda/invoker.ts';
import type { Db } from '../store/db.ts';
import { markInvoked as markInvokedNow } from '../store/invocation-store.ts';
import { actOnPools, type ActedPass, type DispatchPassOptions, type PoolPassInput } from './pass-act.ts';
import { invokeActed, type InvokeOutcomes, type MarkInvoked } from './pass-invoke.ts';

export { templateFor, type DispatchPassOptions } from './pass-act.ts';
export type { InvokeOutcomes } from './pass-invoke.ts';

/** What the pass did in the database (`terminated` includes the re-invokes it ended as not allowed) and what Lambda answered. */
export interface DispatchPassResult extends Omit<ActedPass, 'byId' | 'heldUntilMs' | 'rest'> {
  invoke: InvokeOutcomes;
  /**
   * Why the rows the pass meant to insert after its commit are not there (it invoked only its first rows;
   * the next pass, soon, decides again), if they are not.
   */
  restError?: unknown;
  /** When to look at the pool again. */
  requeueAfterMs: number;
}

/** What a pass invokes as, and what it may invoke. */
export interface PassInvokeInput {
  /** The IAM role the pool's namespace invokes as (tenancy policy), if any. */
  roleArn?: string;
  /** See InvokeActedArgs.functionRefusal. */
  functionRefusal?: (fn: FunctionRef) => string | undefined;
}

export async function runDispatchPass(
  args: PoolPassInput & PassInvokeInput & { db: Db; invoker: Invoker; options: DispatchPassOptions },
): Promise<DispatchPassResult> {
  const [acted] = await actOnPools(args.db, [args], args.options, { lock: 'wait' });
  if (!acted || acted === 'busy') throw new Error(`the pass of pool ${args.pool.meta.uid} did not get its lock`);
  return completePass({ ...args, acted, markInvoked: (rows) => markInvokedNow(args.db, rows) });
}

/** The Lambda half of a pass whose database half is done, and the pass's result. */
export async function completePass(
  args: PoolPassInput &
    PassInvokeInput & { db: Db; invoker: Invoker; options: DispatchPassOptions; acted: ActedPass; markInvoked: MarkInvoked },
): Promise<DispatchPassResult> {
  const { acted, options } = args;
  const { invoke, refusedEnded, rest } = await invokeActed({
    db: args.db,
    invoker: args.invoker,
    acted,
    fn: args.pool.spec.function,
    ...(args.roleArn ? { roleArn: args.roleArn } : {}),
    ...(args.functionRefusal ? { functionRefusal: args.functionRefusal } : {}),
    markInvoked: args.markInvoked,
    random: options.random ?? Math.random,
  });
  // With the rows the pass inserted after its commit, if it did.
  const dispatched = rest ? [...acted.dispatched, ...rest.ids] : acted.dispatched;
  const retryAfter = invoke.deferred?.retryInMs ?? Number.POSITIVE_INFINITY;
  // Rows Lambda just accepted wake no one (the schema's wake-ups skip created -> pending): look again at
  // their start deadline, where a row that never started is orphaned.
  const startDeadline = dispatched.length > 0 && invoke.accepted > 0 ? args.pool.spec.startTimeoutSeconds * 1000 : Number.POSITIVE_INFINITY;
  // Tasks released by this pass's sweep were not in its backlog count: look again at once.
  const releasedNow = acted.releasedTasks > 0 ? options.limits.minRequeueMs : Number.POSITIVE_INFINITY;
  // Rows the pass decided but could not insert: the backlog still wants them.
  const restFailed = rest?.error !== undefined ? options.limits.minRequeueMs : Number.POSITIVE_INFINITY;
  const requeueAfterMs = Math.max(
    options.limits.minRequeueMs,
    Math.min(acted.plan.requeueAfterMs, retryAfter, releasedNow, acted.heldUntilMs, startDeadline, restFailed),
  );
  const { byId: _byId, heldUntilMs: _held, rest: _rest, ...done } = acted;
  return {
    ...done,
    dispatched,
    terminated: [...acted.terminated, ...refusedEnded],
    invoke,
    requeueAfterMs,
    ...(rest?.error !== undefined ? { restError: rest.error } : {}),
  };
}
