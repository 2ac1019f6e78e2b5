// No secret anywhere visible: a run that uses a database Secret with a password (a real scram-sha-256 login)
// and an AWS secret access key in the controller's environment, through its failure paths too (a wrong
// password, a password in a query parameter, an invoke that fails), then every controller log line, every
// Event, every pool status and every metric, searched for either secret in any spelling.
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { expect } from 'chai';
import pg from 'pg';
import { enqueueTasks } from '../../src/store/task-store.ts';
import { kubectl } from '../support/kube.ts';
import { applyPool, eventually } from '../support/system.ts';
import { AWS_SECRET_KEY, removePools, NS, readyReason, securityStack, workerFunction, type SecurityStack } from './stack.ts';

const run = process.pid;
const ROLE = `ltp_sec_pw_${run}`;
const DATABASE = `sec_pw_${run}`;
const tag = randomBytes(4).toString('hex');
/** Characters that a URL must percent-encode, so that both spellings are looked for. */
const PASSWORD = `ltpGood-${tag}-/@:#?% !`;
const WRONG_PASSWORD = `ltpWrong-${tag}-/@:#?%`;
const QUERY_PASSWORD = `ltpQuery-${tag}`;

/** Every way a secret could be written out: as is, percent-encoded (either case of hex), and its distinctive core. */
function spellings(secret: string, core: string): string[] {
  const encoded = encodeURIComponent(secret);
  return [secret, encoded, encoded.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()), encodeURI(secret), core];
}

const FORBIDDEN = [
  ...spellings(PASSWORD, `ltpGood-${tag}`),
  ...spellings(WRONG_PASSWORD, `ltpWrong-${tag}`),
  ...spellings(QUERY_PASSWORD, QUERY_PASSWORD),
  ...spellings(AWS_SECRET_KEY, 'SECURITYTESTKEY'),
  Buffer.from(AWS_SECRET_KEY).toString('base64'),
];

