// What a CLI command is: one file in src/cli/commands/ whose default export is a CliCommand. The program
// finds every file there (registry.ts), so adding a command is adding one file.
import type { Command } from 'commander';

/** The sections of `lambda-task-pool --help`, in the order they are shown. */
export const COMMAND_GROUPS = {
  run: 'Run:',
  pools: 'Pools:',
  tasks: 'Tasks:',
  shell: 'Shell:',
} as const;
export type CommandGroup = keyof typeof COMMAND_GROUPS;

export interface CliCommand {
  /** The section of the top-level help the command is listed in. */
  group: CommandGroup;
  /**
   * Adds the command to the program with `program.command(name)` (so it inherits the program's error and
   * output settings), with a description, its arguments and options each with a help line, and its action.
   */
  register(program: Command): Command;
}

// A command loads heavy modules (the controller, the Kubernetes client, TypeORM) inside its action, so that
// `--help` stays quick. Name them with a .js extension there: tsc rewrites the .ts extension of static
// imports only, and tsx maps .js to the .ts source.

/** Types the default export of a command file. */
export function defineCommand(command: CliCommand): CliCommand {
  return command;
}

/** Bad input on the command line: the message says what to pass instead; the exit code is 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}
