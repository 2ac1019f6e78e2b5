// The worker function every dispatcher of the strategy benchmark invokes: the real worker SDK, and a journal
// (JOURNAL_FILE) of each delivery and each task, written by the function itself with its own clock.
// Payload of a task: `ms`, how long it works. Environment: DATABASE_URL, JOURNAL_FILE.
import { appendFileSync } from 'node:fs';
import { taskWorker, type LambdaContextLike, type WorkerSummary } from '@lambda-task-pool/worker';
import type { JournalLine } from './journal.ts';

const file = process.env.JOURNAL_FILE;
if (!file) throw new Error('the strategy benchmark worker needs JOURNAL_FILE');

type Entry = JournalLine extends infer L ? (L extends JournalLine ? Omit<L, 'at' | 'pid'> : never) : never;

function write(entry: Entry): void {
  appendFileSync(file as string, `${JSON.stringify({ ...entry, at: Date.now(), pid: process.pid })}\n`);
}

const worker = taskWorker<{ ms?: number }>({
  minTimeToStartTaskMs: 1_000,
  async process(task, ctx) {
    write({ kind: 'task', phase: 'start', task: task.id, invocation: ctx.invocationId });
    await new Promise((resolve) => setTimeout(resolve, task.payload.ms ?? 0));
    write({ kind: 'task', phase: 'end', task: task.id, invocation: ctx.invocationId });
    return null;
  },
});

/** The invocation id of an event, for the journal only (the SDK parses and checks it). */
function invocationOf(event: unknown): number {
  const raw = typeof event === 'object' && event !== null ? (event as { invocationId?: unknown }).invocationId : undefined;
  return Number(raw ?? 0);
}

export async function handler(event: unknown, context?: LambdaContextLike): Promise<WorkerSummary> {
  const invocation = invocationOf(event);
  write({ kind: 'delivery', phase: 'start', invocation });
  try {
    const summary = await worker(event, context);
    write({ kind: 'delivery', phase: 'end', invocation, outcome: summary.outcome, leased: summary.leased, started: summary.started });
    return summary;
  } catch (error) {
    write({ kind: 'delivery', phase: 'end', invocation, outcome: 'error', leased: 0, started: 0 });
    throw error;
  }
}
