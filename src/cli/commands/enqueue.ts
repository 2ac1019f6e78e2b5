// `lambda-task-pool enqueue`: inserts tasks as a producer's plain INSERT would.
import type { Command } from 'commander';
import { plural } from '../../ops/plural.ts';
import { withDatabase } from '../database.ts';
import { enqueueCopies } from '../../store/task-store.ts';
import { defineCommand } from '../command.ts';
import { databaseUrlOption, jsonText, nonNegativeInt, outputOption, positiveInt, queueName, type OutputFormat } from '../options.ts';
import { json } from '../output.ts';

const MAX_COUNT = 1_000_000;
/**
 * 1000000 -> "1,000,000". Not toLocaleString: the first number format loads about 5 MB of ICU's data, and
 * this runs wherever the command registers (its own process, and every one that shows the full help).
 */
const thousands = (n: number) => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
const BATCH = 10_000;
/**
 * The most payload bytes one batch writes: 10,000 copies of a 60 KB payload are 600 MB in one statement. A
 * batch of large payloads holds fewer tasks (at least one).
 */
const BATCH_BYTES = 64 * 1024 * 1024;

interface EnqueueOptions {
  queue: string;
  count: number;
  /** JSON text, checked (jsonText). */
  payload: string;
  maxAttempts?: number;
  delaySeconds: number;
  output: OutputFormat;
}

export default defineCommand({
  group: 'tasks',
  register: (program) =>
    program
      .command('enqueue')
      .summary('add tasks to a queue')
      .description(
        'Insert tasks into a queue, in batches of up to 10,000 (at most 64 MB of payload each), as a producer would (INSERT INTO ltp.tasks). The payload goes in as the JSON text given. Prints their ids with -o json.',
      )
      .requiredOption('--queue <name>', 'the queue (the pool that serves it picks them up)', queueName)
      .option('--count <n>', `how many tasks, at most ${thousands(MAX_COUNT)}`, positiveInt(MAX_COUNT), 1)
      .option('--payload <json>', 'the payload of every task, as JSON', jsonText, '{}')
      .option('--max-attempts <n>', "attempt limit of these tasks (default: the pool's spec.maxTaskAttempts)", positiveInt(1_000_000))
      .option('--delay-seconds <n>', 'not due before this many seconds from now', nonNegativeInt(31_536_000), 0)
      .addOption(databaseUrlOption())
      .addOption(outputOption())
      .action(async (options: EnqueueOptions, command: Command) =>
        withDatabase(command, async (db) => {
          const ids: number[] = [];
          const perBatch = batchSize(options.payload);
          try {
            while (ids.length < options.count) {
              const batch = Math.min(perBatch, options.count - ids.length);
              ids.push(
                ...(await enqueueCopies(db, {
                  queue: options.queue,
                  payloadJson: options.payload,
                  count: batch,
                  maxAttempts: options.maxAttempts,
                  delayMs: options.delaySeconds * 1000,
                })),
              );
            }
          } catch (error) {
            // Each batch commits on its own: the ones before the failure are in the queue, and running the
            // same command again would add them twice.
            if (ids.length === 0) throw error;
            throw partlyEnqueued(options, ids, error);
          }
          if (options.output === 'json') console.log(json({ queue: options.queue, count: ids.length, ids }));
          else console.log(`enqueued ${plural(ids.length, 'task')} on queue ${options.queue}`);
        }),
      ),
});

/** Tasks per statement: BATCH, fewer when the payload is large. */
function batchSize(payloadJson: string): number {
  return Math.max(1, Math.min(BATCH, Math.floor(BATCH_BYTES / Math.max(1, Buffer.byteLength(payloadJson)))));
}

function partlyEnqueued(options: EnqueueOptions, ids: readonly number[], error: unknown): Error {
  const reason = error instanceof Error ? error.message : String(error);
  const left = options.count - ids.length;
  const failed = Math.min(batchSize(options.payload), left);
  return new Error(
    `enqueued ${thousands(ids.length)} of ${thousands(options.count)} tasks on queue ${options.queue} (their ids run from ${ids[0]} to ${ids.at(-1)}; other producers' tasks may lie between) before it failed: ${reason}. ` +
      `The batch that failed (${thousands(failed)} tasks) may have committed all the same if the connection was lost as it did: count the queue's tasks before you enqueue the other ${thousands(left)} (--count ${left}); running the same command again would add all ${thousands(options.count)} again`,
    { cause: error },
  );
}
