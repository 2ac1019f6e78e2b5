// `lambda-task-pool completion bash|zsh`: prints a completion script, generated from the commands themselves.
import { Argument, type Command } from 'commander';
import { defineCommand } from '../command.ts';
import { SHELLS, completionScript, type Shell } from '../completion.ts';

export default defineCommand({
  group: 'shell',
  register: (program) =>
    program
      .command('completion')
      .summary('print a shell completion script')
      .description(
        'Print a completion script for bash or zsh: commands, options, and the values an option takes. ' +
          'Load it with: source <(lambda-task-pool completion bash)',
      )
      .addArgument(new Argument('<shell>', 'the shell').choices(SHELLS))
      .action((shell: Shell, _options: unknown, command: Command) => {
        const root = command.parent ?? command;
        process.stdout.write(completionScript(root, shell));
      }),
});
