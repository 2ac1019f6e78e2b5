// Runs the CLI as a user does: its own process, `lambda-task-pool ARGS` through tsx, with only the
// environment the test gives it (plus PATH and HOME), so no DATABASE_URL or KUBECONFIG of the machine leaks in.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT } from '../../dev/src/binaries.ts';
import { killOnExit } from '../../dev/src/processes.ts';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export const CLI_ENTRY = path.join(REPO_ROOT, 'src', 'cli.ts');

export function runCli(args: readonly string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI_ENTRY, ...args], {
      cwd: REPO_ROOT,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: process.env.HOME ?? '/tmp',
        ...(process.env.LTP_TEST_RUN ? { LTP_TEST_RUN: process.env.LTP_TEST_RUN } : {}),
        LTP_LOG_LEVEL: 'warn',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const forget = killOnExit(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      forget();
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      forget();
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs the CLI and parses its stdout as JSON, failing with its output when it exits non-zero. */
export async function cliJson<T>(args: readonly string[], env: Record<string, string>): Promise<T> {
  const result = await runCli([...args, '-o', 'json'], env);
  if (result.code !== 0) throw new Error(`lambda-task-pool ${args.join(' ')} exited ${result.code}: ${result.stderr}${result.stdout}`);
  return JSON.parse(result.stdout) as T;
}
