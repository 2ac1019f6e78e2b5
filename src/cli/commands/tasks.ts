// `lambda-task-pool tasks`: the latest tasks of a queue, or one task in full, with attempts and last error.
import { Option, type Command } from 'commander';
import { TASK_STATES, type TaskState } from '../../api/types.ts';
import { getTaskWithRerun, listTasks, type TaskRow } from '../../store/task-store.ts';
import { UsageError, defineCommand } from '../command.ts';
import { withDatabase } from '../database.ts';
import { databaseUrlOption, outputOption, positiveInt, queueName, taskIds, type OutputFormat } from '../options.ts';
import { fields, json, table, timestamp, truncate } from '../output.ts';

interface TasksOptions {
  queue?: string;
  status?: TaskState;
  limit: number;
  output: OutputFormat;
}

export default defineCommand({
  group: 'tasks',
  register: (program) =>
    program
      .command('tasks')
      .summary("list a queue's tasks, or show one")
      .description(
        "List a queue's latest tasks (newest first) with their state, attempts and last error; or, with an ID, show one task in " +
          'full: payload, result, timestamps, the invocation that last leased it, and the task it re-runs or that re-runs it.',
      )
      .argument('[id]', 'show this task in full', (value: string) => taskIds(value)[0])
      .option('--queue <name>', 'the queue to list (required without an ID)', queueName)
      .addOption(new Option('--status <state>', 'only tasks in this state').choices(TASK_STATES))
      .option('--limit <n>', 'list at most this many', positiveInt(10_000), 50)
      .addOption(databaseUrlOption())
      .addOption(outputOption())
      .action(async (id: number | undefined, options: TasksOptions, command: Command) => {
        if (id === undefined && options.queue === undefined)
          throw new UsageError('pass --queue NAME to list tasks, or a task ID to show one');
        await withDatabase(command, async (db) => {
          if (id !== undefined) {
            const task = await getTaskWithRerun(db, id);
            if (!task) throw new Error(`no task ${id}`);
            console.log(options.output === 'json' ? json(task) : detail(task));
            return;
          }
          const queue = options.queue ?? '';
          const tasks = await listTasks(db, { queue, status: options.status, limit: options.limit });
          if (options.output === 'json') console.log(json(tasks));
          else if (tasks.length === 0) console.log(`no ${options.status ?? ''}${options.status ? ' ' : ''}tasks on queue ${queue}`);
          else console.log(list(tasks));
        });
      }),
});

function attempts(t: TaskRow): string {
  return `${t.attempts}/${t.maxAttempts ?? 'pool'}`;
}

function list(tasks: readonly TaskRow[]): string {
  return table(tasks, [
    { header: 'id', value: (t) => String(t.id) },
    { header: 'status', value: (t) => t.status },
    { header: 'attempts', value: (t) => attempts(t) },
    { header: 'created', value: (t) => timestamp(t.createdAt) },
    { header: 'finished', value: (t) => timestamp(t.finishedAt) },
    { header: 'retry-of', value: (t) => (t.retryOf === null ? '-' : String(t.retryOf)) },
    { header: 'last error', value: (t) => truncate(t.cancelReason ?? t.lastError ?? '-', 80) },
  ]);
}

function detail(t: TaskRow & { retriedBy: number | null }): string {
  return fields([
    ['Task', String(t.id)],
    ['Queue', t.queue],
    ['Status', t.status],
    ['Attempts', `${t.attempts} of ${t.maxAttempts ?? "the pool's spec.maxTaskAttempts"}`],
    ['Created', timestamp(t.createdAt)],
    ['Due', timestamp(t.runAfter)],
    ['Leased', timestamp(t.leasedAt)],
    ['Started', timestamp(t.startedAt)],
    ['Finished', timestamp(t.finishedAt)],
    ['Invocation', t.invocationId === null ? '-' : String(t.invocationId)],
    ['Re-runs task', t.retryOf === null ? '-' : String(t.retryOf)],
    ['Re-run as task', t.retriedBy === null ? '-' : String(t.retriedBy)],
    ...(t.cancelReason !== null ? [['Cancelled because', t.cancelReason] as const] : []),
    ['Last error', t.lastError ?? '-'],
    ['Payload', JSON.stringify(t.payload)],
    ['Result', t.result === null ? '-' : JSON.stringify(t.result)],
  ]);
}
