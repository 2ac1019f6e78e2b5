// Routes database notifications to pool keys: a queue name (ltp_tasks) or a pool uid (ltp_invocations),
// within the database the notification came from. Indexed both ways, so a notification costs a lookup,
// not a walk over every pool.
import { TASKS_CHANNEL, type Channel } from '../store/notifications.ts';

export interface Route {
  database: string;
  queue: string;
  uid: string;
}

export class NotificationRoutes {
  private readonly byKey = new Map<string, Route>();
  /** `${database}\u0000${queue or uid}` -> keys */
  private readonly byQueue = new Map<string, Set<string>>();
  private readonly byUid = new Map<string, Set<string>>();

  set(key: string, route: Route): void {
    const old = this.byKey.get(key);
    if (old && old.database === route.database && old.queue === route.queue && old.uid === route.uid) return;
    this.forget(key);
    this.byKey.set(key, route);
    add(this.byQueue, `${route.database}\u0000${route.queue}`, key);
    add(this.byUid, `${route.database}\u0000${route.uid}`, key);
  }

  get(key: string): Route | undefined {
    return this.byKey.get(key);
  }

  forget(key: string): void {
    const old = this.byKey.get(key);
    if (!old) return;
    this.byKey.delete(key);
    remove(this.byQueue, `${old.database}\u0000${old.queue}`, key);
    remove(this.byUid, `${old.database}\u0000${old.uid}`, key);
  }

  /** The keys of the pools a database's routes know, for a full wake-up after a missed notification. */
  keysOfDatabase(database: string): string[] {
    return [...this.byKey].filter(([, r]) => r.database === database).map(([key]) => key);
  }

  keysFor(database: string, channel: Channel, payload: string): string[] {
    const index = channel === TASKS_CHANNEL ? this.byQueue : this.byUid;
    return [...(index.get(`${database}\u0000${payload}`) ?? [])];
  }
}

function add(index: Map<string, Set<string>>, at: string, key: string): void {
  let keys = index.get(at);
  if (!keys) index.set(at, (keys = new Set()));
  keys.add(key);
}

function remove(index: Map<string, Set<string>>, at: string, key: string): void {
  const keys = index.get(at);
  if (!keys) return;
  keys.delete(key);
  if (keys.size === 0) index.delete(at);
}
