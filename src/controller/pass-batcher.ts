// Dispatch passes of many pools share their database work: the database halves of the passes that are
// ready at the same moment run as one transaction per database (a burst's first few in a transaction of their
// own beside it, leadBatch below; each: one lock statement, one snapshot, one
// decisions insert, one invocations insert for the whole batch), and the rows Lambda accepted are marked in
// one statement for many passes. Each pass then invokes its own rows through the invoker's shared slots.
// A thousand pools woken at once cost a handful of transactions, not a thousand.
import { isConnectionLost, isLockTimeout } from '../store/db.ts';
import { markInvoked, type AcceptedInvoke } from '../store/invocation-store.ts';
import type { Invoker } from '../lambda/invoker.ts';
import { Coalescer, type Outcome, type Settled } from './coalescer.ts';
import type { Database } from './databases.ts';
import { DispatchIdle } from './dispatch-idle.ts';
import { completePass, type DispatchPassResult, type PassInvokeInput } from './dispatch-pass.ts';
import { actOnPools, type ActedPass, type DispatchPassOptions, type PoolPassInput } from './pass-act.ts';

/**
 * A batch normally takes a few to tens of ms. One that waits on a row or a lock (a worker's transaction, a
 * DBA's) must not hold up every other pool of its database: after this long, the passes waiting behind it run
 * in a batch of their own, up to four at once.
 */
const STALLS = { stallMs: 250, maxConcurrent: 4 };

/**
 * A batch waits at most this long for a row lock, where a pass of its own waits the connection's lock timeout
 * (15 s). A row that another session holds (a worker login's open transaction, a DBA's) used to hold up every
 * other pool of its batch for that timeout, and again while each pool was tried alone before the held one.
 * Now the batch gives up after this long, the other pools go through alone at once, and only the held pool
 * waits out the full timeout (test/integration/dispatch-batch.test.ts). The worker's own transactions hold a
 * row for milliseconds.
 */
const BATCH_LOCK_WAIT_MS = 1_000;

/**
 * Rows Lambda accepted are marked once no invoke is under way and no pass still has rows on their way to the
 * invoker (dispatch-idle.ts), or after this long. A hundred pools woken together (ten invokes each) then mark
 * their rows in one statement when the burst's last invoke is answered, instead of one statement every few
 * passes while the rest of the burst invokes on the same cores (measured: 17 to 23 statements per burst
 * before, 1 after; the burst's share of the raw accept rate went from about 0.70 to 0.78, medians of 8 bursts
 * each). A row not yet marked is still `created`: its worker may already start it, and no pass invokes it
 * again before reinvokeGraceMs. Each row's invoked_at is still the moment its own invoke was answered
 * (markInvoked), not the moment of the statement.
 */
const MARK_HOLD_MS = 1_000;

export interface PassBatcherOptions {
  invoker: Invoker;
  options: DispatchPassOptions;
  /** The most pools in one transaction. */
  maxBatch: number;
  /**
   * When more passes than this are ready at once and no batch of their database is running (a burst after a
   * quiet spell), the first this many run in a transaction of their own, beside the rest's (coalescer.ts,
   * leadBatch): their rows are invoked while the rest are decided. Unset: one transaction for them all.
   */
  leadBatch?: number;
}

export class PassBatcher {
  private readonly acts = new WeakMap<Database, Coalescer<PoolPassInput, ActedPass | 'busy'>>();
  private readonly marks = new WeakMap<Database, Coalescer<readonly AcceptedInvoke[], void>>();
  /** The invoker idle, and no pass of this batcher with rows on their way to it. */
  private readonly idle: DispatchIdle;

  constructor(private readonly deps: PassBatcherOptions) {
    // Passes that made no progress for as long as a batch runs before it counts as stalled are not waited for.
    this.idle = new DispatchIdle({ invokerIdle: () => deps.invoker.idle(), stuckMs: STALLS.stallMs });
  }

