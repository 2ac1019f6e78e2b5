// `lambda-task-pool migrate`: creates or upgrades the `ltp` schema (docs/schema.md).
import type { Command } from 'commander';
import { defineCommand } from '../command.ts';
import { databaseFrom, databaseUrlOption, outputOption, type OutputFormat } from '../options.ts';
import { unreachable } from '../database.ts';
import { json } from '../output.ts';

export default defineCommand({
  group: 'run',
  register: (program) =>
    program
      .command('migrate')
      .summary('create or upgrade the database schema')
      .description(
        'Apply the schema migrations to a database (the ltp schema: tasks, invocations, queue claims). Idempotent, and safe ' +
          'when several processes run it at once. The controller also applies them on first use of a database.',
      )
      .addOption(databaseUrlOption('the database to migrate'))
      .addOption(outputOption())
      .action(async (options: { output: OutputFormat }, command: Command) => {
        const target = databaseFrom(command);
        const { migrate } = await import('../../store/migrate.js');
        const result = await migrate(target.url).catch((error: unknown) => {
          throw unreachable(error, target);
        });
        if (options.output === 'json') console.log(json({ database: target.display, applied: result.applied }));
        else console.log(result.applied.length > 0 ? `applied: ${result.applied.join(', ')}` : 'the schema is up to date');
      }),
});
