// Routes database notifications to pool keys: a queue name (ltp_tasks) or a pool uid (ltp_invocations),
// within the database the notification came from.
import { TASKS_CHANNEL, type Channel } from '../store/notifications.ts';

export interface Route {
  database: string;
  queue: string;
  uid: string;
}

export class NotificationRoutes {
  private readonly byKey = new Map<string, Route>();

  set(key: string, route: Route): void {
    this.byKey.set(key, route);
  }

  get(key: string): Route | undefined {
    return this.byKey.get(key);
  }

  forget(key: string): void {
    this.byKey.delete(key);
  }

  keysFor(database: string, channel: Channel, payload: string): string[] {
    const keys: string[] = [];
    for (const [key, route] of this.byKey) {
      if (route.database !== database) continue;
      if (channel === TASKS_CHANNEL ? route.queue === payload : route.uid === payload) keys.push(key);
    }
    return keys;
  }
}
