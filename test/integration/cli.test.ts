// The CLI as a user first meets it, in its own process: help for every command, usage errors that say
// what to do, and shell completion scripts that bash and zsh run.
import { execFile } from 'node:child_process';
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import type { Command } from 'commander';
import pg from 'pg';
import { REPO_ROOT } from '../../dev/src/binaries.ts';
import { buildProgram } from '../../src/cli/program.ts';
import { runCli } from '../support/cli.ts';
import { freshDatabase, sharedPostgres, type TestDatabase } from '../support/postgres.ts';

const run = promisify(execFile);

function commandPaths(command: Command, path: string[] = []): string[][] {
  return command.commands.flatMap((c) => [[...path, c.name()], ...commandPaths(c, [...path, c.name()])]);
}

/** Runs `test` against a new migrated database, closed whatever happens. */
async function inFreshDatabase(prefix: string, test: (t: TestDatabase) => Promise<void>): Promise<void> {
  const t = await freshDatabase(prefix);
  try {
    await test(t);
  } finally {
    await t.close();
  }
}

describe('the CLI, in its own process', function () {
  this.timeout(240_000);

  it('prints help and exits 0 for the program and for every command, naming each flag', async () => {
    const program = await buildProgram();
    const paths = [[], ...commandPaths(program)];
    expect(paths.map((p) => p.join(' '))).to.include.members(['migrate', 'enqueue', 'local up', 'status', 'tasks', 'retry', 'cancel']);
    for (const p of paths) {
      const result = await runCli([...p, '--help']);
      expect(result.code, `${p.join(' ')} --help: ${result.stderr}`).to.equal(0);
      expect(result.stdout).to.include(`Usage: lambda-task-pool${p.length > 0 ? ` ${p.join(' ')}` : ''}`);
      const command = p.reduce<Command | undefined>((c, name) => c?.commands.find((x) => x.name() === name), program);
      for (const option of command?.options ?? []) expect(result.stdout, `${p.join(' ')} --help`).to.include(option.long ?? option.flags);
    }
  });

  it('prints the overview with no arguments, and the help of a command with `help COMMAND`', async () => {
    const bare = await runCli([]);
    expect(bare.code).to.equal(0);
    expect(bare.stdout).to.include('Usage: lambda-task-pool').and.include('status').and.include('retry');
    const help = await runCli(['help', 'retry']);
    expect(help.code).to.equal(0);
    expect(help.stdout).to.include('Usage: lambda-task-pool retry').and.include('--dry-run');
  });

  it('keeps the old flags of migrate, enqueue and controller', async () => {
    const enqueue = await runCli(['enqueue', '--help']);
    for (const flag of ['--queue', '--count', '--payload', '--max-attempts', '--delay-seconds', '--database-url'])
      expect(enqueue.stdout).to.include(flag);
    const controller = await runCli(['controller', '--help']);
    for (const flag of [
      '--kubeconfig',
      '--database-url',
      '--lambda-endpoint',
      '--region',
      '--namespaces',
      '--default-db-namespaces',
      '--metrics-addr',
      '--leader-elect',
      '--lease-namespace',
      '--lease-name',
      '--workers',
      '--tenancy-policy',
      '--secret-namespaces',
      '--retention',
      '--function-check-interval',
      '--sts-endpoint',
    ]) {
      expect(controller.stdout).to.include(flag);
    }
    // Help wraps its columns to the terminal: compare with the whitespace folded.
    expect(controller.stdout.replace(/\s+/g, ' ')).to.include('(env: LEASE_NAME)');
  });

  it('prints the version, as text and as JSON', async () => {
    const text = await runCli(['version']);
    expect(text.stdout.trim()).to.match(/^lambda-task-pool \d+\.\d+\.\d+ \(Node\.js \d+\.\d+\.\d+\)$/);
    const json = JSON.parse((await runCli(['version', '-o', 'json'])).stdout) as { version: string; node: string };
    expect(json.version).to.match(/^\d+\.\d+\.\d+/);
    expect(json.node).to.equal(process.versions.node);
  });

  it('exits 2 with a message that says what to do on bad input', async () => {
    const cases: Array<{ args: string[]; says: string; env?: Record<string, string> }> = [
      { args: ['frobnicate'], says: "unknown command 'frobnicate'" },
      { args: ['statuss'], says: 'Did you mean status?' },
      { args: ['enqueue'], says: "required option '--queue <name>' not specified" },
      { args: ['enqueue', '--queue', 'q', '--count', 'many'], says: 'must be a whole number' },
      // jsonb cannot hold a NUL: the insert failed with Postgres's own error, exit 1, after connecting.
      { args: ['enqueue', '--queue', 'q', '--payload', '{"name":"a\\u0000b"}'], says: 'must not contain \\u0000 (a NUL character)' },
      // Nor a lone surrogate: Postgres's "invalid input syntax for type json", exit 1, after connecting.
      { args: ['enqueue', '--queue', 'q', '--payload', '{"name":"a\\ud800b"}'], says: 'must not contain a lone surrogate' },
      { args: ['enqueue', '--queue', 'q', '--payload', '{"\\udfff":1}'], says: 'must not contain a lone surrogate' },
      { args: ['tasks', '--queue', 'q'], says: 'no database: pass --database-url' },
      { args: ['tasks', '--queue', 'q', '--database-url', 'mysql://x/y'], says: 'expected postgres or postgresql' },
      // A port= that is not one: every database command, migrate too, used to exit 0 having done nothing.
      {
        args: ['migrate', '--database-url', 'postgres://u:s3cret@127.0.0.1:1/db?port=abc'],
        says: 'has port="abc": expected a port from 1 to 65535',
      },
      {
        args: ['enqueue', '--queue', 'q', '--database-url', 'postgres://u:s3cret@127.0.0.1/db?port=99999'],
        says: 'expected a port from 1 to 65535',
      },
      { args: ['tasks'], says: 'pass --queue NAME to list tasks, or a task ID' },
      { args: ['tasks', '--queue', 'q', '--status', 'gone'], says: 'Allowed choices are created, leased, done, failed, cancelled' },
      { args: ['retry'], says: 'name the tasks to re-run by ID, or select them with --queue NAME' },
      { args: ['retry', 'abc'], says: '"abc" is not a task id' },
      { args: ['cancel', '1'], says: "required option '--reason <text>' not specified" },
      { args: ['completion', 'fish'], says: 'Allowed choices are bash, zsh' },
      { args: ['controller', '--metrics-addr', 'nowhere'], says: '--metrics-addr must be HOST:PORT or :PORT' },
      // Past 10 years the retention sweep's SQL overflowed (timestamp out of range) and stopped for the whole database.
      { args: ['controller', '--retention', '3000000d'], says: '--retention must be at most 3650d (10 years)' },
      { args: ['controller', '--lease-name', 'Not_A_Name'], says: 'must be a DNS subdomain' },
      { args: ['controller', '--kubeconfig', '/nonexistent/kubeconfig'], says: 'the kubeconfig /nonexistent/kubeconfig does not exist' },
      // A directory named as the kubeconfig used to end the controller with a bare EISDIR (exit 1).
      { args: ['controller', '--kubeconfig', os.tmpdir()], says: `the kubeconfig ${os.tmpdir()} is not a file` },
      // No KUBECONFIG, no ~/.kube/config, not in a cluster: said, not a connection error from a made-up localhost:8080.
      { args: ['status'], env: { HOME: '/nonexistent' }, says: 'no kubeconfig found: pass --kubeconfig, set KUBECONFIG' },
      { args: ['controller'], env: { HOME: '/nonexistent' }, says: 'no kubeconfig found' },
    ];
    for (const c of cases) {
      const result = await runCli(c.args, c.env);
      expect(result.code, `${c.args.join(' ')}: ${result.stderr}`).to.equal(2);
      expect(result.stderr, c.args.join(' ')).to.include(c.says);
    }
  });

  it('refuses a bad controller flag before it logs anything about its databases', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ltp-cli-flags-'));
    try {
      const kubeconfig = path.join(dir, 'kubeconfig');
      await writeFile(kubeconfig, 'apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n');
      const result = await runCli(['controller', '--kubeconfig', kubeconfig, '--function-check-interval', '5s']);
      expect(result.code, result.stderr).to.equal(2);
      expect(result.stderr).to.include('--function-check-interval must be at least 10s');
      // It used to warn that it had no default database first, as if it were starting.
      expect(result.stdout + result.stderr, 'nothing logged before the refusal').not.to.include('no default database');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('exits 1, never 0, when a command can never finish; otherwise with its code, or 1 and its error', async () => {
    const exitModule = path.join(REPO_ROOT, 'src', 'cli', 'exit.ts');
    const settle = async (work: string) => {
      const script = `import(${JSON.stringify(exitModule)}).then((m) => m.exitWhenSettled(${work}))`;
      try {
        const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', '-e', script], { cwd: REPO_ROOT });
        return { code: 0, stdout, stderr };
      } catch (error) {
        const e = error as { code: number; stdout: string; stderr: string };
        return { code: e.code, stdout: e.stdout, stderr: e.stderr };
      }
    };
    const never = await settle('new Promise(() => {})');
    expect(never.code, 'a promise nothing will settle').to.equal(1);
    expect(never.stderr).to.include('the command stopped without finishing');
    expect((await settle('Promise.resolve(3)')).code).to.equal(3);
    const failed = await settle("Promise.reject(new Error('boom'))");
    expect(failed).to.deep.include({ code: 1, stderr: 'lambda-task-pool: boom\n' });
  });

  it('exits 1 naming the database, never its password, when the database cannot be reached', async () => {
    for (const args of [
      ['migrate'],
      ['enqueue', '--queue', 'q'],
      ['tasks', '--queue', 'q'],
      ['retry', '1'],
      ['cancel', '1', '--reason', 'x'],
    ]) {
      const result = await runCli([...args, '--database-url', 'postgres://app:s3cret@127.0.0.1:1/tasks']);
      expect(result.code, args.join(' ')).to.equal(1);
      expect(result.stderr, args.join(' ')).to.include('cannot reach the database at 127.0.0.1:1/tasks');
      expect(result.stderr + result.stdout).not.to.include('s3cret');
    }
  });

  it('says which socket directory has no server, and which certificate file it cannot read, exiting 1', async () => {
    const socket = await runCli(['tasks', '--queue', 'q', '--database-url', 'postgres://app:s3cret@/tasks?host=/no/such/dir']);
    expect(socket.code).to.equal(1);
    expect(socket.stderr).to.include('cannot reach the database at /no/such/dir:5432/tasks: connect ENOENT');
    const cert = await runCli([
      'tasks',
      '--queue',
      'q',
      '--database-url',
      'postgres://app:s3cret@127.0.0.1:1/tasks?sslcert=/no/such.crt&sslkey=/no/such.key',
    ]);
    expect(cert.code).to.equal(1);
    expect(cert.stderr).to.include('cannot read /no/such.crt, which the database URL names');
    expect(socket.stderr + socket.stdout + cert.stderr + cert.stdout).not.to.include('s3cret');
  });

  it('says to run migrate when the database has no LambdaTaskPool tables yet', async () => {
    const server = await sharedPostgres();
    const name = `unmigrated_${process.pid}`;
    const admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
    } finally {
      await admin.end();
    }
    const url = server.url.replace(/\/[^/]*$/, `/${name}`);
    for (const args of [
      ['enqueue', '--queue', 'q'],
      ['tasks', '--queue', 'q'],
      ['tasks', '1'],
    ]) {
      const result = await runCli([...args, '--database-url', url]);
      expect(result.code, args.join(' ')).to.equal(1);
      expect(result.stderr, args.join(' ')).to.include(`has no LambdaTaskPool tables`).and.include('run `lambda-task-pool migrate` first');
    }
  });

  it('says how many tasks went in, and which, when enqueue --count fails part of the way', async function () {
    this.timeout(120_000);
    await inFreshDatabase('partial', async (t) => {
      const running = runCli(['enqueue', '--queue', 'partial', '--count', '1000000', '--database-url', t.url], {}, 110_000);
      const inQueue = async () =>
        (await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ltp.tasks WHERE queue = 'partial'`)).rows[0]?.n ?? 0;
      // Once the first batch is in, the database drops the command's connections until it gives up (one
      // dropped while idle between batches is replaced by the pool; one dropped during a batch fails it).
      let done = false;
      void running.finally(() => (done = true));
      for (let i = 0; i < 2_000 && !done && (await inQueue()) === 0; i += 1) await new Promise((resolve) => setTimeout(resolve, 20));
      while (!done) {
        await t.db.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'lambda-task-pool-enqueue'`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const result = await running;
      const n = await inQueue();
      expect(n, 'some batches were in before the failure, not all').to.be.within(10_000, 990_000);
      expect(result.code).to.equal(1);
      const shown = n.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
      expect(result.stderr)
        .to.include(`enqueued ${shown} of 1,000,000 tasks on queue partial`)
        .and.include(`--count ${1_000_000 - n}`)
        .and.include('running the same command again would add all 1,000,000 again');
    });
  });

  it('hands every byte of a large -o json to a pipe before it exits', async function () {
    this.timeout(120_000);
    await inFreshDatabase('pipe', async (t) => {
      // runCli reads stdout through a pipe, as $(lambda-task-pool ...) and | jq do.
      const enqueued = await runCli(['enqueue', '--queue', 'piped', '--count', '20000', '--database-url', t.url, '-o', 'json']);
      expect(enqueued.code, enqueued.stderr).to.equal(0);
      expect(enqueued.stdout.length, 'more than one pipe buffer of output').to.be.above(131_072);
      const out = JSON.parse(enqueued.stdout) as { count: number; ids: number[] };
      expect(out.count).to.equal(20_000);
      expect(new Set(out.ids).size, 'every id').to.equal(20_000);
      const listed = await runCli(['tasks', '--queue', 'piped', '--limit', '5000', '--database-url', t.url, '-o', 'json']);
      expect(listed.code, listed.stderr).to.equal(0);
      expect(JSON.parse(listed.stdout) as unknown[], 'every listed task').to.have.length(5000);
    });
  });

  it('stores the --payload it was given, exactly: numbers beyond a double, and one payload of 60 KB many times over', async function () {
    this.timeout(120_000);
    await inFreshDatabase('payload', async (t) => {
      const exact = '{"order_id": 9007199254740993, "big": 1e400, "price": 0.10000000000000000001}';
      const one = await runCli(['enqueue', '--queue', 'exact', '--payload', exact, '--database-url', t.url]);
      expect(one.code, one.stderr).to.equal(0);
      const stored = await t.db.query<{ p: string }>(`SELECT payload::text AS p FROM ltp.tasks WHERE queue = 'exact'`);
      expect(stored.rows.map((r) => r.p)).to.deep.equal([
        (await t.db.query<{ p: string }>('SELECT $1::jsonb::text AS p', [exact])).rows[0]?.p,
      ]);
      expect(stored.rows[0]?.p).to.include('9007199254740993').and.include('0.10000000000000000001');
      // 10,000 copies of 60 KB in one jsonb array passed Postgres's 256 MB limit, or Node's longest string.
      const big = JSON.stringify({ blob: 'x'.repeat(60_000) });
      const many = await runCli(['enqueue', '--queue', 'big', '--count', '10000', '--payload', big, '--database-url', t.url], {}, 110_000);
      expect(many.code, many.stderr).to.equal(0);
      const counted = await t.db.query<{ n: number; sizes: number }>(
        `SELECT count(*)::int AS n, count(DISTINCT length(payload->>'blob'))::int AS sizes FROM ltp.tasks WHERE queue = 'big'`,
      );
      expect(counted.rows[0]).to.deep.equal({ n: 10_000, sizes: 1 });
    });
  });

  it('cancels a large queue in chunks that each commit, so that it never holds them all locked in one statement', async function () {
    this.timeout(120_000);
    await inFreshDatabase('cancelmany', async (t) => {
      await t.db.query(
        `INSERT INTO ltp.tasks (queue, payload) SELECT 'many', jsonb_build_object('n', n) FROM generate_series(1, 200000) AS n`,
      );
      const cancelledNow = async () =>
        (await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ltp.tasks WHERE queue = 'many' AND status = 'cancelled'`)).rows[0]
          ?.n ?? 0;
      let done = false;
      const running = runCli(
        ['cancel', '--queue', 'many', '--limit', '200000', '--reason', 'drained', '--database-url', t.url, '-o', 'json'],
        {},
        110_000,
      );
      void running.finally(() => (done = true));
      // Seen from another session while it runs: a count between none and all is a chunk committed on its own.
      const seen: number[] = [];
      while (!done) {
        seen.push(await cancelledNow());
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const result = await running;
      expect(result.code, result.stderr).to.equal(0);
      expect(JSON.parse(result.stdout) as unknown[], 'every task reported').to.have.length(200_000);
      expect(await cancelledNow()).to.equal(200_000);
      const midway = seen.filter((n) => n > 0 && n < 200_000);
      expect(midway.length, 'cancelled tasks visible to others before the command ended').to.be.above(0);
    });
  });

  describe('shell completion', () => {
    let dir: string;
    before(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'ltp-completion-'));
      await run('bash', [path.join(REPO_ROOT, 'test', 'env', 'shell', 'ensure-zsh.sh')]);
    });
    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('prints a bash script that completes commands, options and their values', async () => {
      const result = await runCli(['completion', 'bash']);
      expect(result.code).to.equal(0);
      const script = path.join(dir, 'ltp.bash');
      await writeFile(script, result.stdout);
      const probe = `
        source ${JSON.stringify(script)}
        t() { COMP_WORDS=("$@"); COMP_CWORD=$(( \${#COMP_WORDS[@]} - 1 )); _lambda_task_pool; echo "\${COMPREPLY[*]}"; }
        t lambda-task-pool st
        t lambda-task-pool tasks --status ""
        t lambda-task-pool status -n team --o
        t lambda-task-pool local ""
        t lambda-task-pool completion ""
        complete -p lambda-task-pool`;
      const { stdout } = await run('bash', ['-c', probe]);
      expect(stdout.split('\n')).to.deep.equal([
        'status',
        'created leased done failed cancelled',
        '--output',
        'up help',
        'bash zsh',
        'complete -F _lambda_task_pool lambda-task-pool',
        '',
      ]);
    });

    it('prints a zsh script that zsh loads and that completes commands, options and their values', async () => {
      const result = await runCli(['completion', 'zsh']);
      expect(result.code).to.equal(0);
      expect(result.stdout.startsWith('#compdef lambda-task-pool\n')).to.equal(true);
      const script = path.join(dir, '_lambda-task-pool');
      await writeFile(script, result.stdout);
      await run('zsh', ['-n', script]);
      // The completion system's functions, as stubs that print what they were given.
      const probe = `
        compdef() { print -r -- "compdef $*"; }
        source ${JSON.stringify(script)}
        compadd() { print -r -- "compadd \${(j: :)@}"; }
        _describe() { local -a described; described=("\${(@P)\${@[-1]}}"); print -r -- "\${(j:|:)\${(@)described%%:*}}"; }
        _files() { print -r -- "files $*"; }
        t() { words=("$@"); CURRENT=\${#words}; _lambda_task_pool; }
        t lambda-task-pool ""
        t lambda-task-pool retry --status ""
        t lambda-task-pool local up --state-dir ""
        t lambda-task-pool cancel --dry-
      `;
      const { stdout } = await run('zsh', ['-f', '-c', probe]);
      const lines = stdout.trim().split('\n');
      expect(lines[0]).to.equal('compdef _lambda_task_pool lambda-task-pool');
      expect(lines[1]?.split('|')).to.include.members([
        'controller',
        'migrate',
        'enqueue',
        'local',
        'status',
        'tasks',
        'retry',
        'cancel',
        'trace',
        'completion',
      ]);
      expect(lines.slice(2)).to.deep.equal([
        'compadd -- failed cancelled',
        'files -/',
        '--reason|--queue|--limit|--dry-run|--database-url|-o|--output|-h|--help',
      ]);
    });
  });
});
