#!/usr/bin/env node
// lambda-task-pool: one entry point for the controller, migrations, the local stack, and the commands that
// inspect and repair pools and tasks. The commands are the files of src/cli/commands/.
import { exitWhenSettled } from './cli/exit.ts';
import { runCli } from './cli/program.ts';

exitWhenSettled(runCli(process.argv.slice(2), new URL('./cli/commands/', import.meta.url)));
