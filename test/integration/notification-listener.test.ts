// The LISTEN connection against a real Postgres, and against an endpoint that takes the connection and never
// answers (a paused host, a proxy with no backend): the listener must give up the attempt and try again, or
// no wake-up would come again until the controller restarted.
import net from 'node:net';
import { expect } from 'chai';
import { NotificationListener, TASKS_CHANNEL } from '../../src/store/notifications.ts';
import { freshDatabase } from '../support/postgres.ts';

const waitFor = async (what: string, check: () => boolean, timeoutMs: number) => {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};

describe('the notification listener', function () {
  this.timeout(60_000);

  it('hears a NOTIFY on its channel from a real Postgres', async () => {
    const t = await freshDatabase('listen');
    const heard: string[] = [];
    let connected = 0;
    const listener = new NotificationListener({
      url: t.url,
      onNotify: (_, payload) => heard.push(payload),
      onConnected: () => connected++,
    });
    try {
      listener.start();
      await waitFor('the listener to connect', () => connected === 1, 10_000);
      await t.db.query(`SELECT pg_notify($1, $2)`, [TASKS_CHANNEL, 'thumbnails']);
      await waitFor('the notification', () => heard.length === 1, 10_000);
      expect(heard).to.deep.equal(['thumbnails']);
    } finally {
      await listener.stop();
      await t.close();
    }
  });

  it('gives up a connection attempt that gets no answer and tries again', async () => {
    const accepted: net.Socket[] = [];
    const silent = net.createServer((socket) => accepted.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as net.AddressInfo;
    const errors: unknown[] = [];
    const listener = new NotificationListener({
      url: `postgres://u:p@127.0.0.1:${port}/db`,
      connectTimeoutMs: 300,
      onNotify: () => undefined,
      onError: (error) => errors.push(error),
    });
    try {
      listener.start();
      // The first attempt times out after 300 ms, the retry comes 500 ms later and times out too.
      await waitFor('two attempts given up', () => errors.length >= 2, 10_000);
      expect(accepted.length, 'connections the silent endpoint took').to.be.at.least(2);
      expect(String(errors[0])).to.match(/timeout/i);
    } finally {
      await listener.stop();
      accepted.forEach((s) => s.destroy());
      silent.close();
    }
  });
});
