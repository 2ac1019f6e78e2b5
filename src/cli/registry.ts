// Finds the commands: every module in ./commands/ (TypeScript under tsx, JavaScript once compiled) whose
// default export is a CliCommand. They register in the order of their group, then by name. The entry point
// (src/cli.ts) names the folder from where it lies itself: in the bundle (scripts/build-controller.mjs) this
// module's code may sit in a shared chunk elsewhere in dist/.
import { readdir } from 'node:fs/promises';
import { byCodeUnits } from '../ops/code-unit-order.ts';
import { COMMAND_GROUPS, type CliCommand } from './command.ts';

const COMMANDS_DIR = new URL('./commands/', import.meta.url);
const MODULE = /^[a-z][a-z0-9-]*\.(ts|js)$/;

function isCliCommand(value: unknown): value is CliCommand {
  return (
    typeof value === 'object' &&
    value !== null &&
    'register' in value &&
    typeof value.register === 'function' &&
    'group' in value &&
    typeof value.group === 'string' &&
    value.group in COMMAND_GROUPS
  );
}

/**
 * The commands of `commandsDir`; with `only`, just the module of that name (say `controller.js`) when there is
 * one, else every command. Each module is named after the command it defines (test/unit/cli-program.test.ts).
 * A process runs one command: the controller need not load the code of the others (about 5 MB resident).
 */
export async function loadCommands(commandsDir: URL = COMMANDS_DIR, only?: string): Promise<CliCommand[]> {
  const all = (await readdir(commandsDir)).filter((f) => MODULE.test(f) && !f.endsWith('.d.ts')).sort();
  const named = only === undefined ? [] : all.filter((f) => f.slice(0, f.lastIndexOf('.')) === only);
  const files = named.length > 0 ? named : all;
  const groups = Object.keys(COMMAND_GROUPS);
  const loaded = await Promise.all(
    files.map(async (file) => {
      const module: unknown = await import(new URL(file, commandsDir).href);
      const command = typeof module === 'object' && module !== null && 'default' in module ? module.default : undefined;
      if (!isCliCommand(command))
        throw new Error(`src/cli/commands/${file} does not export a command (export default defineCommand({...}))`);
      return { file, command };
    }),
  );
  return loaded
    .sort((a, b) => groups.indexOf(a.command.group) - groups.indexOf(b.command.group) || byCodeUnits(a.file, b.file))
    .map((l) => l.command);
}
