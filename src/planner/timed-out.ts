// Which silent invocations Lambda stopped at the function's timeout: their last sign of life came about
// one function timeout after their start (the worker heartbeats every quarter of the heartbeat timeout,
// so the last beat lands within that much of the end). When beats are too sparse to tell a timeout from an
// early crash, the row is not called timed out. Pure.

export interface SilentRow {
  id: number;
  readyAt: Date | null;
  heartbeatAt: Date | null;
  heartbeatTimeoutSeconds: number;
}

/** Clock skew and write latency allowed around the timeout. */
const SLACK_MS = 2_000;

export function timedOutRows(
  rows: readonly SilentRow[],
  functionTimeoutSeconds: number | undefined,
): { ids: Set<number>; ranSeconds: number } {
  const ids = new Set<number>();
  let ranSeconds = 0;
  if (functionTimeoutSeconds === undefined) return { ids, ranSeconds };
  const timeoutMs = functionTimeoutSeconds * 1000;
  for (const row of rows) {
    if (!row.readyAt) continue;
    const ranMs = (row.heartbeatAt ?? row.readyAt).getTime() - row.readyAt.getTime();
    const beatMs = (row.heartbeatTimeoutSeconds * 1000) / 4;
    // Heartbeats too sparse for the timeout: an early crash and a timeout look alike, so say neither.
    if (beatMs + SLACK_MS > timeoutMs / 2) continue;
    if (ranMs >= timeoutMs - beatMs - SLACK_MS && ranMs <= timeoutMs + SLACK_MS) {
      ids.add(row.id);
      ranSeconds = Math.max(ranSeconds, Math.round(ranMs / 1000));
    }
  }
  return { ids, ranSeconds };
}