  /**
   * One pool's pass, its database half batched with the passes of other pools of the same database.
   * `busy`: another session (a replica, the stranded sweep) holds the pool's lock this moment; try again soon.
   */
  async run(database: Database, input: PoolPassInput & PassInvokeInput): Promise<DispatchPassResult | 'busy'> {
    this.idle.begin();
    let acted: ActedPass | 'busy';
    try {
      acted = await this.actsFor(database).submit(input);
    } catch (error) {
      this.idle.end();
      throw error;
    }
    if (acted === 'busy') {
      this.idle.end();
      return 'busy';
    }
    const pass = completePass({
      ...input,
      db: database.db,
      invoker: this.deps.invoker,
      options: this.deps.options,
      acted,
      markInvoked: (rows) => (rows.length === 0 ? Promise.resolve() : this.marksFor(database).submit(rows)),
    });
    // completePass has handed the pass's first rows to the invoker before its first await, and hands in the
    // later ones as soon as they are committed (its callback on `rest` runs before this one).
    if (acted.rest) void acted.rest.then(() => this.idle.end());
    else this.idle.end();
    return pass;
  }

  private actsFor(database: Database): Coalescer<PoolPassInput, ActedPass | 'busy'> {
    let coalescer = this.acts.get(database);
    if (!coalescer) {
      coalescer = new Coalescer((inputs) => this.act(database, inputs), {
        maxBatch: this.deps.maxBatch,
        ...STALLS,
        ...(this.deps.leadBatch ? { leadBatch: this.deps.leadBatch } : {}),
      });
      this.acts.set(database, coalescer);
    }
    return coalescer;
  }

  /**
   * The batch in one transaction, whose statements wait at most BATCH_LOCK_WAIT_MS for a row lock. If it fails
   * for a reason other than the connection being lost, each pool is tried again alone, so that one pool's bad
   * rows, or a row of it another session holds, fail that pool's pass and no other: first briefly, in turn,
   * and the pools that waited out that brief lock wait once more, patiently (the connection's lock timeout),
   * one after another. Each pool is settled as soon as its own retry is through.
   */
  private async act(database: Database, inputs: PoolPassInput[]): Promise<Array<Outcome<ActedPass | 'busy'>>> {
    const { db } = database;
    const { options } = this.deps;
    const alone = async (input: PoolPassInput, lockWaitMs?: number): Promise<Settled<ActedPass | 'busy'>> => {
      try {
        const [value] = await actOnPools(db, [input], options, { lock: 'skip', ...(lockWaitMs ? { lockWaitMs } : {}) });
        return value ? { ok: true, value } : { ok: false, error: new Error('the pass returned nothing') };
      } catch (error) {
        return { ok: false, error };
      }
    };
    const [only, ...more] = inputs;
    if (only && more.length === 0) return [await alone(only)];
    try {
      const acted = await actOnPools(db, inputs, options, { lock: 'skip', lockWaitMs: BATCH_LOCK_WAIT_MS });
      return acted.map((value) => ({ ok: true, value }));
    } catch (error) {
      // Lost: every pool's pass would fail alike.
      if (isConnectionLost(error)) throw error;
    }
    // Two queues, one connection each: the brief retries in turn, and behind them, the patient ones.
    let brief = Promise.resolve();
    let patient = Promise.resolve();
    return inputs.map((input) => {
      const tried = brief.then(() => alone(input, BATCH_LOCK_WAIT_MS));
      brief = tried.then(() => undefined);
      return tried.then((outcome) => {
        if (outcome.ok || !isLockTimeout(outcome.error)) return outcome;
        const again = patient.then(() => alone(input));
        patient = again.then(() => undefined);
        return again;
      });
    });
  }

  /** Runs `start` once dispatch is idle (DispatchIdle), or MARK_HOLD_MS from now, whichever comes first. */
  private afterInvokes(start: () => void): void {
    let started = false;
    const go = () => {
      if (started) return;
      started = true;
      clearTimeout(timer);
      // After the last answer's own continuation (its pass hands in its rows in the same turn).
      setImmediate(start);
    };
    const timer = setTimeout(go, MARK_HOLD_MS);
    void this.idle.wait(() => started).then(go);
  }

  private marksFor(database: Database): Coalescer<readonly AcceptedInvoke[], void> {
    let coalescer = this.marks.get(database);
    if (!coalescer) {
      coalescer = new Coalescer(
        async (batches) => {
          await markInvoked(database.db, batches.flat(), database.clock);
          return batches.map(() => ({ ok: true, value: undefined }));
        },
        { maxBatch: 1_000, ...STALLS, defer: (start) => this.afterInvokes(start) },
      );
      this.marks.set(database, coalescer);
    }
    return coalescer;
  }
}
