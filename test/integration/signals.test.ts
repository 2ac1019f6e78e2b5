// Stopping on a signal, in a real process: a wrapper (npm, tsx) relays the terminal's Ctrl-C, so the process
// gets SIGINT twice at once; it must still finish its shutdown. A second Ctrl-C later forces the exit.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

const SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'processes', 'until-signal.ts');

function start(shutdownMs: number) {
  const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT], {
    env: { ...process.env, SHUTDOWN_MS: String(shutdownMs) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const waiting = async () => {
    while (!out.includes('waiting')) await new Promise((r) => setTimeout(r, 20));
  };
  return { child, exited, waiting, output: () => out };
}

describe('stopping on SIGINT or SIGTERM (a real process)', function () {
  this.timeout(20_000);

  it('finishes its shutdown when the signal arrives twice at once, as a wrapper relays it', async () => {
    const p = start(500);
    await p.waiting();
    p.child.kill('SIGINT');
    p.child.kill('SIGINT');
    expect(await p.exited).to.equal(0);
    expect(p.output()).to.include('stopping after SIGINT').and.include('stopped');
  });

  it('exits at once, without finishing, on a second signal sent later', async () => {
    const p = start(15_000);
    await p.waiting();
    p.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 2_500));
    p.child.kill('SIGINT');
    expect(await p.exited).to.equal(130);
    expect(p.output()).to.include('SIGINT again: exiting without finishing the shutdown').and.not.include('stopped\n');
  });
});
