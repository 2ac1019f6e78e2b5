// The function-configuration guard: per function (and the role it is invoked as), reads its configuration,
// reserved concurrency and event invoke config every few minutes, a few calls at a time so that a thousand
// pools cannot exceed Lambda's control-plane rate, and keeps the answer for the pools' status writes, the
// cost metrics (memory) and the orphan reasons (timeout). A pool with spec.function.asyncConfig: Managed
// has retries set to 0 and the event age raised to its start timeout. Nothing here is on the dispatch path.
import type { FunctionRef } from '../api/types.ts';
import { putManagedAsyncConfig, readFunctionSettings, type CallProblem, type FunctionSettings } from '../lambda/function-settings.ts';
import { regionOf, type InvokeTarget, type Invoker } from '../lambda/invoker.ts';
import { Slots } from '../lambda/slots.ts';
import type { Logger } from '../ops/logger.ts';
import { describeError } from '../ops/describe-error.ts';

export interface FunctionGuardOptions {
  /** How often a function's settings are read again. */
  intervalMs: number;
  /** Called when a read (or a Managed put) changed what the guard knows of a function: its pools' status is due again. */
  onChange?: (target: InvokeTarget) => void;
  /** Reads in flight at once, across every function. */
  parallelism?: number;
  now?: () => number;
}

interface Entry {
  /** The start timeouts of the Managed pools that invoke this function, by pool uid: the event age is set to the largest. */
  managedBy?: Map<string, number>;
  settings?: FunctionSettings;
  readAt: number;
  reading?: Promise<FunctionSettings>;
  /** The last time a Managed put failed, and why: reported, and not tried again before the next read. */
  managedProblem?: CallProblem;
}

export class FunctionGuard {
  private readonly entries = new Map<string, Entry>();
  /** The function (entry key) each Managed pool last asked to manage: a pool manages one function at most. */
  private readonly managing = new Map<string, string>();
  private readonly slots: Slots;
  private readonly now: () => number;

  constructor(
    private readonly invoker: Invoker,
    private readonly logger: Logger,
    private readonly options: FunctionGuardOptions,
  ) {
    this.slots = new Slots(options.parallelism ?? 4);
    this.now = options.now ?? Date.now;
  }

  /** The memory of a function, as any identity last read it (for GB-seconds). */
  memoryOf(fn: FunctionRef): number | undefined {
    const prefix = keyOf({
      name: fn.name,
      ...(fn.qualifier ? { qualifier: fn.qualifier } : {}),
      ...(fn.region ? { region: fn.region } : {}),
    });
    for (const [key, entry] of this.entries) {
      if (key.startsWith(prefix) && entry.settings?.configuration) return entry.settings.configuration.memoryMb;
    }
    return undefined;
  }

  /** The settings last read, without waiting (undefined before the first read). */
  cached(target: InvokeTarget): FunctionSettings | undefined {
    return this.entries.get(keyOf(target))?.settings;
  }

  /**
   * What is known of a function now, without waiting: a stale or missing read (and, for Managed, a put) is
   * started in the background, and onChange says when it lands.
   */
  check(
    target: InvokeTarget,
    pool: { poolUid: string; managed?: { startTimeoutSeconds: number } },
  ): { settings?: FunctionSettings; managedProblem?: CallProblem } {
    const key = keyOf(target);
    // A pool switched to Unmanaged, or to another function, no longer manages the one it managed.
    const was = this.managing.get(pool.poolUid);
    if (was !== undefined && (was !== key || !pool.managed)) {
      this.entries.get(was)?.managedBy?.delete(pool.poolUid);
      this.managing.delete(pool.poolUid);
    }
    let entry = this.entries.get(key);
    if (pool.managed) {
      entry ??= { readAt: 0 };
      this.entries.set(key, entry);
      (entry.managedBy ??= new Map()).set(pool.poolUid, pool.managed.startTimeoutSeconds);
      this.managing.set(pool.poolUid, key);
    }
    const wantAge = entry?.managedBy?.size ? managedAge(entry.managedBy) : undefined;
    const stale = !entry?.settings || this.now() - entry.readAt >= this.options.intervalMs;
    const unmanaged =
      wantAge !== undefined &&
      entry?.settings?.asyncConfig !== undefined &&
      !entry.managedProblem &&
      (entry.settings.asyncConfig.maximumRetryAttempts !== 0 || entry.settings.asyncConfig.maximumEventAgeSeconds !== wantAge);
    if ((stale || unmanaged) && !entry?.reading) {
      const before = JSON.stringify([entry?.settings, entry?.managedProblem]);
      const work = wantAge !== undefined ? this.manage(target) : this.settings(target);
      void work.then(
        () => {
          const after = this.entries.get(key);
          if (JSON.stringify([after?.settings, after?.managedProblem]) !== before) this.options.onChange?.(target);
        },
        (error: unknown) => this.logger.error('function check failed', { function: target.name, error: describeError(error) }),
      );
    }
    const now = this.entries.get(key);
    return { ...(now?.settings ? { settings: now.settings } : {}), ...(now?.managedProblem ? { managedProblem: now.managedProblem } : {}) };
  }

