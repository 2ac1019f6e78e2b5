// Live invocation rows for planner tests.
import type { LiveInvocationState } from '../../src/api/types.ts';
import type { LiveInvocationView } from '../../src/planner/sweep.ts';

export type RowTimes = { createdAt?: number; invokeAfter?: number; heartbeatAt?: number | null };

/**
 * A row factory for a test's clock: by default a row was created a second before `now`, is not yet due for an
 * invoke, (if started) was heard from at `now`, and was dispatched with the given heartbeat timeout.
 */
export function liveRows(now: number, defaultInvokeAfter: number, heartbeatTimeoutMs = 5_000) {
  return (id: number, status: LiveInvocationState, at: RowTimes = {}): LiveInvocationView => {
    const started = status === 'ready' || status === 'running';
    return {
      id,
      status,
      createdAt: at.createdAt ?? now - 1_000,
      invokeAfter: at.invokeAfter ?? defaultInvokeAfter,
      heartbeatAt: at.heartbeatAt === undefined ? (started ? now : null) : at.heartbeatAt,
      heartbeatTimeoutMs,
    };
  };
}
