// Migrations against a real Postgres, as a DBA would run them: by a schema owner without CREATE on the
// database, and while another session holds a table a migration must alter.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { expect } from 'chai';
import { DDL_LOCK_TIMEOUT_MS, MIGRATIONS, migrate } from '../../src/store/migrate.ts';
import { sharedPostgres } from '../support/postgres.ts';

/** A new, empty database of the shared server: its URL as the superuser, and a client on it. */
async function emptyDatabase(prefix: string): Promise<{ name: string; url: string; admin: pg.Client }> {
  const server = await sharedPostgres();
  const name = `${prefix}_${process.pid}_${randomBytes(3).toString('hex')}`;
  const root = new pg.Client({ connectionString: server.url });
  await root.connect();
  await root.query(`CREATE DATABASE ${name}`);
  await root.end();
  const url = server.url.replace(/\/[^/]*$/, `/${name}`);
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  return { name, url, admin };
}

async function applied(client: pg.Client): Promise<number> {
  return (await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM ltp.migrations`)).rows[0]?.n ?? 0;
}

describe('migrate (real Postgres)', function () {
  this.timeout(120_000);
  const cleanups: Array<() => Promise<void>> = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it('migrates and upgrades as the owner of a schema a DBA made, without CREATE on the database', async () => {
    const { name, url, admin } = await emptyDatabase('owned');
    const owner = `owner_${randomBytes(3).toString('hex')}`;
    cleanups.push(async () => {
      await admin.query(`DROP SCHEMA IF EXISTS ltp CASCADE`);
      await admin.end();
      const server = await sharedPostgres();
      const root = new pg.Client({ connectionString: server.url });
      await root.connect();
      await root.query(`DROP DATABASE IF EXISTS ${name}`);
      await root.query(`DROP ROLE IF EXISTS ${owner}`);
      await root.end();
    });
    await admin.query(`CREATE ROLE ${owner} LOGIN`);
    await admin.query(`REVOKE CREATE ON DATABASE ${name} FROM PUBLIC`);
    await admin.query(`CREATE SCHEMA ltp AUTHORIZATION ${owner}`);
    const asOwner = new URL(url);
    asOwner.username = owner;
    asOwner.password = '';

    const first = await migrate(asOwner.toString());
    expect(first.applied).to.have.length(MIGRATIONS.length);
    // An upgrade: the last migration undone by hand, as a database one version behind.
    const ownerClient = new pg.Client({ connectionString: asOwner.toString() });
    await ownerClient.connect();
    try {
      await ownerClient.query(`ALTER TABLE ltp.queue_claims DROP COLUMN retention_seconds, DROP COLUMN refreshed_at`);
      await ownerClient.query(`DELETE FROM ltp.migrations WHERE name = 'ClaimRetention1765238400000'`);
      const upgrade = await migrate(asOwner.toString());
      expect(upgrade.applied).to.deep.equal(['ClaimRetention1765238400000']);
      expect(await applied(ownerClient)).to.equal(MIGRATIONS.length);
    } finally {
      await ownerClient.end();
    }
  });

  it('gives up within its lock timeout, changing nothing, while a session holds a table it must alter; producers are not held behind it', async () => {
    const { name, url, admin } = await emptyDatabase('held');
    cleanups.push(async () => {
      await admin.end();
      const server = await sharedPostgres();
      const root = new pg.Client({ connectionString: server.url });
      await root.connect();
      await root.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await root.end();
    });
    await migrate(url);
    await admin.query(`ALTER TABLE ltp.queue_claims DROP COLUMN retention_seconds, DROP COLUMN refreshed_at`);
    await admin.query(`DELETE FROM ltp.migrations WHERE name = 'ClaimRetention1765238400000'`);

    // A reporting session left open in a transaction that read the table.
    const reporter = new pg.Client({ connectionString: url });
    await reporter.connect();
    await reporter.query(`BEGIN; SELECT count(*) FROM ltp.queue_claims`);
    const producer = new pg.Client({ connectionString: url });
    await producer.connect();
    try {
      const began = Date.now();
      const upgrading = migrate(url).then(
        () => undefined,
        (error: unknown) => error,
      );
      // While the migration waits, another session's read of the table queues behind it, for no longer.
      await new Promise((resolve) => setTimeout(resolve, 500));
      const readBegan = Date.now();
      await producer.query(`SELECT count(*) FROM ltp.queue_claims`);
      const readWaited = Date.now() - readBegan;
      const error = await upgrading;
      const took = Date.now() - began;
      expect(error, 'the migration fails').to.be.instanceOf(Error);
      expect((error as Error).message)
        .to.include('could not lock its tables')
        .and.include('pg_locks');
      expect(took, 'it gave up at its lock timeout').to.be.below(DDL_LOCK_TIMEOUT_MS + 5_000);
      expect(readWaited, 'a read behind it waited no longer than the lock timeout').to.be.below(DDL_LOCK_TIMEOUT_MS + 1_000);
      expect(await applied(admin), 'nothing of it was recorded').to.equal(MIGRATIONS.length - 1);

      // Once the session ends, migrate goes through.
      await reporter.query('COMMIT');
      expect((await migrate(url)).applied).to.deep.equal(['ClaimRetention1765238400000']);
    } finally {
      await reporter.end();
      await producer.end();
    }
  });
});
