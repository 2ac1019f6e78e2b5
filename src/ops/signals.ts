// Running until told to stop: the controller and `local up` both wait here for SIGINT or SIGTERM.

/** Signals within this long of the first are the same request (a terminal and a wrapper such as tsx both send one). */
const SAME_REQUEST_MS = 2_000;

/**
 * Resolves with the first SIGINT or SIGTERM. From then on the process stops in its own time: a copy of that
 * signal relayed by a wrapper is ignored (it would otherwise kill the process halfway through its shutdown),
 * and only a signal sent again later forces an exit, as a second Ctrl-C does.
 */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let first: number | undefined;
    const on = (signal: NodeJS.Signals) => {
      if (first === undefined) {
        first = Date.now();
        resolve(signal);
        return;
      }
      if (Date.now() - first < SAME_REQUEST_MS) return;
      process.stderr.write(`${signal} again: exiting without finishing the shutdown\n`);
      process.exit(130);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}
