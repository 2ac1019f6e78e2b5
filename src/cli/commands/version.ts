// `lambda-task-pool version`.
import { defineCommand } from '../command.ts';
import { outputOption, type OutputFormat } from '../options.ts';
import { json } from '../output.ts';
import { PRODUCT_VERSION } from '../version.ts';

export default defineCommand({
  group: 'shell',
  register: (program) =>
    program
      .command('version')
      .summary('print the version')
      .description('Print the version of lambda-task-pool and of the Node.js that runs it.')
      .addOption(outputOption())
      .action((options: { output: OutputFormat }) => {
        if (options.output === 'json') console.log(json({ version: PRODUCT_VERSION, node: process.versions.node }));
        else console.log(`lambda-task-pool ${PRODUCT_VERSION} (Node.js ${process.versions.node})`);
      }),
});
