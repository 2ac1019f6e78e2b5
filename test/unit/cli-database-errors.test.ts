import { expect } from 'chai';
import { unreachable } from '../../src/cli/database.ts';
import { parseDatabaseUrl } from '../../src/store/database-url.ts';

const target = parseDatabaseUrl('postgres://app:s3cret@db.example:5432/tasks');
const pgError = (code: string, message: string) => Object.assign(new Error(message), { code });
const said = (error: unknown) => (unreachable(error, target) as Error).message;

describe('what a CLI command says when the database fails it (unreachable)', () => {
  it('says a statement timed out, not that the database cannot be reached', () => {
    const message = said(pgError('57014', 'canceling statement due to statement timeout'));
    expect(message).to.include('the database at db.example:5432/tasks cancelled the command').and.include('30 s statement timeout');
    expect(message).not.to.include('cannot reach');
    expect(said(pgError('55P03', 'canceling statement due to lock timeout'))).to.include('a row another session holds');
  });

  it('says a refused connection cannot reach the database, naming it without its password', () => {
    const message = said(Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:5432'), { code: 'ECONNREFUSED', syscall: 'connect' }));
    expect(message).to.include('cannot reach the database at db.example:5432/tasks');
    expect(message).not.to.include('s3cret');
  });

  it('passes any other error as it is', () => {
    const error = pgError('23505', 'duplicate key value');
    expect(unreachable(error, target)).to.equal(error);
  });
});
