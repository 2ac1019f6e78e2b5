// npm run bench: runs every bench/*.bench.ts (or those named on the command line) and writes the figures
// to bench/results/latest.json. Quote medians, and compare ratios within one run: these machines are noisy.
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const files = (await readdir(here)).filter((f) => f.endsWith('.bench.ts') && (only.length === 0 || only.some((o) => f.includes(o)))).sort();
const results: Record<string, unknown> = {};
for (const file of files) {
  const name = file.replace(/\.bench\.ts$/, '');
  process.stderr.write(`bench: ${name} ...\n`);
  const started = Date.now();
  const mod: { run(): Promise<Record<string, unknown>> } = await import(pathToFileURL(path.join(here, file)).href);
  results[name] = { ...(await mod.run()), wallSeconds: Math.round((Date.now() - started) / 100) / 10 };
  process.stderr.write(`bench: ${name} ${JSON.stringify(results[name])}\n`);
}
await mkdir(path.join(here, 'results'), { recursive: true });
const out = path.join(here, 'results', 'latest.json');
// A run of some benchmarks keeps the others' last figures (each with its own date).
const previous = await readFile(out, 'utf8')
  .then((text) => JSON.parse(text) as { results?: Record<string, unknown> })
  .catch(() => ({ results: {} }));
const at = new Date().toISOString();
for (const name of Object.keys(results)) results[name] = { at, ...(results[name] as object) };
const report = {
  at,
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version },
  results: { ...previous.results, ...results },
};
await writeFile(out, JSON.stringify(report, null, 2) + '\n');
console.log(JSON.stringify(report, null, 2));
console.log(`written to ${path.relative(process.cwd(), out)}`);
process.exit(0);
