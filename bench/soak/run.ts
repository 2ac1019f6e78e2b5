// npm run soak: the full fault soak; its verdict goes to bench/results/soak.json, and one line per run is
// appended to bench/results/soak-runs.jsonl. Exits non-zero when any violation count is above 0.
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FULL_SOAK, SMALL_SOAK, runSoak } from './soak.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const config = process.argv.includes('--small') ? SMALL_SOAK : FULL_SOAK;
const report = await runSoak(config, (line) => process.stderr.write(`soak: ${line}\n`));
const machine = {
  cpus: os.cpus().length,
  model: os.cpus()[0]?.model,
  memoryGiB: Math.round(os.totalmem() / 2 ** 30),
  node: process.version,
};
const results = path.join(here, '..', 'results');
await mkdir(results, { recursive: true });
await writeFile(path.join(results, 'soak.json'), `${JSON.stringify({ ...report, machine }, null, 2)}\n`);
await appendFile(path.join(results, 'soak-runs.jsonl'), `${JSON.stringify(report)}\n`);
console.log(JSON.stringify(report));
const violations = Object.values(report.violations).reduce((a, b) => a + b, 0);
process.exit(violations === 0 ? 0 : 1);
