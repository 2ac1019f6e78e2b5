// The program: the commands of ./commands/ under one commander program, with help for every command and
// flag, and one exit-code policy: 0 done (and help), 1 the work failed, 2 the command line was wrong.
import { Command, CommanderError } from 'commander';
import { COMMAND_GROUPS, UsageError } from './command.ts';
import { loadCommands } from './registry.ts';
import { PRODUCT_VERSION } from './version.ts';

export const PROGRAM_NAME = 'lambda-task-pool';

/**
 * `commandsDir`: the folder of the command modules (by default ./commands/ next to the registry). `only`: the
 * command the command line names, to load that command alone (when it is not one, every command loads).
 */
export async function buildProgram(commandsDir?: URL, only?: string): Promise<Command> {
  const program = new Command(PROGRAM_NAME)
    .description('Run AWS Lambda workers for a PostgreSQL task backlog, exactly: the operator, and the tools to watch and repair its work.')
    .version(PRODUCT_VERSION, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help for a command')
    .showHelpAfterError(`(run ${PROGRAM_NAME} --help for the commands)`)
    .showSuggestionAfterError(true)
    .configureHelp({ sortOptions: false, showGlobalOptions: false })
    .exitOverride();
  program.addHelpText(
    'after',
    `
Commands that read the database take --database-url or DATABASE_URL; commands that read pools use the
kubeconfig kubectl would (--kubeconfig, KUBECONFIG, ~/.kube/config, or in-cluster). Shell completion:
${PROGRAM_NAME} completion bash|zsh. Docs: docs/cli.md.`,
  );
  for (const command of await loadCommands(commandsDir, only)) {
    command.register(program).helpGroup(COMMAND_GROUPS[command.group]);
  }
  program.commandsGroup(COMMAND_GROUPS.shell).helpCommand('help [command]', 'show help for a command');
  for (const command of program.commands) pointAtHelp(command, `${PROGRAM_NAME} ${command.name()}`);
  return program;
}

/**
 * The command the command line runs, when loading that one alone is enough: the program takes no options of
 * its own before a command, and `help` and `completion` describe every command, so they load them all.
 */
export function commandNamed(argv: readonly string[]): string | undefined {
  const first = argv[0];
  return first === undefined || first.startsWith('-') || first === 'help' || first === 'completion' ? undefined : first;
}

/** After a usage error, say which help to read: the failing command's own. */
function pointAtHelp(command: Command, path: string): void {
  command.showHelpAfterError(`(run ${path} --help for its usage)`);
  if (command.commands.length > 0) command.helpCommand('help [command]', 'show help for a command');
  for (const child of command.commands) pointAtHelp(child, `${path} ${child.name()}`);
}

/** Runs the command line and returns the exit code (it prints its own output and errors). */
export async function runCli(argv: readonly string[], commandsDir?: URL): Promise<number> {
  const program = await buildProgram(commandsDir, commandNamed(argv));
  if (argv.length === 0) {
    process.stdout.write(program.helpInformation());
    return 0;
  }
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander has printed the help, the version, or what was wrong with the command line.
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return 0;
      return error.exitCode === 0 ? 0 : 2;
    }
    if (error instanceof UsageError) {
      process.stderr.write(`${PROGRAM_NAME}: ${error.message}\n`);
      return 2;
    }
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`${PROGRAM_NAME}: ${redactDatabaseUrls(message)}\n`);
    return 1;
  }
}

/** Error texts from drivers may quote a connection string: never print its password. */
export function redactDatabaseUrls(text: string): string {
  return text.replace(/postgres(ql)?:\/\/\S+/g, '<database url>');
}
