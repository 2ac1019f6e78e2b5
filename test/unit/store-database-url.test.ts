import { expect } from 'chai';
import { DatabaseUrlError, parseDatabaseUrl } from '../../src/store/database-url.ts';

const PASSWORD = 'hunter2-S3cret';

describe('parseDatabaseUrl', () => {
  const valid: Array<{ name: string; url: string; display: string }> = [
    {
      name: 'shows host, port and database of a postgres:// URL',
      url: `postgres://app:${PASSWORD}@db.internal:6432/media`,
      display: 'db.internal:6432/media',
    },
    {
      name: 'accepts the postgresql:// scheme',
      url: `postgresql://app:${PASSWORD}@db.internal:5433/media`,
      display: 'db.internal:5433/media',
    },
    {
      name: 'assumes port 5432 when the URL names none',
      url: `postgres://app:${PASSWORD}@db.internal/media`,
      display: 'db.internal:5432/media',
    },
    { name: 'accepts a URL without credentials', url: 'postgres://db.internal/media', display: 'db.internal:5432/media' },
    {
      name: 'keeps query parameters out of the display',
      url: `postgres://app:${PASSWORD}@db.internal/media?sslmode=require`,
      display: 'db.internal:5432/media',
    },
    {
      name: 'shows the socket directory given as a host= parameter',
      url: 'postgres:///media?host=/var/run/postgresql',
      display: '/var/run/postgresql:5432/media',
    },
    {
      name: 'shows the socket directory given as a host= parameter after credentials (as pg and libpq accept)',
      url: `postgres://app:${PASSWORD}@/media?host=/var/run/postgresql`,
      display: '/var/run/postgresql:5432/media',
    },
    // An @ in a parameter's value is legal: a Cloud SQL IAM user, an Azure user@server, an application name.
    {
      name: 'accepts a socket URL whose user= has an @ (a Cloud SQL IAM user)',
      url: 'postgres:///media?host=/var/run/postgresql&user=svc@proj.iam',
      display: '/var/run/postgresql:5432/media',
    },
    {
      name: 'accepts a user= with an @ and no credentials',
      url: 'postgres://db.internal/media?user=alice@corp.com',
      display: 'db.internal:5432/media',
    },
    {
      name: 'accepts an application_name with an @',
      url: `postgres://app:${PASSWORD}@db.internal/media?application_name=etl@nightly`,
      display: 'db.internal:5432/media',
    },
    {
      name: 'decodes a percent-encoded database name',
      url: `postgres://app:${PASSWORD}@db.internal/my%20db`,
      display: 'db.internal:5432/my db',
    },
    {
      name: 'ignores surrounding whitespace, as a Secret value often has',
      url: `  postgres://app:${PASSWORD}@db.internal/media\n`,
      display: 'db.internal:5432/media',
    },
    { name: 'shows an IPv6 host', url: `postgres://app:${PASSWORD}@[::1]:5432/media`, display: '[::1]:5432/media' },
    {
      name: 'shows the host and port of host= and port= parameters, where node-postgres really connects',
      url: `postgres://app:${PASSWORD}@decoy.example:6543/media?host=db.internal&port=5433`,
      display: 'db.internal:5433/media',
    },
    {
      name: 'shows the last of repeated host= parameters, as node-postgres takes the last',
      url: `postgres://app:${PASSWORD}@decoy.example/media?host=first.example&host=db.internal`,
      display: 'db.internal:5432/media',
    },
    {
      name: 'accepts the file parameters of an operator URL (a CA bundle mounted in the pod)',
      url: `postgres://app:${PASSWORD}@db.internal/media?sslmode=verify-full&sslrootcert=/etc/ssl/rds.pem`,
      display: 'db.internal:5432/media',
    },
  ];

  for (const c of valid) {
    it(`${c.name}, without the password`, () => {
      const target = parseDatabaseUrl(c.url);
      expect(target.display).to.equal(c.display);
      expect(target.display).to.not.include(PASSWORD);
      expect(target.url).to.equal(c.url.trim());
    });
  }

  const invalid: Array<{ name: string; url: string | undefined; says: string }> = [
    { name: 'an undefined URL', url: undefined, says: 'is empty' },
    { name: 'an empty URL', url: '', says: 'is empty' },
    { name: 'a blank URL', url: '   \n', says: 'is empty' },
    { name: 'a URL without a scheme', url: `app:${PASSWORD}@db.internal:5432/media`, says: 'expected postgres or postgresql' },
    { name: 'text that is not a URL', url: `host=db.internal password=${PASSWORD} dbname=media`, says: 'is not a URL' },
    { name: 'a URL with an invalid port', url: `postgres://app:${PASSWORD}@db.internal:99999/media`, says: 'PORT from 1 to 65535' },
    { name: 'a port= that is not a number', url: `postgres://app:${PASSWORD}@db.internal/media?port=abc`, says: 'has port="abc"' },
    {
      name: 'a port= out of range',
      url: `postgres://app:${PASSWORD}@db.internal/media?port=99999`,
      says: 'expected a port from 1 to 65535',
    },
    { name: 'a port= of 0', url: `postgres://app:${PASSWORD}@db.internal/media?port=0`, says: 'expected a port from 1 to 65535' },
    {
      name: 'a password with an unencoded slash',
      url: `postgres://app:pa/ss${PASSWORD}@db.internal/media`,
      says: 'percent-encode special characters',
    },
    { name: 'a URL with spaces in the host', url: `postgres://app:${PASSWORD}@db internal/media`, says: 'is not a URL' },
    // An unencoded / in the password, then ? or #: the URL parses, with the password's pieces for its port,
    // database and query. Shown as host:port/database, they reached conditions, Events and logs.
    {
      name: 'a password with an unencoded slash, then a question mark',
      url: `postgres://app:2024/${PASSWORD}?!@db.internal:5432/media`,
      says: 'percent-encode special characters',
    },
    {
      name: 'a password with an unencoded slash, then a question mark and a parameter',
      url: `postgres://app:2024/${PASSWORD}?x=y@db.internal:5432/media`,
      says: 'percent-encode special characters',
    },
    {
      name: 'a password with an unencoded slash, then a hash',
      url: `postgres://app:/${PASSWORD}#x@db.internal/media`,
      says: 'percent-encode special characters',
    },
    {
      name: 'a MySQL URL',
      url: `mysql://app:${PASSWORD}@db.internal:3306/media`,
      says: 'has scheme "mysql": expected postgres or postgresql',
    },
    { name: 'an HTTPS URL', url: `https://app:${PASSWORD}@db.internal/media`, says: 'has scheme "https"' },
    { name: 'a URL with no host', url: `postgres:///media`, says: 'names no host' },
    { name: 'a URL with credentials but no host', url: `postgres://app:${PASSWORD}@/media`, says: 'names no host' },
    { name: 'a URL with no database', url: `postgres://app:${PASSWORD}@db.internal:5432`, says: 'names no database' },
    { name: 'a URL ending in a slash', url: `postgres://app:${PASSWORD}@db.internal:5432/`, says: 'names no database' },
    {
      name: 'a URL with a malformed percent escape in the database',
      url: `postgres://app:${PASSWORD}@db.internal/media%ZZ`,
      says: 'the database URL',
    },
  ];

  for (const c of invalid) {
    it(`rejects ${c.name} with a clear DatabaseUrlError that does not show the password`, () => {
      let caught: unknown;
      try {
        parseDatabaseUrl(c.url);
      } catch (error) {
        caught = error;
      }
      expect(caught).to.be.instanceOf(DatabaseUrlError);
      const message = caught instanceof Error ? caught.message : '';
      expect(message).to.include(c.says);
      expect(message).to.not.include(PASSWORD);
    });
  }

  for (const param of [
    'statement_timeout=0',
    'lock_timeout=0',
    'query_timeout=2000000000',
    'idle_in_transaction_session_timeout=0',
    'binary=true',
    'replication=database',
  ]) {
    it(`refuses a URL that sets ${param}, which the controller sets itself`, () => {
      const name = param.split('=')[0] ?? '';
      expect(() => parseDatabaseUrl(`postgres://app:${PASSWORD}@db.internal/media?sslmode=require&${param}`)).to.throw(
        DatabaseUrlError,
        `the database URL sets ${name}: the controller sets these itself; remove them from the URL`,
      );
    });
  }

  it('refuses file parameters (sslcert, sslkey, sslrootcert) in a URL that may not name local files, such as a Secret', () => {
    const url = `postgres://app:${PASSWORD}@db.internal/media?sslrootcert=/etc/passwd&sslkey=/proc/self/environ`;
    expect(() => parseDatabaseUrl(url, 'key "url" of Secret jobs/db', { allowLocalFiles: false })).to.throw(
      DatabaseUrlError,
      `key "url" of Secret jobs/db sets sslkey, sslrootcert: a Secret may not name files of the controller's filesystem`,
    );
  });

  it('names where the URL came from in its messages', () => {
    expect(() => parseDatabaseUrl('', 'key "url" of Secret jobs/media-db')).to.throw(
      DatabaseUrlError,
      'key "url" of Secret jobs/media-db is empty',
    );
  });
});
