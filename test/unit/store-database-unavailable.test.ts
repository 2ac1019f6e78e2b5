import { expect } from 'chai';
import { isConnectionLost, isDatabaseUnavailable } from '../../src/store/db.ts';

const withCode = (code: unknown) => Object.assign(new Error('x'), { code });

describe('isDatabaseUnavailable', () => {
  const cases: Array<{ name: string; error: unknown; expected: boolean }> = [
    { name: 'a refused connection is unavailability', error: withCode('ECONNREFUSED'), expected: true },
    { name: 'an unknown host is unavailability', error: withCode('ENOTFOUND'), expected: true },
    { name: 'a connection failure SQLSTATE (08006) is unavailability', error: withCode('08006'), expected: true },
    { name: 'too many connections (53300) is unavailability', error: withCode('53300'), expected: true },
    { name: 'an administrator shutdown (57P01) is unavailability', error: withCode('57P01'), expected: true },
    { name: 'a statement timeout (57014) is unavailability', error: withCode('57014'), expected: true },
    { name: 'a lock timeout (55P03) is unavailability', error: withCode('55P03'), expected: true },
    {
      name: 'a Unix socket with no server behind it (connect ENOENT) is unavailability',
      error: Object.assign(new Error('connect ENOENT /var/run/postgresql/.s.PGSQL.5432'), { code: 'ENOENT', syscall: 'connect' }),
      expected: true,
    },
    {
      name: 'a Unix socket the controller may not open (connect EACCES) is unavailability',
      error: Object.assign(new Error('connect EACCES /cloudsql/db/.s.PGSQL.5432'), { code: 'EACCES', syscall: 'connect' }),
      expected: true,
    },
    {
      name: 'a certificate file that is missing (open ENOENT) is not: it is the URL that is wrong',
      error: Object.assign(new Error("ENOENT: no such file or directory, open '/etc/ca.pem'"), { code: 'ENOENT', syscall: 'open' }),
      expected: false,
    },
    { name: 'a check violation from the state-machine trigger (23514) is not', error: withCode('23514'), expected: false },
    { name: 'a missing table (42P01) is not', error: withCode('42P01'), expected: false },
    { name: 'a plain error without a code is not, whatever its message says', error: new Error('connection refused'), expected: false },
    { name: 'a numeric code is not', error: withCode(8006), expected: false },
    { name: 'a string thrown is not', error: 'ECONNREFUSED', expected: false },
  ];
  for (const c of cases) {
    it(c.name, () => expect(isDatabaseUnavailable(c.error)).to.equal(c.expected));
  }
});

describe('isConnectionLost: what pauses orphaning on the whole database', () => {
  const cases: Array<{ name: string; error: unknown; expected: boolean }> = [
    { name: 'a refused connection', error: withCode('ECONNREFUSED'), expected: true },
    { name: 'a connection failure (08006)', error: withCode('08006'), expected: true },
    { name: 'an administrator shutdown (57P01)', error: withCode('57P01'), expected: true },
    { name: 'not a lock timeout (55P03): another session holds one row', error: withCode('55P03'), expected: false },
    { name: 'not a statement timeout (57014)', error: withCode('57014'), expected: false },
    { name: 'not a check violation (23514)', error: withCode('23514'), expected: false },
  ];
  for (const c of cases) {
    it(c.name, () => expect(isConnectionLost(c.error)).to.equal(c.expected));
  }
});
