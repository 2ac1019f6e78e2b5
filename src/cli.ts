#!/usr/bin/env node
// lambda-task-pool: one entry point for the controller, migrations, the local stack, and the commands that
// inspect and repair pools and tasks. The commands are the files of src/cli/commands/.
import { runCli } from './cli/program.ts';

runCli(process.argv.slice(2), new URL('./cli/commands/', import.meta.url)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`lambda-task-pool: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
