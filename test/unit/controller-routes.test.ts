import { expect } from 'chai';
import { NotificationRoutes } from '../../src/controller/routes.ts';
import { INVOCATIONS_CHANNEL, TASKS_CHANNEL } from '../../src/store/notifications.ts';

const MEDIA_DB = 'db.internal:5432/media';
const BILLING_DB = 'db.internal:5432/billing';

function routes(): NotificationRoutes {
  const r = new NotificationRoutes();
  r.set('jobs/thumbnails', { database: MEDIA_DB, queue: 'thumbnails', uid: 'uid-thumbs' });
  r.set('jobs/transcode', { database: MEDIA_DB, queue: 'transcode', uid: 'uid-transcode' });
  r.set('billing/thumbnails', { database: BILLING_DB, queue: 'thumbnails', uid: 'uid-billing' });
  return r;
}

describe('NotificationRoutes', () => {
  const cases: Array<{
    name: string;
    database: string;
    channel: typeof TASKS_CHANNEL | typeof INVOCATIONS_CHANNEL;
    payload: string;
    keys: string[];
  }> = [
    {
      name: 'wakes the pool serving a queue when a task is added to it',
      database: MEDIA_DB,
      channel: TASKS_CHANNEL,
      payload: 'thumbnails',
      keys: ['jobs/thumbnails'],
    },
    {
      name: 'wakes only the pool in the database the notification came from when two databases share a queue name',
      database: BILLING_DB,
      channel: TASKS_CHANNEL,
      payload: 'thumbnails',
      keys: ['billing/thumbnails'],
    },
    { name: 'wakes nothing for a queue no pool serves', database: MEDIA_DB, channel: TASKS_CHANNEL, payload: 'audio', keys: [] },
    {
      name: 'wakes nothing for a database no pool uses',
      database: 'elsewhere:5432/media',
      channel: TASKS_CHANNEL,
      payload: 'thumbnails',
      keys: [],
    },
    {
      name: 'wakes the pool whose uid an invocation notification names',
      database: MEDIA_DB,
      channel: INVOCATIONS_CHANNEL,
      payload: 'uid-transcode',
      keys: ['jobs/transcode'],
    },
    {
      name: 'does not wake a pool by uid from a database it does not use',
      database: BILLING_DB,
      channel: INVOCATIONS_CHANNEL,
      payload: 'uid-thumbs',
      keys: [],
    },
    {
      name: 'does not take a queue name on the invocations channel for a uid',
      database: MEDIA_DB,
      channel: INVOCATIONS_CHANNEL,
      payload: 'thumbnails',
      keys: [],
    },
    {
      name: 'does not take a uid on the tasks channel for a queue name',
      database: MEDIA_DB,
      channel: TASKS_CHANNEL,
      payload: 'uid-thumbs',
      keys: [],
    },
  ];

  for (const c of cases) {
    it(c.name, () => {
      expect(routes().keysFor(c.database, c.channel, c.payload)).to.deep.equal(c.keys);
    });
  }

  it('wakes every pool that claims the same queue in the same database', () => {
    const r = routes();
    r.set('other/thumbnails', { database: MEDIA_DB, queue: 'thumbnails', uid: 'uid-other' });
    expect(r.keysFor(MEDIA_DB, TASKS_CHANNEL, 'thumbnails').sort()).to.deep.equal(['jobs/thumbnails', 'other/thumbnails']);
  });

  it('follows a pool that moves to another queue', () => {
    const r = routes();
    r.set('jobs/thumbnails', { database: MEDIA_DB, queue: 'thumbnails-v2', uid: 'uid-thumbs' });
    expect(r.keysFor(MEDIA_DB, TASKS_CHANNEL, 'thumbnails')).to.deep.equal([]);
    expect(r.keysFor(MEDIA_DB, TASKS_CHANNEL, 'thumbnails-v2')).to.deep.equal(['jobs/thumbnails']);
  });

  it('stops waking a pool once it is forgotten', () => {
    const r = routes();
    r.forget('jobs/thumbnails');
    expect(r.keysFor(MEDIA_DB, TASKS_CHANNEL, 'thumbnails')).to.deep.equal([]);
    expect(r.keysFor(MEDIA_DB, INVOCATIONS_CHANNEL, 'uid-thumbs')).to.deep.equal([]);
    expect(r.keysFor(MEDIA_DB, TASKS_CHANNEL, 'transcode')).to.deep.equal(['jobs/transcode']);
  });

  it('ignores forgetting a pool it never knew', () => {
    const r = routes();
    r.forget('nobody/nothing');
    expect(r.keysFor(MEDIA_DB, TASKS_CHANNEL, 'thumbnails')).to.deep.equal(['jobs/thumbnails']);
  });
});
