// `lambda-task-pool migrate`: creates or upgrades the `ltp` schema (docs/schema.md), and the database roles
// for least privilege (docs/deploy.md, "Database roles").
import { InvalidArgumentError, Option, type Command } from 'commander';
import { defineCommand } from '../command.ts';
import { databaseFrom, databaseUrlOption, outputOption, type OutputFormat } from '../options.ts';
import { unreachable } from '../database.ts';
import { json } from '../output.ts';

interface MigrateOptions {
  output: OutputFormat;
  createRoles?: boolean;
  printRolesSql?: boolean;
  rolePrefix?: string;
}

export default defineCommand({
  group: 'run',
  register: (program) =>
    program
      .command('migrate')
      .summary('create or upgrade the database schema (and, if asked, the database roles)')
      .description(
        'Apply the schema migrations to a database (the ltp schema: tasks, invocations, queue claims, decisions). Idempotent, and ' +
          'safe when several processes run it at once. The controller also applies them on first use of a database. ' +
          'With --create-roles, also create three group roles (NOLOGIN) for least privilege: PREFIX_producer (insert and read ' +
          'tasks), PREFIX_worker (only the worker SDK protocol functions) and PREFIX_controller (the ledger); grant them to ' +
          'login roles. Every later migrate grants them again, so tables a new version adds are covered. --print-roles-sql ' +
          'prints the SQL for a DBA instead and touches no database.',
      )
      .addOption(databaseUrlOption('the database to migrate'))
      .option('--create-roles', 'also create the producer, worker and controller roles and grant them (as the schema owner)')
      .option('--print-roles-sql', "print the roles' SQL (create and grant) for a DBA, and change nothing")
      .addOption(
        new Option('--role-prefix <prefix>', 'name the roles PREFIX_producer, PREFIX_worker, PREFIX_controller')
          .default('ltp')
          .argParser(rolePrefix),
      )
      .addOption(outputOption())
      .action(async (options: MigrateOptions, command: Command) => {
        const prefix = command.getOptionValueSource('rolePrefix') === 'default' ? undefined : options.rolePrefix;
        if (options.printRolesSql) {
          const { roleNames, rolesScript } = await import('../../store/roles.js');
          process.stdout.write(rolesScript(roleNames(options.rolePrefix)));
          return;
        }
        const target = databaseFrom(command);
        const { migrate } = await import('../../store/migrate.js');
        const result = await migrate(target.url, {
          ...(options.createRoles ? { createRoles: true } : {}),
          ...(prefix !== undefined ? { rolePrefix: prefix } : {}),
        }).catch((error: unknown) => {
          throw unreachable(error, target);
        });
        if (options.output === 'json') {
          console.log(json({ database: target.display, applied: result.applied, roles: result.roles }));
          return;
        }
        console.log(result.applied.length > 0 ? `applied: ${result.applied.join(', ')}` : 'the schema is up to date');
        if (options.createRoles || prefix !== undefined) {
          const p = options.rolePrefix ?? 'ltp';
          console.log(
            result.roles
              ? `roles ${p}_producer, ${p}_worker and ${p}_controller exist and are granted; give them to login roles (GRANT ${p}_worker TO my_login)`
              : `roles ${p}_producer, ${p}_worker and ${p}_controller do not all exist: pass --create-roles, or run the SQL of --print-roles-sql`,
          );
        }
      }),
});

/** The same rule roles.ts enforces, checked while parsing so the error names the flag. */
function rolePrefix(value: string): string {
  if (!/^[a-z_][a-z0-9_]{0,50}$/.test(value)) {
    throw new InvalidArgumentError('lower-case letters, digits and _ (at most 51), starting with a letter or _');
  }
  return value;
}