  /** The settings, read again first when older than the interval (concurrent callers share one read). */
  async settings(target: InvokeTarget): Promise<FunctionSettings> {
    const key = keyOf(target);
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { readAt: 0 };
      this.entries.set(key, entry);
    }
    if (entry.settings && this.now() - entry.readAt < this.options.intervalMs) return entry.settings;
    entry.reading ??= this.read(target, entry).finally(() => {
      if (entry) entry.reading = undefined;
    });
    return entry.reading;
  }

  /** A pool is gone: its start timeout no longer counts for the event age of its function. */
  forgetPool(poolUid: string): void {
    for (const entry of this.entries.values()) entry.managedBy?.delete(poolUid);
    this.managing.delete(poolUid);
  }

  /**
   * Managed async config: retries 0, and an event age equal to the start timeout (an event older than that
   * is orphaned already, so Lambda may as well drop it); pools sharing a function settle on the largest.
   */
  async manage(target: InvokeTarget): Promise<{ settings: FunctionSettings; problem?: CallProblem }> {
    const settings = await this.settings(target);
    const entry = this.entries.get(keyOf(target));
    if (!entry?.managedBy?.size) return { settings };
    const age = managedAge(entry.managedBy);
    const current = settings.asyncConfig;
    if (!settings.configuration || !current) return { settings };
    if (current.maximumRetryAttempts === 0 && current.maximumEventAgeSeconds === age) return { settings };
    if (entry.managedProblem) return { settings, problem: entry.managedProblem };
    const client = this.invoker.clients.client(regionOf(target) ?? this.invoker.defaultRegion, target.roleArn);
    await this.slots.acquire();
    let problem: CallProblem | undefined;
    try {
      problem = await putManagedAsyncConfig(client, target, { maximumEventAgeSeconds: age });
    } finally {
      this.slots.release();
    }
    if (problem) {
      entry.managedProblem = problem;
      this.logger.warn('could not set the async config of a function', {
        function: target.name,
        code: problem.code,
        error: problem.message,
      });
      return { settings, problem };
    }
    this.logger.info('async config of a function set (asyncConfig: Managed)', {
      function: target.name,
      maximumRetryAttempts: 0,
      maximumEventAgeSeconds: age,
    });
    entry.readAt = 0;
    return { settings: await this.settings(target) };
  }

  private async read(target: InvokeTarget, entry: Entry): Promise<FunctionSettings> {
    const client = this.invoker.clients.client(regionOf(target) ?? this.invoker.defaultRegion, target.roleArn);
    await this.slots.acquire();
    try {
      const settings = await readFunctionSettings(client, target);
      entry.settings = settings;
      entry.readAt = this.now();
      entry.managedProblem = undefined;
      for (const p of settings.problems) {
        this.logger.warn('could not read a function setting', { function: target.name, action: p.action, code: p.code, error: p.message });
      }
      return settings;
    } catch (error) {
      // readFunctionSettings reports failed calls in `problems`; anything else is a bug worth a line, not a crash.
      this.logger.error('function settings read failed', { function: target.name, error: describeError(error) });
      const settings: FunctionSettings = {
        problems: [{ action: 'lambda:GetFunctionConfiguration', code: 'UnknownError', message: describeError(error) }],
      };
      entry.settings = settings;
      entry.readAt = this.now();
      return settings;
    } finally {
      this.slots.release();
    }
  }
}

/** The event age Managed pools want: the largest start timeout, within what Lambda allows (60 to 21600 s). */
function managedAge(managedBy: ReadonlyMap<string, number>): number {
  return Math.min(21_600, Math.max(60, ...managedBy.values()));
}

function keyOf(target: FunctionRef & { roleArn?: string }): string {
  return [target.name, target.qualifier ?? '', target.region ?? '', target.roleArn ?? ''].join('\u0000');
}
