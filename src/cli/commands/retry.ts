// `lambda-task-pool retry`: re-runs failed (or cancelled) tasks. A re-run is a new task with the same queue,
// payload and attempt limit, whose retry_of names the old one; the old row never changes (docs/schema.md).
import { Option, type Command } from 'commander';
import { plural } from '../../ops/plural.ts';
import { RERUNNABLE_STATES, findRerunnableTasks, rerunTasks, taskStandings, type RerunnableState } from '../../store/task-store.ts';
import { UsageError, defineCommand } from '../command.ts';
import { withDatabase } from '../database.ts';
import { databaseUrlOption, outputOption, positiveInt, queueName, taskIds, type OutputFormat } from '../options.ts';
import { json, table } from '../output.ts';
import { retryOutcomes, type RetryOutcome } from '../task-outcomes.ts';

interface RetryOptions {
  queue?: string;
  status: RerunnableState;
  errorContains?: string;
  limit: number;
  dryRun?: boolean;
  output: OutputFormat;
}

export default defineCommand({
  group: 'tasks',
  register: (program) =>
    program
      .command('retry')
      .summary('re-run failed tasks, by id or by filter')
      .description(
        'Re-run failed (or cancelled) tasks: each gets a new task with the same queue, payload and attempt limit, due now, whose ' +
          'retry_of names the old one. The old task does not change, and each task is re-run at most once (to try again, re-run ' +
          'the re-run). Name tasks by ID, or select them with --queue (and --error-contains): the oldest finished first, up to --limit.',
      )
      .argument('[ids...]', 'the tasks to re-run', taskIds)
      .option('--queue <name>', 'select the tasks of this queue (with IDs: only those of this queue)', queueName)
      .addOption(new Option('--status <state>', 'with --queue: re-run tasks in this state').choices(RERUNNABLE_STATES).default('failed'))
      .option('--error-contains <text>', 'with --queue: only tasks whose last error contains this text (any case)')
      .option('--limit <n>', 'with --queue: re-run at most this many', positiveInt(100_000), 100)
      .option('--dry-run', 'show what would be re-run, and change nothing')
      .addOption(databaseUrlOption())
      .addOption(outputOption())
      .action(async (ids: number[], options: RetryOptions, command: Command) => {
        const byId = ids.length > 0;
        if (!byId && options.queue === undefined) throw new UsageError('name the tasks to re-run by ID, or select them with --queue NAME');
        if (byId && options.errorContains !== undefined) throw new UsageError('--error-contains selects tasks with --queue: not with IDs');
        const outcomes = await withDatabase(command, async (db) => {
          let requested = [...new Set(ids)];
          if (byId && options.queue !== undefined) {
            const wrongQueue = (await taskStandings(db, requested)).filter((s) => s.queue !== options.queue).map((s) => s.id);
            if (wrongQueue.length > 0) throw new UsageError(`not on queue ${options.queue}: task ${wrongQueue.join(', ')}`);
          }
          if (!byId) {
            requested = await findRerunnableTasks(db, {
              queue: options.queue ?? '',
              status: options.status,
              errorContains: options.errorContains,
              limit: options.limit,
            });
          }
          const rerun = options.dryRun ? undefined : new Map((await rerunTasks(db, requested)).map((r) => [r.retryOf, r.id]));
          return retryOutcomes({ requested, standings: await taskStandings(db, requested), rerun });
        });
        print(outcomes, options);
        const skipped = outcomes.filter((o) => o.outcome === 'skipped').length;
        if (byId && skipped > 0) throw new Error(`${plural(skipped, 'task was', 'tasks were')} not re-run`);
      }),
});

function print(outcomes: readonly RetryOutcome[], options: RetryOptions): void {
  if (options.output === 'json') return void console.log(json(outcomes));
  if (outcomes.length === 0) {
    return void console.log(
      `no ${options.status} task of queue ${options.queue ?? ''}${options.errorContains ? ` with "${options.errorContains}" in its error` : ''} is waiting to be re-run`,
    );
  }
  console.log(
    table(outcomes, [
      { header: 'task', value: (o) => String(o.id) },
      { header: 'outcome', value: (o) => o.outcome },
      {
        header: 'detail',
        value: (o) =>
          o.outcome === 'retried' ? `re-run as task ${o.retryId}` : o.outcome === 'skipped' ? o.reason : 'dry run: nothing changed',
      },
    ]),
  );
  const done = outcomes.filter((o) => o.outcome === 'retried' || o.outcome === 'would-retry').length;
  const skipped = outcomes.length - done;
  console.log(`${options.dryRun ? 'would re-run' : 're-ran'} ${plural(done, 'task')}${skipped > 0 ? `, skipped ${skipped}` : ''}`);
}
