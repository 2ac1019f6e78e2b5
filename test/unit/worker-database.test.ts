import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import pg from 'pg';
import { closeWorkerConnections, workerPool } from '../../packages/worker/src/database.ts';

/** What a connection of the pool would use: pg builds every client from the pool's options. */
async function connectionSettings(source: string | (() => Promise<string>)) {
  const pool = await workerPool(source);
  const client = new pg.Client(pool.options);
  return { host: client.host, port: client.port, database: client.database, user: client.user, ssl: client.ssl };
}

describe('the worker database URL: a string, or a provider asked for it', () => {
  let dir: string;
  let ca: string;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ltp-worker-ssl-'));
    ca = path.join(dir, 'ca.pem');
    await writeFile(ca, '-----BEGIN CERTIFICATE-----\nnot a real certificate\n-----END CERTIFICATE-----\n');
  });
  after(async () => {
    await closeWorkerConnections();
    await rm(dir, { recursive: true, force: true });
  });

  const queries = [
    'sslmode=disable',
    'sslmode=prefer',
    'sslmode=require',
    'sslmode=verify-ca',
    'sslmode=verify-full',
    'sslmode=no-verify',
    'sslmode=verify-full&sslrootcert=CA',
    'sslmode=verify-ca&sslrootcert=CA',
  ];
  for (const query of queries) {
    it(`connects the same way from a provider as from the string with ${query}`, async () => {
      const url = `postgres://worker:secret@db.example.com:6432/tasks?${query.replace('CA', encodeURIComponent(ca))}`;
      const fromString = await connectionSettings(url);
      const fromProvider = await connectionSettings(async () => url);
      expect(fromProvider).to.deep.equal(fromString);
      expect(fromString).to.include({ host: 'db.example.com', port: 6432, database: 'tasks', user: 'worker' });
    });
  }

  it('hands the CA that sslrootcert names to TLS when the URL comes from a provider', async () => {
    const url = `postgres://worker:secret@db.example.com:5432/tasks?sslmode=verify-ca&sslrootcert=${encodeURIComponent(ca)}`;
    const { ssl } = await connectionSettings(async () => url);
    expect(ssl).to.deep.include({ ca: '-----BEGIN CERTIFICATE-----\nnot a real certificate\n-----END CERTIFICATE-----\n' });
  });

  it('asks the provider again for the password of each new connection', async () => {
    let asked = 0;
    const pool = await workerPool(async () => `postgres://worker:token-${++asked}@db.example.com:5432/tasks?sslmode=verify-full`);
    const password = pool.options.password;
    expect(password).to.be.a('function');
    if (typeof password !== 'function') return;
    expect(await password()).to.equal('token-2');
    expect(await password()).to.equal('token-3');
  });
});