describe('security: no secret anywhere visible (logs, Events, status, metrics)', function () {
  this.timeout(180_000);
  let stack: SecurityStack;
  let admin: pg.Client;
  let hbaFile = '';
  let hbaOriginal = '';
  const url = (password: string, port: string) => `postgres://${ROLE}:${encodeURIComponent(password)}@127.0.0.1:${port}/${DATABASE}`;

  before(async function () {
    this.timeout(240_000);
    stack = await securityStack();
    admin = new pg.Client({ connectionString: stack.serverUrl });
    await admin.connect();
    // A login that really checks its password: this role, and only it, must authenticate with scram-sha-256.
    hbaFile = (await admin.query<{ hba_file: string }>('SHOW hba_file')).rows[0]?.hba_file ?? '';
    hbaOriginal = await readFile(hbaFile, 'utf8');
    const rules = [
      `local all ${ROLE} scram-sha-256`,
      `host all ${ROLE} 127.0.0.1/32 scram-sha-256`,
      `host all ${ROLE} ::1/128 scram-sha-256`,
    ];
    await writeFile(hbaFile, `${rules.join('\n')}\n${hbaOriginal}`);
    await admin.query('SELECT pg_reload_conf()');
    await admin.query(`CREATE ROLE ${pg.escapeIdentifier(ROLE)} LOGIN PASSWORD ${pg.escapeLiteral(PASSWORD)}`);
    await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(DATABASE)} OWNER ${pg.escapeIdentifier(ROLE)}`);
    const { port } = new URL(stack.serverUrl);
    // The password is really checked: a wrong one is refused.
    const wrong = new pg.Client({ connectionString: url(WRONG_PASSWORD, port) });
    const refused = await wrong.connect().then(
      () => undefined,
      (e: unknown) => e as { code?: string },
    );
    await wrong.end().catch(() => undefined);
    expect(refused?.code, 'a wrong password is refused by the server').to.equal('28P01');
    const owner = new pg.Client({ connectionString: url(PASSWORD, port) });
    await owner.connect();
    await owner.query(
      'CREATE TABLE public.executions (task_id bigint NOT NULL, invocation_id bigint NOT NULL, at timestamptz NOT NULL DEFAULT now())',
    );
    await owner.end();
    stack.lambda.register(workerFunction('team-b-pw', url(PASSWORD, port)));
  });

  after(async function () {
    this.timeout(120_000);
    await removePools(NS.b, ['pw-good', 'pw-wrong', 'pw-query', 'pw-invoke-fails']);
    if (hbaFile && hbaOriginal) {
      await writeFile(hbaFile, hbaOriginal);
      await admin.query('SELECT pg_reload_conf()');
    }
    await admin?.end();
  });

  it('a run with a password Secret and an AWS secret key, through a wrong password, a password in the query and a failing invoke, shows neither secret in any log line, Event, status or metric', async () => {
    const { port } = new URL(stack.serverUrl);
    const secrets = {
      good: url(PASSWORD, port),
      wrong: url(WRONG_PASSWORD, port),
      query: `postgres://${ROLE}@127.0.0.1:${port}/${DATABASE}?password=${encodeURIComponent(QUERY_PASSWORD)}&sslmode=disable`,
    };
    const body = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'pw-db', namespace: NS.b }, stringData: secrets };
    expect((await kubectl(['apply', '-f', '-'], { input: JSON.stringify(body) })).code).to.equal(0);
    const pool = (name: string, key: string, functionName: string) =>
      applyPool({
        namespace: NS.b,
        name,
        functionName,
        queue: `team-b/${name}`,
        maxConcurrency: 2,
        tasksPerInvocation: 1,
        extraSpec: { database: { secretRef: { name: 'pw-db', key } } },
      });
    await pool('pw-good', 'good', 'team-b-pw');
    await pool('pw-wrong', 'wrong', 'team-b-pw');
    await pool('pw-query', 'query', 'team-b-pw');
    await pool('pw-invoke-fails', 'good', 'team-b-not-deployed');

    // The working path: the pool's own database, behind the password, serves its tasks.
    await readyReason(NS.b, 'pw-good', 'Reconciled');
    const own = new pg.Pool({ connectionString: secrets.good, max: 1 });
    try {
      const done = await enqueueTasks(own, { queue: 'team-b/pw-good', payloads: [{}, {}, {}] });
      const failing = await enqueueTasks(own, { queue: 'team-b/pw-invoke-fails', payloads: [{}, {}] });
      expect(failing).to.have.length(2);
      await eventually('the password pool to finish its tasks', async () => {
        const r = await own.query<{ n: number }>(`SELECT count(*)::int AS n FROM ltp.tasks WHERE id = ANY($1) AND status = 'done'`, [done]);
        return r.rows[0]?.n === 3;
      });
    } finally {
      await own.end();
    }
    // The failure paths, each of which logs, records an Event and writes a condition.
    const wrong = await readyReason(NS.b, 'pw-wrong', 'DatabaseUnavailable');
    expect(wrong.message).to.include(`password authentication failed for user "${ROLE}"`);
    const query = await readyReason(NS.b, 'pw-query', 'DatabaseUnavailable');
    expect(query.message).to.include('password authentication failed');
    await readyReason(NS.b, 'pw-invoke-fails', 'FunctionNotFound');

    // Everything a user or an operator can see.
    const logs = stack.controllerOutput();
    // The controller watches these namespaces only, so its Events and pools are all there.
    let events = '';
    let statuses = '';
    for (const ns of Object.values(NS)) {
      const e = await kubectl(['get', 'events', '-n', ns, '-o', 'json']);
      const p = await kubectl(['get', 'ltp', '-n', ns, '-o', 'json']);
      expect(e.code + p.code, e.stderr + p.stderr).to.equal(0);
      events += e.stdout;
      statuses += p.stdout;
    }
    const metrics = await (await fetch(stack.metricsUrl)).text();

    // They did record the failures (so the search below looked where the secrets could have gone).
    expect(logs).to.include('password authentication failed');
    expect(logs).to.include('ResourceNotFoundException');
    expect(events)
      .to.include('InvokeRejected')
      .and.include('ResourceNotFoundException')
      .and.include('DatabaseUnavailable')
      .and.include('password authentication failed');
    expect(statuses).to.include('pw-good');
    expect(metrics).to.include(`ltp_invoke_errors_total{namespace="${NS.b}",pool="pw-invoke-fails",code="ResourceNotFoundException"}`);
    expect(logs.split('\n').length, 'controller log lines').to.be.greaterThan(100);

    for (const [where, text] of Object.entries({ logs, events, statuses, metrics })) {
      for (const secret of FORBIDDEN) {
        expect(text.includes(secret), `${where} contain ${JSON.stringify(secret)}`).to.equal(false);
      }
    }
  });
});
