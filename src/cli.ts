#!/usr/bin/env node
// lambda-task-pool: one entry point for the controller, migrations, the local stack, and the commands that
// inspect and repair pools and tasks. The commands are the files of src/cli/commands/.
import { runCli } from './cli/program.ts';

// A command whose work can never finish (a library's promise that never settles, nothing left to wait for)
// must not exit 0 as if it had succeeded: Node would end the process with the promise still pending.
let settled = false;
process.once('beforeExit', () => {
  if (settled) return;
  process.stderr.write('lambda-task-pool: the command stopped without finishing (nothing was left to wait for); it did not succeed\n');
  process.exit(1);
});

runCli(process.argv.slice(2), new URL('./cli/commands/', import.meta.url)).then(
  (code) => {
    settled = true;
    process.exit(code);
  },
  (error: unknown) => {
    settled = true;
    process.stderr.write(`lambda-task-pool: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
