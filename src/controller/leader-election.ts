// Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it: acquire when
// the lease is free or expired, renew every retry period, and give up leadership when a renewal has not
// succeeded within the renew deadline. Updates carry the resourceVersion, so two candidates cannot both win.
// Every time here is this process's own monotonic clock, never another replica's:
// - a candidate judges a held lease expired when it has seen no change to it for the lease's duration (as
//   client-go's observedTime), not by the holder's renewTime against its own clock: a replica whose clock ran
//   16 s ahead took the lease from a healthy leader at once, and both led for 10 s;
// - the leader counts its renew deadline from when its renewal began (the Lease's renewTime says that moment),
//   not from its answer, and gives leadership up at the deadline even while a request is still on its way: on
//   an API path slow enough for a renewal to take 4.9 s, both led for 5.4 s. A renewal answered after its
//   deadline does not make it lead again.
import type { CoordinationV1Api, V1Lease } from '@kubernetes/client-node';
import type { Logger } from '../ops/logger.ts';
import { apiStatus, type RequestOptions } from './kube.ts';

/** metav1.MicroTime wants exactly six fractional digits; a plain Date serialises three. */
class MicroTime extends Date {
  override toJSON(): string {
    return this.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
  }
}

export interface LeaderElectionOptions {
  coordination: CoordinationV1Api;
  /** Per-request options (deadline, connection pool); KubeApi.options. */
  requestOptions: RequestOptions;
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  logger: Logger;
  onStartedLeading(): void;
  onStoppedLeading(): void;
  now?: () => Date;
}

/** This process's monotonic clock, in ms. */
const monotonic = () => performance.now();

export class LeaderElector {
  private leading = false;
  private stopped = false;
  /** When the last renewal that succeeded began (monotonic). */
  private lastRenew = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Gives leadership up at the renew deadline, whether or not a request is in flight. */
  private deadlineTimer: NodeJS.Timeout | undefined;
  /** The Lease as last seen (its resourceVersion), and when it was first seen so (monotonic). */
  private observed: { version: string; at: number } | undefined;
  /** The acquire-or-renew request in flight, if any: stop waits for it. */
  private inFlight: Promise<unknown> | undefined;
  /** The request in flight when stop() came took or renewed the lease. */
  private acquiredSinceStop = false;
  private readonly now: () => Date;

  constructor(private readonly options: LeaderElectionOptions) {
    this.now = options.now ?? (() => new Date());
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    void this.tick();
  }

  /** Stops, and releases the lease if held so a standby takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    // A request in flight may take or renew the lease after this: wait for it, so that what it did is
    // released below and it does not make a stopped elector lead again.
    await this.inFlight?.catch(() => undefined);
    const wasLeading = this.leading;
    this.leading = false;
    if (!wasLeading && !this.acquiredSinceStop) return;
    try {
      const lease = await this.read();
      if (lease?.spec?.holderIdentity === this.options.identity) {
        lease.spec.holderIdentity = undefined;
        lease.spec.leaseDurationSeconds = 1;
        await this.options.coordination.replaceNamespacedLease(
          { namespace: this.options.namespace, name: this.options.name, body: lease },
          this.deadline(),
        );
      }
    } catch (error) {
      this.options.logger.warn('could not release the leader lease', { error: String(error) });
    }
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    const started = monotonic();
    try {
      const attempt = this.tryAcquireOrRenew();
      this.inFlight = attempt;
      const acquired = await attempt;
      this.inFlight = undefined;
      if (this.stopped) {
        // stop() came while the request was in flight: it releases what the request took.
        this.acquiredSinceStop = acquired;
        return;
      }
      const tookMs = monotonic() - started;
      if (acquired && tookMs > this.options.renewDeadlineMs) {
        // Others may already count the lease from its write: too late to lead on it.
        this.options.logger.warn('leader lease renewed after the renew deadline: not leading on it', {
          identity: this.options.identity,
          tookMs: Math.round(tookMs),
        });
      } else if (acquired) {
        this.lastRenew = started;
        this.armDeadline();
        if (!this.leading) {
          this.leading = true;
          this.options.logger.info('became leader', {
            lease: `${this.options.namespace}/${this.options.name}`,
            identity: this.options.identity,
          });
          this.options.onStartedLeading();
        }
      }
    } catch (error) {
      this.options.logger.warn('leader lease request failed', { error: error instanceof Error ? error.message : String(error) });
    }
    this.checkDeadline();
    if (!this.stopped) {
      this.timer = setTimeout(() => void this.tick(), this.options.retryPeriodMs);
      this.timer.unref?.();
    }
  }

  /**
   * Looks at the renew deadline when it is due. A timer may fire a little early (Node's timers count from the
   * event loop's cached time): then it looks again when the rest is due.
   */
  private armDeadline(): void {
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    const left = this.lastRenew + this.options.renewDeadlineMs - monotonic();
    this.deadlineTimer = setTimeout(
      () => {
        if (this.stopped || !this.leading) return;
        if (this.lastRenew + this.options.renewDeadlineMs - monotonic() >= 0) this.armDeadline();
        else this.checkDeadline();
      },
      Math.max(0, Math.ceil(left) + 1),
    );
    this.deadlineTimer.unref?.();
  }

