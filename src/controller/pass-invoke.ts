// The Lambda half of a dispatch pass, after its rows are committed: invoke the new rows at the spec's
// function and the due re-invokes where each row was sent, then record what Lambda answered on each row.
// The rows a large pass inserted after its commit (ActedPass.rest) join the invokes as soon as they are committed.
import type { FunctionRef } from '../api/types.ts';
import type { InvokeFailure } from '../lambda/errors.ts';
import type { InvokeTarget, Invoker } from '../lambda/invoker.ts';
import { invokeRetryDelayMs } from '../planner/invoke-retry.ts';
import type { Db } from '../store/db.ts';
import { deferInvoke, endInvocations, markRejected, type AcceptedInvoke, type LiveInvocation } from '../store/invocation-store.ts';
import type { ActedPass, RestRows } from './pass-act.ts';

export interface InvokeOutcomes {
  accepted: number;
  rejected?: { ids: number[]; failure: InvokeFailure };
  /** Throttled or transient: `unsent` were never sent because an earlier call of the batch failed. */
  deferred?: { ids: number[]; unsent: number[]; failure: InvokeFailure; retryInMs: number };
}

/** Records rows Lambda accepted (created -> pending); passes of many pools may share one statement. */
export type MarkInvoked = (accepted: readonly AcceptedInvoke[]) => Promise<void>;

export interface InvokeActedArgs {
  db: Db;
  invoker: Invoker;
  acted: ActedPass;
  /** The pool's function now (new rows go there). */
  fn: FunctionRef;
  /** The IAM role the pool's namespace invokes as (tenancy policy), if any. */
  roleArn?: string;
  /**
   * Why the pool may not invoke a function (the tenancy policy), or undefined when it may. A row is invoked
   * again at the function it names, and a row written into the database by someone else must not make the
   * controller invoke what the pool's namespace may not: such a row is ended, never invoked.
   */
  functionRefusal?: (fn: FunctionRef) => string | undefined;
  markInvoked: MarkInvoked;
  random: () => number;
}

/**
 * Invokes what the pass committed; returns what Lambda answered, the re-invokes ended as not allowed, and the
 * rows the pass inserted after its commit (invoked with the rest), if it did.
 */
export async function invokeActed(args: InvokeActedArgs): Promise<{ invoke: InvokeOutcomes; refusedEnded: number[]; rest?: RestRows }> {
  const { acted } = args;
  const targets: Target[] = [];
  const as = (fn: FunctionRef): InvokeTarget => (args.roleArn ? { ...fn, roleArn: args.roleArn } : fn);
  const due = acted.plan.reinvoke.map((id) => acted.byId.get(id)).filter((i): i is LiveInvocation => i !== undefined);
  const refusedRows = new Map<string, number[]>();
  const reinvoked = due.filter((row) => {
    const refusal = args.functionRefusal?.(row.function);
    if (refusal !== undefined) refusedRows.set(refusal, [...(refusedRows.get(refusal) ?? []), row.id]);
    return refusal === undefined;
  });
  const refusedEnded: number[] = [];
  for (const [message, ids] of refusedRows) {
    refusedEnded.push(
      ...(await endInvocations(args.db, { ids, from: ['created'], to: 'terminated', code: 'FunctionNotAllowed', message })),
    );
  }
  for (const row of reinvoked) {
    const target = targetFor(targets, as(row.function));
    target.ids.push(row.id);
    target.attempts.set(row.id, row.invokeAttempts);
  }
  if (acted.dispatched.length > 0) targetFor(targets, as(args.fn)).ids.push(...acted.dispatched);
  const invokeAll = (all: readonly Target[]) =>
    invokeRows({ db: args.db, invoker: args.invoker, targets: all, random: args.random, markInvoked: args.markInvoked });
  const restInvoked = acted.rest?.then(async (rest) => ({
    rest,
    invoke: rest.ids.length > 0 ? await invokeAll([{ fn: as(args.fn), ids: rest.ids, attempts: new Map() }]) : undefined,
  }));
  const [invoke, later] = await Promise.all([invokeAll(targets), restInvoked]);
  if (!later) return { invoke, refusedEnded };
  return { invoke: later.invoke ? mergeOutcomes(invoke, later.invoke) : invoke, refusedEnded, rest: later.rest };
}

/** The outcomes of two sets of invokes of one pass, as one. */
function mergeOutcomes(a: InvokeOutcomes, b: InvokeOutcomes): InvokeOutcomes {
  const merged: InvokeOutcomes = { accepted: a.accepted + b.accepted };
  const rejected = [a.rejected, b.rejected].filter((r) => r !== undefined);
  if (rejected[0]) merged.rejected = { ids: rejected.flatMap((r) => r.ids), failure: rejected[0].failure };
  const deferred = [a.deferred, b.deferred].filter((d) => d !== undefined);
  if (deferred[0])
    merged.deferred = {
      ids: deferred.flatMap((d) => d.ids),
      unsent: deferred.flatMap((d) => d.unsent),
      failure: deferred[0].failure,
      retryInMs: Math.min(...deferred.map((d) => d.retryInMs)),
    };
  return merged;
}

interface Target {
  fn: InvokeTarget;
  ids: number[];
  attempts: Map<number, number>;
}

function targetFor(targets: Target[], fn: InvokeTarget) {
  const same = (a: InvokeTarget, b: InvokeTarget) =>
    a.name === b.name && a.qualifier === b.qualifier && a.region === b.region && a.roleArn === b.roleArn;
  let target = targets.find((t) => same(t.fn, fn));
  if (!target) {
    target = { fn, ids: [], attempts: new Map() };
    targets.push(target);
  }
  return target;
}

async function invokeRows(args: {
  db: Db;
  invoker: Invoker;
  targets: readonly Target[];
  random: () => number;
  markInvoked: MarkInvoked;
}): Promise<InvokeOutcomes> {
  const outcomes: InvokeOutcomes = { accepted: 0 };
  const accepted: AcceptedInvoke[] = [];
  const deferred: Array<{ id: number; delayMs: number; attempted: boolean }> = [];
  for (const target of args.targets) {
    if (target.ids.length === 0) continue;
    const results = await args.invoker.invokeBatch(target.fn, target.ids);
    for (const result of results) {
      if (result.accepted) {
        accepted.push({ id: result.id, requestId: result.requestId, acceptedAt: result.acceptedAt });
        continue;
      }
      if (result.failure.kind === 'rejected' && result.sent) {
        (outcomes.rejected ??= { ids: [], failure: result.failure }).ids.push(result.id);
        continue;
      }
      // A row never sent after a rejection is not itself rejected: it waits, like a throttled one.
      const entry = (outcomes.deferred ??= { ids: [], unsent: [], failure: result.failure, retryInMs: Number.POSITIVE_INFINITY });
      (result.sent ? entry.ids : entry.unsent).push(result.id);
      const attempts = (target.attempts.get(result.id) ?? 0) + 1;
      const delayMs = invokeRetryDelayMs(result.failure, attempts, args.random);
      deferred.push({ id: result.id, delayMs, attempted: result.sent });
      entry.retryInMs = Math.min(entry.retryInMs, delayMs);
    }
  }
  await args.markInvoked(accepted);
  outcomes.accepted = accepted.length;
  if (outcomes.rejected) {
    const f = outcomes.rejected.failure;
    await markRejected(args.db, { ids: outcomes.rejected.ids, code: f.code, message: f.message });
  }
  if (outcomes.deferred) {
    const f = outcomes.deferred.failure;
    await deferInvoke(args.db, { rows: deferred, code: f.code, message: f.message });
  }
  return outcomes;
}
