// The LambdaTaskPool CRD against a real kube-apiserver: it is served, the API server fills the defaults and
// rejects bad specs with a message naming the field, and kubectl shows the printer columns and explains
// every field. Nothing here talks to Postgres or runs the controller.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { parse } from 'yaml';
import { kubectl, sharedControlPlane, type CommandResult } from '../support/kube.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CRD_FILE = path.join(ROOT, 'crds', 'lambdataskpools.yaml');
const CHART_CRD_FILE = path.join(ROOT, 'charts', 'lambda-task-pool', 'files', 'crds', 'lambdataskpools.yaml');
const CRD_NAME = 'lambdataskpools.lambda.taskpool.io';

interface JsonObject {
  [key: string]: unknown;
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Walks a path of keys through parsed JSON/YAML; undefined when any step is missing. */
function at(value: unknown, ...keys: string[]): unknown {
  let current = value;
  for (const key of keys) {
    if (!isObject(current)) return undefined;
    current = current[key];
  }
  return current;
}

function ok(result: CommandResult, what: string): string {
  expect(result.code, `${what} failed: ${result.stderr}`).to.equal(0);
  return result.stdout;
}

/** A pool manifest with the given spec, as YAML-compatible JSON text. */
function poolManifest(name: string, spec: unknown): string {
  return JSON.stringify({ apiVersion: 'lambda.taskpool.io/v1alpha1', kind: 'LambdaTaskPool', metadata: { name }, spec });
}

/** The schema of the storage version, minus what the API server adds or drops on its own. */
function servedSchema(crd: unknown): unknown {
  const versions = at(crd, 'spec', 'versions');
  if (!Array.isArray(versions)) return undefined;
  return at(versions[0], 'schema', 'openAPIV3Schema');
}

/** JSON with object keys sorted, so two equal values print the same whatever order the server keeps. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (isObject(value))
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`)
      .join(',')}}`;
  return JSON.stringify(value);
}

/** Every default and x-kubernetes-* extension in a schema, as readable "path key=value" lines. */
function defaultsAndRules(schema: unknown, where = ''): string[] {
  if (!isObject(schema)) return [];
  const lines: string[] = [];
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'default' || key.startsWith('x-kubernetes-')) lines.push(`${where || '.'} ${key}=${canonical(value)}`);
  }
  for (const [name, child] of Object.entries(isObject(schema.properties) ? schema.properties : {})) {
    lines.push(...defaultsAndRules(child, `${where}.${name}`));
  }
  if (isObject(schema.items)) lines.push(...defaultsAndRules(schema.items, `${where}[]`));
  return lines;
}

/** Splits kubectl's table output into rows of cells (two or more spaces separate columns). */
function table(stdout: string): string[][] {
  return stdout
    .trim()
    .split('\n')
    .map((line) => line.trim().split(/\s{2,}/));
}

/** The cell of `column` in the row whose NAME is `name`. */
function cell(stdout: string, name: string, column: string): string | undefined {
  const lines = stdout.trimEnd().split('\n');
  const header = lines[0] ?? '';
  const start = header.indexOf(column);
  if (start < 0) return undefined;
  const next = header.slice(start + column.length).search(/\S/);
  const end = next < 0 ? undefined : start + column.length + next;
  const row = lines.find((line) => line.split(/\s+/)[0] === name);
  return row?.slice(start, end).trim();
}

