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
  /** The pools (by uid) whose last check named this function: an entry no pool names any more is dropped. */
  users: Set<string>;
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
  /** The entry keys of each function (name, qualifier and region), whatever the identity: memoryOf's index. */
  private readonly keysOfFunction = new Map<string, Set<string>>();
  /** The function (entry key) each pool last checked: a pool names one function at most. */
  private readonly using = new Map<string, string>();
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
    for (const key of this.keysOfFunction.get(functionKeyOf(fn)) ?? []) {
      const memory = this.entries.get(key)?.settings?.configuration?.memoryMb;
      if (memory !== undefined) return memory;
    }
    return undefined;
  }

  /** How many functions the guard keeps settings of (one per function and identity that a pool names). */
  get size(): number {
    return this.entries.size;
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
    // A pool switched to another function no longer uses (nor manages) the one it named.
    const was = this.using.get(pool.poolUid);
    if (was !== undefined && was !== key) this.release(pool.poolUid, was);
    const entry = this.entry(key, target);
    entry.users.add(pool.poolUid);
    this.using.set(pool.poolUid, key);
    if (pool.managed) (entry.managedBy ??= new Map()).set(pool.poolUid, pool.managed.startTimeoutSeconds);
    else entry.managedBy?.delete(pool.poolUid);
    const wantAge = entry.managedBy?.size ? managedAge(entry.managedBy) : undefined;
    const stale = !entry.settings || this.now() - entry.readAt >= this.options.intervalMs;
    const unmanaged =
      wantAge !== undefined &&
      entry.settings?.asyncConfig !== undefined &&
      !entry.managedProblem &&
      (entry.settings.asyncConfig.maximumRetryAttempts !== 0 || entry.settings.asyncConfig.maximumEventAgeSeconds !== wantAge);
    if ((stale || unmanaged) && !entry.reading) {
      const before = JSON.stringify([entry.settings, entry.managedProblem]);
      const work = wantAge !== undefined ? this.manage(target) : this.settings(target);
      void work.then(
        () => {
          const after = this.entries.get(key);
          if (JSON.stringify([after?.settings, after?.managedProblem]) !== before) this.options.onChange?.(target);
        },
        (error: unknown) => this.logger.error('function check failed', { function: target.name, error: describeError(error) }),
      );
    }
    return {
      ...(entry.settings ? { settings: entry.settings } : {}),
      ...(entry.managedProblem ? { managedProblem: entry.managedProblem } : {}),
    };
  }

  /** The settings, read again first when older than the interval (concurrent callers share one read). */
  async settings(target: InvokeTarget): Promise<FunctionSettings> {
    const entry = this.entry(keyOf(target), target);
    if (entry.settings && this.now() - entry.readAt < this.options.intervalMs) return entry.settings;
    entry.reading ??= this.read(target, entry).finally(() => {
      entry.reading = undefined;
    });
    return entry.reading;
  }

  /**
   * A pool is gone: its start timeout no longer counts for the event age of its function, and a function no
   * pool names any more is forgotten (pools come and go by the thousand; their functions must not stay).
   */
  forgetPool(poolUid: string): void {
    const key = this.using.get(poolUid);
    if (key !== undefined) this.release(poolUid, key);
  }

  /** The entry of a function and identity, made on first use. */
  private entry(key: string, fn: FunctionRef): Entry {
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { users: new Set(), readAt: 0 };
      this.entries.set(key, entry);
      const functionKey = functionKeyOf(fn);
      let keys = this.keysOfFunction.get(functionKey);
      if (!keys) this.keysOfFunction.set(functionKey, (keys = new Set()));
      keys.add(key);
    }
    return entry;
  }

  /** A pool no longer names a function: the function's entry goes once no pool names it. */
  private release(poolUid: string, key: string): void {
    this.using.delete(poolUid);
    const entry = this.entries.get(key);
    if (!entry) return;
    entry.users.delete(poolUid);
    entry.managedBy?.delete(poolUid);
    if (entry.users.size > 0) return;
    // A read still under way finishes into the detached entry; its callers get its answer all the same.
    this.entries.delete(key);
    const functionKey = key.slice(0, key.lastIndexOf('\u0000'));
    const keys = this.keysOfFunction.get(functionKey);
    keys?.delete(key);
    if (keys?.size === 0) this.keysOfFunction.delete(functionKey);
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
    // Read again, unless every pool of the function went while the put was under way: a read now would
    // make the entry anew, with no pool to release it.
    if (this.entries.get(keyOf(target)) !== entry) return { settings };
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

/** A function and the identity it is read as. */
function keyOf(target: FunctionRef & { roleArn?: string }): string {
  return [functionKeyOf(target), target.roleArn ?? ''].join('\u0000');
}

/** A function, whatever the identity: the entry key less its last part. */
function functionKeyOf(fn: FunctionRef): string {
  return [fn.name, fn.qualifier ?? '', fn.region ?? ''].join('\u0000');
}