  /** Gives leadership up once the renew deadline has passed since the last renewal that succeeded began. */
  private checkDeadline(): void {
    if (!this.leading || this.stopped || monotonic() - this.lastRenew <= this.options.renewDeadlineMs) return;
    this.leading = false;
    this.options.logger.error('lost leadership: the lease was not renewed in time', { identity: this.options.identity });
    this.options.onStoppedLeading();
  }

  /** Notes the Lease as read or written now; a change restarts the count to its expiry. */
  private observe(lease: V1Lease | undefined): void {
    const version = lease?.metadata?.resourceVersion;
    if (version === undefined) return;
    if (this.observed?.version !== version) this.observed = { version, at: monotonic() };
  }

  /** A request to the API server that hangs must not outlive the renew deadline: give up on it sooner. */
  private deadline() {
    return this.options.requestOptions(Math.max(1_000, Math.floor(this.options.renewDeadlineMs / 2)));
  }

  private async read(): Promise<V1Lease | undefined> {
    try {
      return await this.options.coordination.readNamespacedLease(
        { namespace: this.options.namespace, name: this.options.name },
        this.deadline(),
      );
    } catch (error) {
      if (apiStatus(error) === 404) return undefined;
      throw error;
    }
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name, identity } = this.options;
    const now = new MicroTime(this.now().getTime());
    const durationSeconds = Math.ceil(this.options.leaseDurationMs / 1000);
    const lease = await this.read();
    this.observe(lease);
    if (!lease) {
      try {
        const created = await this.options.coordination.createNamespacedLease(
          {
            namespace,
            body: {
              metadata: { name, namespace },
              spec: {
                holderIdentity: identity,
                leaseDurationSeconds: durationSeconds,
                acquireTime: now,
                renewTime: now,
                leaseTransitions: 0,
              },
            },
          },
          this.deadline(),
        );
        this.observe(created);
        return true;
      } catch (error) {
        if (apiStatus(error) === 409) return false;
        throw error;
      }
    }
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity;
    // Expired: unchanged for its duration, by this process's clock since it first saw it so.
    const unchangedMs = monotonic() - (this.observed?.at ?? monotonic());
    const expired = unchangedMs > (spec.leaseDurationSeconds ?? durationSeconds) * 1000;
    if (holder && holder !== identity && !expired) return false;
    const taking = holder !== identity;
    lease.spec = {
      ...spec,
      holderIdentity: identity,
      leaseDurationSeconds: durationSeconds,
      renewTime: now,
      ...(taking ? { acquireTime: now, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 } : {}),
    };
    try {
      this.observe(await this.options.coordination.replaceNamespacedLease({ namespace, name, body: lease }, this.deadline()));
      return true;
    } catch (error) {
      if (apiStatus(error) === 409) return false;
      throw error;
    }
  }
}
