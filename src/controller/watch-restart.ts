// A pool watch that fails (the API server went away, a token expired) is started again with jittered backoff
// until it lists and watches once more. A watch request whose credentials cannot be had (an exec credential
// plugin that fails, a token file that cannot be read) reports an error like any other (ReportingWatch in
// kube.ts). A restart whose start() rejects all the same counts as one more failure, and is retried like any
// other; before, the watch stayed stopped, its pools' changes unseen until a restart.
import { backoffMs } from '@lambda-task-pool/worker/protocol';

export interface RestartableWatch {
  start(): Promise<unknown>;
  on(event: 'error', callback: (error: unknown) => void): void;
}

export interface WatchRestartOptions {
  backoff: { initialMs: number; maxMs: number };
  /** The controller is stopping: no more restarts. */
  stopped(): boolean;
  /** The watch failed (or a restart did): it is started again in `retryInMs`. */
  onFailing(error: unknown, retryInMs: number): void;
  /** A restart listed and watched again, with no failure since it began. */
  onRestored(): void;
  /** onRestored or onFailing threw: said, never an unhandled rejection (which would end the process). */
  onCallbackError(error: unknown): void;
  /** Schedules a restart; defaults to an unref'd setTimeout. */
  schedule?: (fn: () => void, ms: number) => void;
  random?: () => number;
}

const defaultSchedule = (fn: () => void, ms: number) => {
  setTimeout(fn, ms).unref();
};

/** Restarts `watch` whenever it fails, until the controller stops. */
export function restartOnFailure(watch: RestartableWatch, options: WatchRestartOptions): void {
  const schedule = options.schedule ?? defaultSchedule;
  let failures = 0;
  const failed = (error: unknown) => {
    if (options.stopped()) return;
    failures += 1;
    const retryInMs = backoffMs(failures, options.backoff, options.random);
    options.onFailing(error, retryInMs);
    schedule(() => {
      if (options.stopped()) return;
      const before = failures;
      watch
        .start()
        .then(
          () => {
            // A failure reported while it started (its list refused, say) has its own restart scheduled.
            if (failures !== before || options.stopped()) return;
            failures = 0;
            options.onRestored();
          },
          (startError: unknown) => {
            if (failures === before) failed(startError);
          },
        )
        .catch((error: unknown) => options.onCallbackError(error));
    }, retryInMs);
  };
  watch.on('error', failed);
}
