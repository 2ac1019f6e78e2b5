// `lambda-task-pool cancel`: ends tasks that are still waiting (created) as cancelled, with a reason. A task
// a worker leases at the same moment is not cancelled; a leased task is never cancelled (it ends done or failed).
import type { Command } from 'commander';
import { plural } from '../../ops/plural.ts';
import { cancelCreatedTasks, cancelTasks, findCreatedTasks, taskStandings } from '../../store/task-store.ts';
import { UsageError, defineCommand } from '../command.ts';
import { withDatabase } from '../database.ts';
import type { Db } from '../../store/db.ts';
import { databaseUrlOption, outputOption, positiveInt, queueName, taskIds, type OutputFormat } from '../options.ts';
import { json, table } from '../output.ts';
import { cancelOutcomes, type CancelOutcome } from '../task-outcomes.ts';

const MAX_REASON = 2000;
/** Tasks cancelled per statement (cancelInChunks). */
const CHUNK = 10_000;

interface CancelOptions {
  queue?: string;
  reason: string;
  limit: number;
  dryRun?: boolean;
  output: OutputFormat;
}

export default defineCommand({
  group: 'tasks',
  register: (program) =>
    program
      .command('cancel')
      .summary('end waiting tasks, with a reason')
      .description(
        'End tasks that are still waiting (created, due or delayed) as cancelled, with a reason kept on the task; no worker will ' +
          "lease them. Name them by ID, or take a queue's waiting tasks with --queue, first due first, up to --limit. A task a worker " +
          'leases at that moment is left to it. A cancelled task can be re-run with lambda-task-pool retry.',
      )
      .argument('[ids...]', 'the tasks to cancel', taskIds)
      .requiredOption('--reason <text>', 'why: kept on each task (cancel_reason) and shown by lambda-task-pool tasks')
      .option('--queue <name>', 'cancel the waiting tasks of this queue (with IDs: only those of this queue)', queueName)
      .option('--limit <n>', 'with --queue: cancel at most this many', positiveInt(1_000_000), 1000)
      .option('--dry-run', 'show what would be cancelled, and change nothing')
      .addOption(databaseUrlOption())
      .addOption(outputOption())
      .action(async (ids: number[], options: CancelOptions, command: Command) => {
        const byId = ids.length > 0;
        if (!byId && options.queue === undefined) throw new UsageError('name the tasks to cancel by ID, or select them with --queue NAME');
        const reason = options.reason.trim();
        if (reason === '') throw new UsageError('--reason must say why');
        if (reason.length > MAX_REASON) throw new UsageError(`--reason is limited to ${MAX_REASON} characters`);
        const outcomes = await withDatabase(command, async (db): Promise<CancelOutcome[]> => {
          if (byId) {
            const requested = [...new Set(ids)];
            if (options.queue !== undefined) {
              const wrongQueue = (await taskStandings(db, requested)).filter((s) => s.queue !== options.queue).map((s) => s.id);
              if (wrongQueue.length > 0) throw new UsageError(`not on queue ${options.queue}: task ${wrongQueue.join(', ')}`);
            }
            const cancelled = options.dryRun ? undefined : new Set(await cancelTasks(db, { ids: requested, reason }));
            return cancelOutcomes({ requested, standings: await taskStandings(db, requested), cancelled });
          }
          const queue = options.queue ?? '';
          if (options.dryRun) {
            const requested = await findCreatedTasks(db, { queue, limit: options.limit });
            return cancelOutcomes({ requested, standings: await taskStandings(db, requested), cancelled: undefined });
          }
          const cancelled = await cancelInChunks(db, queue, options.limit, reason);
          return cancelled.map((id) => ({ id, outcome: 'cancelled' }));
        });
        print(outcomes, options);
        const skipped = outcomes.filter((o) => o.outcome === 'skipped').length;
        if (byId && skipped > 0) throw new Error(`${plural(skipped, 'task was', 'tasks were')} not cancelled`);
      }),
});

/**
 * Cancels up to `limit` waiting tasks of `queue`, CHUNK at a time, each chunk committed on its own. One
 * statement for all of them held up to a million rows locked, made workers' leases wait a second or more while
 * they skipped them, and ran past the 30 s statement timeout: a million tasks of 1 KB cancelled nothing.
 */
async function cancelInChunks(db: Db, queue: string, limit: number, reason: string): Promise<number[]> {
  const cancelled: number[] = [];
  try {
    while (cancelled.length < limit) {
      const ask = Math.min(CHUNK, limit - cancelled.length);
      const got = await cancelCreatedTasks(db, { queue, limit: ask, reason });
      cancelled.push(...got);
      if (got.length < ask) break;
    }
  } catch (error) {
    if (cancelled.length === 0) throw error;
    const why = error instanceof Error ? error.message : String(error);
    throw new Error(
      `cancelled ${plural(cancelled.length, 'task')} of queue ${queue} (committed) before it failed: ${why}. ` +
        `The batch that failed (up to ${Math.min(CHUNK, limit - cancelled.length)} tasks) may have committed all the same if the connection was lost as it did: ` +
        `count the queue's tasks cancelled with this reason (lambda-task-pool tasks --queue ${queue} --status cancelled) before you cancel the rest, at most ${limit - cancelled.length} more`,
      { cause: error },
    );
  }
  return cancelled.sort((a, b) => a - b);
}

function print(outcomes: readonly CancelOutcome[], options: CancelOptions): void {
  if (options.output === 'json') return void console.log(json(outcomes));
  if (outcomes.length === 0) return void console.log(`no task of queue ${options.queue ?? ''} is waiting: nothing to cancel`);
  console.log(
    table(outcomes, [
      { header: 'task', value: (o) => String(o.id) },
      { header: 'outcome', value: (o) => o.outcome },
      {
        header: 'detail',
        value: (o) => (o.outcome === 'skipped' ? o.reason : o.outcome === 'would-cancel' ? 'dry run: nothing changed' : '-'),
      },
    ]),
  );
  const done = outcomes.filter((o) => o.outcome !== 'skipped').length;
  const skipped = outcomes.length - done;
  console.log(`${options.dryRun ? 'would cancel' : 'cancelled'} ${plural(done, 'task')}${skipped > 0 ? `, skipped ${skipped}` : ''}`);
}