describe('LambdaTaskPool CRD (real kube-apiserver)', function () {
  const namespace = `ltp-crd-${randomBytes(3).toString('hex')}`;
  let installedBySharedPlane: unknown;

  before(async function () {
    this.timeout(120_000);
    await sharedControlPlane();
    // What the shared control plane installed, kept for the first test before this suite re-applies the file.
    installedBySharedPlane = JSON.parse(ok(await kubectl(['get', 'crd', CRD_NAME, '-o', 'json']), 'get crd'));
    // Install the CRD the way a user does (kubectl/helm send the file as written), so the rest of the suite
    // tests the file itself.
    ok(await kubectl(['apply', '--server-side', '--force-conflicts', '-f', CRD_FILE]), 'apply crd');
    ok(await kubectl(['wait', '--for=condition=Established', `crd/${CRD_NAME}`, '--timeout=30s']), 'wait crd');
    ok(await kubectl(['create', 'namespace', namespace]), 'create namespace');
  });

  after(async function () {
    this.timeout(30_000);
    // There is no namespace controller (no kube-controller-manager), so delete the pools themselves too.
    await kubectl(['delete', 'ltp', '--all', '-n', namespace, '--wait=false']);
    await kubectl(['delete', 'namespace', namespace, '--wait=false']);
  });

  it('is installed by the shared control plane with every default and validation rule of crds/lambdataskpools.yaml', async () => {
    const file: unknown = parse(await readFile(CRD_FILE, 'utf8'));
    expect(defaultsAndRules(servedSchema(installedBySharedPlane)).sort()).to.deep.equal(defaultsAndRules(servedSchema(file)).sort());
    expect(servedSchema(installedBySharedPlane)).to.deep.equal(servedSchema(file));
  });

  it('is Established and serves v1alpha1 with the status subresource and the short name ltp', async () => {
    const crd: unknown = JSON.parse(ok(await kubectl(['get', 'crd', CRD_NAME, '-o', 'json']), 'get crd'));
    const conditions = at(crd, 'status', 'conditions');
    expect(Array.isArray(conditions) && conditions.some((c) => at(c, 'type') === 'Established' && at(c, 'status') === 'True')).to.equal(
      true,
    );
    expect(at(crd, 'spec', 'names', 'shortNames')).to.deep.equal(['ltp']);
    expect(at(crd, 'spec', 'scope')).to.equal('Namespaced');
    const versions = at(crd, 'spec', 'versions');
    expect(versions).to.be.an('array').with.lengthOf(1);
    const [v1alpha1] = Array.isArray(versions) ? versions : [];
    expect(v1alpha1).to.deep.include({ name: 'v1alpha1', served: true, storage: true });
    expect(at(v1alpha1, 'subresources', 'status')).to.deep.equal({});
    expect(ok(await kubectl(['api-resources', '--api-group=lambda.taskpool.io', '-o', 'name']), 'api-resources').trim()).to.equal(CRD_NAME);
  });

  it("the served schema is the CRD file's schema, defaults and CEL rules included", async () => {
    const served: unknown = JSON.parse(ok(await kubectl(['get', 'crd', CRD_NAME, '-o', 'json']), 'get crd'));
    const file: unknown = parse(await readFile(CRD_FILE, 'utf8'));
    expect(servedSchema(served)).to.deep.equal(servedSchema(file));
  });

  it('kubectl apply -f examples/pool.yaml creates the pool exactly as written', async () => {
    const example = await readFile(path.join(ROOT, 'examples', 'pool.yaml'), 'utf8');
    expect(example).to.contain('namespace: default');
    const manifest = example.replace('namespace: default', `namespace: ${namespace}`);
    ok(await kubectl(['apply', '--validate=strict', '-n', namespace, '-f', '-'], { input: manifest }), 'apply example');
    const pool: unknown = JSON.parse(ok(await kubectl(['get', 'ltp', 'thumbnails', '-n', namespace, '-o', 'json']), 'get pool'));
    expect(at(pool, 'spec')).to.deep.equal(at(parse(example), 'spec'));
  });

  it('the API server fills the defaults of every field a minimal pool omits', async () => {
    const manifest = poolManifest('minimal', { function: { name: 'worker' }, queue: 'minimal' });
    ok(await kubectl(['apply', '--validate=strict', '-n', namespace, '-f', '-'], { input: manifest }), 'apply minimal');
    const pool: unknown = JSON.parse(ok(await kubectl(['get', 'ltp', 'minimal', '-n', namespace, '-o', 'json']), 'get pool'));
    expect(at(pool, 'spec')).to.deep.equal({
      function: { name: 'worker', asyncConfig: 'Unmanaged' },
      queue: 'minimal',
      maxConcurrency: 10,
      tasksPerInvocation: 1,
      maxTaskAttempts: 3,
      startTimeoutSeconds: 900,
      heartbeatTimeoutSeconds: 120,
      retry: { initialDelaySeconds: 10, maxDelaySeconds: 600 },
      suspend: false,
    });
  });

  it('the API server defaults database.secretRef.key to url', async () => {
    const manifest = poolManifest('own-db', {
      function: { name: 'worker' },
      queue: 'own-db',
      database: { secretRef: { name: 'reports-db' } },
    });
    ok(await kubectl(['apply', '--validate=strict', '-n', namespace, '-f', '-'], { input: manifest }), 'apply own-db');
    const pool: unknown = JSON.parse(ok(await kubectl(['get', 'ltp', 'own-db', '-n', namespace, '-o', 'json']), 'get pool'));
    expect(at(pool, 'spec', 'database')).to.deep.equal({ secretRef: { name: 'reports-db', key: 'url' } });
  });

  describe('the API server rejects an invalid spec with a message naming the field', () => {
    const valid = { function: { name: 'worker' }, queue: 'jobs' };
    const cases: Array<{ name: string; spec: unknown; field: RegExp }> = [
      { name: 'a spec without function', spec: { queue: 'jobs' }, field: /spec\.function: Required value/ },
      {
        name: 'a function without name',
        spec: { function: { region: 'eu-west-1' }, queue: 'jobs' },
        field: /spec\.function\.name: Required value/,
      },
      { name: 'a spec without queue', spec: { function: { name: 'worker' } }, field: /spec\.queue: Required value/ },
      {
        name: 'a hostile queue name',
        spec: { ...valid, queue: "q'; DROP TABLE ltp.tasks; --" },
        field: /spec\.queue: Invalid value: .*should match/,
      },
      { name: 'a queue of 129 characters', spec: { ...valid, queue: 'q'.repeat(129) }, field: /spec\.queue: Too long/ },
      { name: 'an empty queue', spec: { ...valid, queue: '' }, field: /spec\.queue: Invalid value/ },
      {
        name: 'maxConcurrency 0',
        spec: { ...valid, maxConcurrency: 0 },
        field: /spec\.maxConcurrency: Invalid value: 0: .*greater than or equal to 1/,
      },
      {
        name: 'maxConcurrency 1001',
        spec: { ...valid, maxConcurrency: 1001 },
        field: /spec\.maxConcurrency: Invalid value: 1001: .*less than or equal to 1000/,
      },
      { name: 'tasksPerInvocation 0', spec: { ...valid, tasksPerInvocation: 0 }, field: /spec\.tasksPerInvocation: Invalid value: 0/ },
      {
        name: 'a negative startTimeoutSeconds',
        spec: { ...valid, startTimeoutSeconds: -1 },
        field: /spec\.startTimeoutSeconds: Invalid value: -1/,
      },
      {
        name: 'a negative heartbeatTimeoutSeconds',
        spec: { ...valid, heartbeatTimeoutSeconds: -5 },
        field: /spec\.heartbeatTimeoutSeconds: Invalid value: -5/,
      },
      { name: 'maxTaskAttempts 0', spec: { ...valid, maxTaskAttempts: 0 }, field: /spec\.maxTaskAttempts: Invalid value: 0/ },
      {
        name: 'a function name with a space',
        spec: { ...valid, function: { name: 'my worker' } },
        field: /spec\.function\.name: Invalid value: "my worker"/,
      },
      {
        name: 'a function name of 65 characters',
        spec: { ...valid, function: { name: 'f'.repeat(65) } },
        field: /spec\.function\.name: Invalid value/,
      },
      {
        name: 'an ARN of another service',
        spec: { ...valid, function: { name: 'arn:aws:s3:eu-west-1:123456789012:function:worker' } },
        field: /spec\.function\.name: Invalid value: "arn:aws:s3/,
      },
      {
        name: 'a region that is no region',
        spec: { ...valid, function: { name: 'worker', region: 'Europe' } },
        field: /spec\.function\.region: Invalid value: "Europe"/,
      },
      {
        name: 'a qualifier with a slash',
        spec: { ...valid, function: { name: 'worker', qualifier: 'v1/live' } },
        field: /spec\.function\.qualifier: Invalid value: "v1\/live"/,
      },
      {
        name: 'a qualifier both inside the name and in qualifier (CEL rule)',
        spec: { ...valid, function: { name: 'worker:live', qualifier: 'live' } },
        field: /spec\.function\.qualifier: Invalid value: .*set the qualifier either inside function\.name/,
      },
      {
        name: 'a region that contradicts the full ARN (CEL rule)',
        spec: { ...valid, function: { name: 'arn:aws:lambda:eu-west-1:123456789012:function:worker', region: 'us-east-1' } },
        field: /spec\.function\.region: Invalid value: .*must match the region inside a full ARN/,
      },
      {
        name: 'an unknown field (strict decoding)',
        spec: { ...valid, maxConcurency: 5 },
        field: /strict decoding error: unknown field "spec\.maxConcurency"/,
      },
      {
        name: 'database.secretRef without name',
        spec: { ...valid, database: { secretRef: { key: 'url' } } },
        field: /spec\.database\.secretRef\.name: Required value/,
      },
      {
        name: 'a secretRef name that is no Secret name',
        spec: { ...valid, database: { secretRef: { name: 'Reports_DB' } } },
        field: /spec\.database\.secretRef\.name: Invalid value: "Reports_DB"/,
      },
      {
        name: 'suspend as a string',
        spec: { ...valid, suspend: 'true' },
        field: /spec\.suspend: Invalid value: "string": .*must be of type boolean/,
      },
    ];

    cases.forEach(({ name, spec, field }, index) => {
      it(`rejects ${name}`, async () => {
        const poolName = `invalid-${index}`;
        const result = await kubectl(['apply', '--validate=strict', '-n', namespace, '-f', '-'], { input: poolManifest(poolName, spec) });
        expect(result.code, `expected a rejection, got: ${result.stdout}`).to.not.equal(0);
        expect(result.stderr).to.match(field);
        const lookup = await kubectl(['get', 'ltp', poolName, '-n', namespace, '--ignore-not-found', '-o', 'name']);
        expect(lookup.stdout.trim(), 'the rejected pool must not exist').to.equal('');
      });
    });
  });

  it('kubectl get ltp shows NAME QUEUE MAX BACKLOG PENDING RUNNING READY AGE, and -o wide adds FUNCTION PER-INV WASTED FUNCTION-READY DONE FAILED REASON SUSPENDED', async () => {
    const manifest = poolManifest('columns', {
      function: { name: 'column-worker' },
      queue: 'columns',
      maxConcurrency: 7,
      tasksPerInvocation: 2,
    });
    ok(await kubectl(['apply', '-n', namespace, '-f', '-'], { input: manifest }), 'apply columns');

    const narrow = ok(await kubectl(['get', 'ltp', '-n', namespace]), 'get ltp');
    expect(table(narrow)[0]).to.deep.equal(['NAME', 'QUEUE', 'MAX', 'BACKLOG', 'PENDING', 'RUNNING', 'READY', 'AGE']);
    const wide = ok(await kubectl(['get', 'ltp', '-n', namespace, '-o', 'wide']), 'get ltp -o wide');
    expect(table(wide)[0]).to.deep.equal([
      'NAME',
      'QUEUE',
      'MAX',
      'BACKLOG',
      'PENDING',
      'RUNNING',
      'READY',
      'AGE',
      'FUNCTION',
      'PER-INV',
      'WASTED',
      'FUNCTION-READY',
      'DONE',
      'FAILED',
      'REASON',
      'SUSPENDED',
    ]);
    expect(cell(wide, 'columns', 'QUEUE')).to.equal('columns');
    expect(cell(wide, 'columns', 'MAX')).to.equal('7');
    expect(cell(wide, 'columns', 'BACKLOG')).to.equal('');
    expect(cell(wide, 'columns', 'READY')).to.equal('');
    expect(cell(wide, 'columns', 'FUNCTION')).to.equal('column-worker');
    expect(cell(wide, 'columns', 'PER-INV')).to.equal('2');
    expect(cell(wide, 'columns', 'SUSPENDED')).to.equal('false');
  });

  it('after a status write through the status subresource, the columns show backlog, pending, running, done, failed and the Ready condition', async () => {
    const status = {
      observedGeneration: 1,
      backlog: 14,
      invocations: { created: 1, pending: 3, ready: 1, running: 5, succeeded: 20, failed: 0, orphaned: 2, terminated: 0 },
      tasks: { created: 14, leased: 10, done: 57, failed: 4, cancelled: 2 },
      conditions: [
        {
          type: 'Ready',
          status: 'False',
          reason: 'QueueConflict',
          message: 'another pool claims the queue',
          lastTransitionTime: '2026-01-01T00:00:00Z',
          observedGeneration: 1,
        },
      ],
    };
    ok(
      await kubectl(['patch', 'ltp', 'columns', '-n', namespace, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status })]),
      'patch status',
    );
    const wide = ok(await kubectl(['get', 'ltp', '-n', namespace, '-o', 'wide']), 'get ltp -o wide');
    expect(cell(wide, 'columns', 'BACKLOG')).to.equal('14');
    expect(cell(wide, 'columns', 'PENDING')).to.equal('3');
    expect(cell(wide, 'columns', 'RUNNING')).to.equal('5');
    expect(cell(wide, 'columns', 'READY')).to.equal('False');
    expect(cell(wide, 'columns', 'DONE')).to.equal('57');
    expect(cell(wide, 'columns', 'FAILED')).to.equal('4');
    expect(cell(wide, 'columns', 'REASON')).to.equal('QueueConflict');
    // The schema keeps every task count, cancelled included (a field it did not list would be pruned).
    const tasks: unknown = JSON.parse(
      ok(await kubectl(['get', 'ltp', 'columns', '-n', namespace, '-o', 'jsonpath={.status.tasks}']), 'get status.tasks'),
    );
    expect(tasks).to.deep.equal(status.tasks);

    const flipped = { conditions: [{ ...status.conditions[0], status: 'True', reason: 'Reconciled', message: 'dispatching' }] };
    ok(
      await kubectl([
        'patch',
        'ltp',
        'columns',
        '-n',
        namespace,
        '--subresource=status',
        '--type=merge',
        '-p',
        JSON.stringify({ status: flipped }),
      ]),
      'patch status again',
    );
    const narrow = ok(await kubectl(['get', 'ltp', 'columns', '-n', namespace]), 'get ltp columns');
    expect(cell(narrow, 'columns', 'READY')).to.equal('True');
    expect(cell(narrow, 'columns', 'BACKLOG')).to.equal('14');
  });

  it('a status write through the main resource is ignored, and the status subresource validates too', async () => {
    const pool: unknown = JSON.parse(ok(await kubectl(['get', 'ltp', 'columns', '-n', namespace, '-o', 'json']), 'get pool'));
    const generation = at(pool, 'metadata', 'generation');
    ok(
      await kubectl(['patch', 'ltp', 'columns', '-n', namespace, '--type=merge', '-p', '{"status":{"backlog":999}}']),
      'patch main resource',
    );
    const after: unknown = JSON.parse(ok(await kubectl(['get', 'ltp', 'columns', '-n', namespace, '-o', 'json']), 'get pool'));
    expect(at(after, 'status', 'backlog')).to.equal(14);
    expect(at(after, 'metadata', 'generation')).to.equal(generation);

    const bad = await kubectl([
      'patch',
      'ltp',
      'columns',
      '-n',
      namespace,
      '--subresource=status',
      '--type=merge',
      '-p',
      '{"status":{"backlog":-1}}',
    ]);
    expect(bad.code).to.not.equal(0);
    expect(bad.stderr).to.match(/status\.backlog: Invalid value: -1/);
  });

  it('kubectl explain ltp.spec describes the fields', async () => {
    const text = ok(await kubectl(['explain', 'ltp.spec']), 'explain').replace(/\s+/g, ' ');
    expect(text).to.contain('KIND: LambdaTaskPool');
    expect(text).to.contain('VERSION: v1alpha1');
    expect(text).to.match(/function <Object> -required- The worker Lambda function/);
    expect(text).to.match(/queue <string> -required- The task queue this pool serves/);
    expect(text).to.match(/maxConcurrency <integer> The most live invocations \(created, pending, ready or running\)/);
    expect(text).to.match(/tasksPerInvocation <integer> The most tasks one invocation leases/);
    expect(text).to.match(/suspend <boolean> When true the controller dispatches nothing/);
    const nested = ok(await kubectl(['explain', 'ltp.spec.database.secretRef']), 'explain secretRef').replace(/\s+/g, ' ');
    expect(nested).to.match(/never copies it into status, events or logs/);
    expect(nested).to.match(/name <string> -required-/);
  });

  it("the chart's CRD copy is byte-identical to crds/lambdataskpools.yaml", async () => {
    const [source, copy] = await Promise.all([readFile(CRD_FILE), readFile(CHART_CRD_FILE)]);
    expect(copy.equals(source), `${CHART_CRD_FILE} differs from ${CRD_FILE}`).to.equal(true);
  });
});
