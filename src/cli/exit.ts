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
    process.exit(1);
  });
  work.then(
    (code) => {
      settled = true;
      process.exit(code);
    },
    (error: unknown) => {
      settled = true;
      write(`lambda-task-pool: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
}
