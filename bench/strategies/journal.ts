// The benchmark worker's journal: one JSON line per event, written by the worker itself (worker.ts), so the
// figures come from what the functions really did, not from what a dispatcher believes it started.
import { readFile } from 'node:fs/promises';

export type JournalLine =
  /** A delivery (one execution of the function) began. */
  | { kind: 'delivery'; phase: 'start'; invocation: number; at: number; pid: number }
  /**
   * A delivery ended. `outcome` is the worker SDK's: `skipped` when its claim changed no row (a duplicate
   * delivery, or an invocation already past its start), `error` when the handler threw.
   */
  | { kind: 'delivery'; phase: 'end'; invocation: number; at: number; pid: number; outcome: string; leased: number; started: number }
  /** One task's handler began or ended. */
  | { kind: 'task'; phase: 'start' | 'end'; task: number; invocation: number; at: number; pid: number };

export async function readJournal(file: string): Promise<JournalLine[]> {
  const text = await readFile(file, 'utf8').catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw error;
  });
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as JournalLine);
}
