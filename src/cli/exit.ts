// How the lambda-task-pool process ends: with its command's exit code once the command's work settles, 1 with
// the error's message if it fails, and 1 if it can never settle. A command whose work waits on a promise that
// nothing will ever settle (a library's, with nothing left to wait for) would otherwise let Node end the
// process with code 0, as if it had succeeded: a pg pool's end() after a bad port= did so for every database
// command, migrate included.
export function exitWhenSettled(work: Promise<number>, write: (text: string) => void = (text) => process.stderr.write(text)): void {
  let settled = false;
  process.once('beforeExit', () => {
    if (settled) return;
    write('lambda-task-pool: the command stopped without finishing (nothing was left to wait for); it did not succeed\n');
    exitFlushed(1);
  });
  work.then(
    (code) => {
      settled = true;
      exitFlushed(code);
    },
    (error: unknown) => {
      settled = true;
      write(`lambda-task-pool: ${error instanceof Error ? error.message : String(error)}\n`);
      exitFlushed(1);
    },
  );
}

/**
 * Exits once stdout and stderr have handed everything written to them to the system. Node writes to a pipe
 * asynchronously, and process.exit() drops what is still queued: `enqueue --count 20000 -o json | jq` got the
 * first 131,072 bytes of its ids and exit code 0, `tasks -o json` through a pipe the first 65,536.
 */
function exitFlushed(code: number): void {
  let waiting = 2;
  const done = () => {
    waiting -= 1;
    if (waiting === 0) process.exit(code);
  };
  // A write's callback runs once the writes before it are flushed, or with the error that stopped them (a
  // reader that went away): either way nothing more will get out.
  for (const stream of [process.stdout, process.stderr]) stream.write('', done);
}
