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
  // How it ended: its exit code, or the signal that killed it (then the code is null), for the failure message.
  let ended: string | undefined;
  const exited = new Promise<string>((resolve) =>
    child.on('exit', (code, signal) => resolve((ended = code === null ? `killed by ${signal}` : `exit ${code}`))),
  );
  const printed = async (text: string) => {
    while (!out.includes(text)) {
      if (ended !== undefined) throw new Error(`the process ended (${ended}) before printing ${JSON.stringify(text)}:\n${out}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return { child, exited, printed, output: () => out };
}

describe('stopping on SIGINT or SIGTERM (a real process)', function () {
  this.timeout(20_000);

  it('finishes its shutdown when the signal arrives twice at once, as a wrapper relays it', async () => {
    const p = start(500);
    await p.printed('waiting');
    p.child.kill('SIGINT');
    p.child.kill('SIGINT');
    expect(await p.exited, p.output()).to.equal('exit 0');
    expect(p.output()).to.include('stopping after SIGINT').and.include('stopped');
  });

  it('exits at once, without finishing, on a second signal sent later', async () => {
    const p = start(15_000);
    await p.printed('waiting');
    p.child.kill('SIGTERM');
    // "Later" is counted from when the process took the first signal, not from when it was sent: on a loaded
    // machine the process may act on it a while after.
    await p.printed('stopping after SIGTERM');
    await new Promise((r) => setTimeout(r, 2_500));
    p.child.kill('SIGINT');
    expect(await p.exited, p.output()).to.equal('exit 130');
    expect(p.output()).to.include('SIGINT again: exiting without finishing the shutdown').and.not.include('stopped\n');
  });
});
