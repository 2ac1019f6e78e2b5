// The command tree itself: every command and flag has help, and what the help promises is what runs.
import { expect } from 'chai';
import type { Command } from 'commander';
import { CONTROLLER_DEFAULTS } from '../../src/controller/controller.ts';
import { HELP_DEFAULTS } from '../../src/cli/commands/controller.ts';
import { completionModel } from '../../src/cli/completion.ts';
import { buildProgram, commandNamed } from '../../src/cli/program.ts';

function allCommands(command: Command, path: string[] = []): Array<{ path: string; command: Command }> {
  return command.commands.flatMap((c) => [{ path: [...path, c.name()].join(' '), command: c }, ...allCommands(c, [...path, c.name()])]);
}

describe('cli program', () => {
  it('has the commands users expect, each with a description and every option with a help line', async () => {
    const program = await buildProgram();
    const commands = allCommands(program);
    expect(commands.map((c) => c.path)).to.include.members([
      'controller',
      'migrate',
      'enqueue',
      'local',
      'local up',
      'status',
      'tasks',
      'retry',
      'cancel',
      'completion',
      'version',
    ]);
    for (const { path, command } of commands) {
      expect(command.description(), `${path} has a description`).to.match(/\w{3}/);
      for (const option of command.options) expect(option.description, `${path} ${option.flags} has a help line`).to.match(/\w{3}/);
    }
  });

  it('loads only the command the command line runs, and every command where it needs them', async () => {
    expect(commandNamed(['controller', '--leader-elect'])).to.equal('controller');
    expect(commandNamed(['local', 'up'])).to.equal('local');
    for (const argv of [[], ['--help'], ['-V'], ['help', 'status'], ['completion', 'bash']]) {
      expect(commandNamed(argv), argv.join(' ')).to.equal(undefined);
    }
    const controllerOnly = await buildProgram(undefined, 'controller');
    expect(controllerOnly.commands.map((c) => c.name())).to.deep.equal(['controller']);
    // Loading one command by name relies on each module being named after the command it defines.
    for (const name of (await buildProgram()).commands.map((c) => c.name()).filter((n) => n !== 'help')) {
      expect(
        (await buildProgram(undefined, name)).commands.map((c) => c.name()),
        name,
      ).to.deep.equal([name]);
    }
    // A name that is no command's loads them all, so commander can say what was meant.
    const misspelt = await buildProgram(undefined, 'statu');
    expect(misspelt.commands.map((c) => c.name())).to.include.members(['status', 'controller', 'enqueue']);
  });

  it('shows the controller defaults the controller really uses', () => {
    expect(HELP_DEFAULTS.leaseName).to.equal(CONTROLLER_DEFAULTS.leaseName);
    expect(HELP_DEFAULTS.workers).to.equal(CONTROLLER_DEFAULTS.workers);
    expect(HELP_DEFAULTS.firstRows).to.equal(CONTROLLER_DEFAULTS.firstRows);
    expect(HELP_DEFAULTS.region).to.equal(CONTROLLER_DEFAULTS.region);
    expect(HELP_DEFAULTS.retention).to.equal(`${CONTROLLER_DEFAULTS.retentionSeconds / 86_400}d`);
    expect(HELP_DEFAULTS.functionCheck).to.equal(`${CONTROLLER_DEFAULTS.functionCheckMs / 60_000}m`);
  });

  it('completes what the commands define: commands, options and their choices', async () => {
    const model = completionModel(await buildProgram());
    const node = (path: string) => model.find((n) => n.path === path);
    expect(node('')?.commands.map((c) => c.name)).to.include.members(['status', 'tasks', 'retry', 'cancel', 'help']);
    expect(node('tasks')?.options.find((o) => o.flags.includes('--status'))?.value).to.deep.equal({
      kind: 'choices',
      values: ['created', 'leased', 'done', 'failed', 'cancelled'],
    });
    expect(node('status')?.options.find((o) => o.flags.includes('-o'))?.flags).to.deep.equal(['-o', '--output']);
    expect(node('local up')?.options.find((o) => o.flags.includes('--state-dir'))?.value).to.deep.equal({ kind: 'dir' });
    expect(node('completion')?.argumentValues).to.deep.equal(['bash', 'zsh']);
    expect(node('help')?.argumentValues).to.include('status');
  });
});
