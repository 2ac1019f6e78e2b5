// Lists the processes that carry a test run's mark (LTP_TEST_RUN=<id> in their environment) and are still
// alive: what the tests started and did not stop. It skips itself and the script that runs it.
import { readdirSync, readFileSync } from 'node:fs';

const mark = `LTP_TEST_RUN=${process.argv[2] ?? ''}`;
const skip = new Set([process.pid, process.ppid]);
const found = [];
for (const entry of readdirSync('/proc')) {
  if (!/^\d+$/.test(entry) || skip.has(Number(entry))) continue;
  try {
    const environ = readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0');
    if (!environ.includes(mark)) continue;
    const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim();
    found.push(`${entry} ${cmdline}`);
  } catch {
    // gone meanwhile, or not ours to read
  }
}
if (found.length > 0) console.log(found.join('\n'));
