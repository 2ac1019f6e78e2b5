// Hostile specs and names, answered twice: the API server refuses each one through the CRD schema, and a pool
// that holds it anyway (stored before a schema change, or written while the schema was looser: here the CRD
// is made permissive for a moment, the pools are stored, and the CRD is put back) gets Ready=False
// InvalidSpec naming the problem, and dispatches nothing. Extreme but valid names and sizes work. The healthy
// pool keeps dispatching and finishing its tasks throughout. See docs/security.md (SPEC-*).
import { expect } from 'chai';
import { installCrd } from '../../dev/src/crd.ts';
import { loadKubeConfig } from '../../src/controller/kube.ts';
import { enqueueTasks } from '../../src/store/task-store.ts';
import { kubectl } from '../support/kube.ts';
import { applyPool, condition, eventually, getPool } from '../support/system.ts';
import { removePools, HealthyProbe, invocationRowsOf, NS, readyReason, securityStack, type SecurityStack } from './stack.ts';

const CRD = 'lambdataskpools.lambda.taskpool.io';

interface SpecCase {
  id: string;
  what: string;
  /** Merged over a valid spec (team-b-worker on a queue of its own). */
  spec: Record<string, unknown>;
  /** What the API server says when the CRD refuses it. */
  api: RegExp;
  /** What the controller's Ready message says when a pool holds it anyway. */
  parse: RegExp;
}

const CASES: SpecCase[] = [
  {
    id: 'SPEC-01',
    what: 'a function without a name',
    spec: { function: { region: 'us-east-1' } },
    api: /spec\.function\.name: Required value/,
    parse: /spec\.function\.name is required/,
  },
  {
    id: 'SPEC-02',
    what: 'a function name with SQL and shell metacharacters',
    spec: { function: { name: "team-b-worker'; DROP TABLE ltp.invocations; --" } },
    api: /spec\.function\.name: Invalid value/,
    parse: /spec\.function\.name "team-b-worker'; DROP TABLE ltp\.invocations; --" is not a function name or ARN/,
  },
  {
    id: 'SPEC-03',
    what: 'a function name of 100,000 characters',
    spec: { function: { name: 'f'.repeat(100_000) } },
    api: /spec\.function\.name: Too long/,
    parse: /spec\.function\.name "f{80}" is not a function name or ARN/,
  },
  {
    id: 'SPEC-04',
    what: 'a region that would send the invoke to another host',
    spec: { function: { name: 'team-b-worker', region: 'us-east-1.attacker.example/' } },
    api: /spec\.function\.region: Invalid value/,
    parse: /spec\.function\.region "us-east-1\.attacker\.example\/" is not an AWS region/,
  },
  {
    id: 'SPEC-05',
    what: 'a qualifier with a path',
    spec: { function: { name: 'team-b-worker', qualifier: '../../2015-03-31/functions/team-a-worker' } },
    api: /spec\.function\.qualifier: Invalid value/,
    parse: /spec\.function\.qualifier must be \$LATEST, a version or an alias/,
  },
  {
    id: 'SPEC-06',
    what: 'a queue name with SQL metacharacters',
    spec: { queue: "team-b/x'; DROP TABLE ltp.tasks; --" },
    api: /spec\.queue: Invalid value/,
    parse: /spec\.queue must be 1-128 letters, digits or \. _ : \/ - and start with a letter or digit/,
  },
  {
    id: 'SPEC-07',
    what: 'a queue name in Unicode (Cyrillic, an emoji, a right-to-left mark)',
    spec: { queue: 'team-b/очередь-🎯\u200f' },
    api: /spec\.queue: Invalid value/,
    parse: /spec\.queue must be 1-128 letters/,
  },
  {
    id: 'SPEC-08',
    what: 'a queue name with a NUL and a newline',
    spec: { queue: 'team-b/a\u0000b\nc' },
    api: /spec\.queue: Invalid value/,
    parse: /spec\.queue must be 1-128 letters/,
  },
  {
    id: 'SPEC-09',
    what: 'a queue name of 10,000 characters',
    spec: { queue: `team-b/${'q'.repeat(10_000)}` },
    api: /spec\.queue: Too long/,
    parse: /spec\.queue must be 1-128 letters/,
  },
  { id: 'SPEC-10', what: 'an empty queue name', spec: { queue: '' }, api: /spec\.queue: Invalid value/, parse: /spec\.queue is required/ },
  {
    id: 'SPEC-11',
    what: 'a queue that is a number',
    spec: { queue: 42 },
    api: /spec\.queue: Invalid value: "integer": spec\.queue in body must be of type string/,
    parse: /spec\.queue is required/,
  },
  {
    id: 'SPEC-12',
    what: 'maxConcurrency of a billion',
    spec: { maxConcurrency: 1_000_000_000 },
    api: /spec\.maxConcurrency: Invalid value: 1000000000/,
    parse: /spec\.maxConcurrency must be an integer from 1 to 1000/,
  },
  {
    id: 'SPEC-13',
    what: 'maxConcurrency as a string',
    spec: { maxConcurrency: '10' },
    api: /spec\.maxConcurrency: Invalid value: "string"/,
    parse: /spec\.maxConcurrency must be an integer from 1 to 1000/,
  },
  {
    id: 'SPEC-14',
    what: 'a fractional tasksPerInvocation',
    spec: { tasksPerInvocation: 2.5 },
    api: /spec\.tasksPerInvocation: Invalid value: "number"/,
    parse: /spec\.tasksPerInvocation must be an integer from 1 to 100/,
  },
  {
    id: 'SPEC-15',
    what: 'a negative heartbeatTimeoutSeconds',
    spec: { heartbeatTimeoutSeconds: -1 },
    api: /spec\.heartbeatTimeoutSeconds: Invalid value: -1/,
    parse: /spec\.heartbeatTimeoutSeconds must be an integer from 5 to 3600/,
  },
  {
    id: 'SPEC-16',
    what: 'retry.maxDelaySeconds below retry.initialDelaySeconds',
    spec: { retry: { initialDelaySeconds: 600, maxDelaySeconds: 1 } },
    api: /retry\.maxDelaySeconds must not be below retry\.initialDelaySeconds/,
    parse: /spec\.retry\.maxDelaySeconds must not be below spec\.retry\.initialDelaySeconds/,
  },
  {
    id: 'SPEC-17',
    what: 'retry as a string',
    spec: { retry: 'fast' },
    api: /spec\.retry: Invalid value: "string"/,
    parse: /spec\.retry must be an object/,
  },
  {
    id: 'SPEC-18',
    what: 'suspend as the string "false"',
    spec: { suspend: 'false' },
    api: /spec\.suspend: Invalid value: "string"/,
    parse: /spec\.suspend must be true or false/,
  },
  {
    id: 'SPEC-19',
    what: 'retentionSeconds of 30 (deletes finished rows at once)',
    spec: { retentionSeconds: 30 },
    api: /retentionSeconds must be 0 \(keep for ever\) or at least 60/,
    parse: /spec\.retentionSeconds must be 0 \(keep for ever\) or an integer from 60/,
  },
  {
    id: 'SPEC-20',
    what: 'a secretRef name that walks to another namespace',
    spec: { database: { secretRef: { name: '../../kube-system/db' } } },
    api: /spec\.database\.secretRef\.name: Invalid value/,
    parse: /spec\.database\.secretRef\.name must name a Secret in the pool namespace/,
  },
  {
    id: 'SPEC-21',
    what: 'a secretRef key with a path',
    spec: { database: { secretRef: { name: 'db', key: 'url/../../token' } } },
    api: /spec\.database\.secretRef\.key: Invalid value/,
    parse: /spec\.database\.secretRef\.key is not a valid Secret key/,
  },
];

const poolName = (c: SpecCase) => c.id.toLowerCase();
const specOf = (c: SpecCase) => ({
  function: { name: 'team-b-worker' },
  queue: `team-b/${poolName(c)}`,
  maxConcurrency: 2,
  tasksPerInvocation: 1,
  ...c.spec,
});
const manifest = (name: string, spec: unknown) => ({
  apiVersion: 'lambda.taskpool.io/v1alpha1',
  kind: 'LambdaTaskPool',
  metadata: { name, namespace: NS.b },
  spec,
});

/**
 * Stores the manifests without the CRD's schema: the spec schema is replaced by one that accepts anything,
 * the objects are created, and the CRD from crds/lambdataskpools.yaml is put back, whatever happens.
 */
async function storeBypassingTheSchema(stack: SecurityStack, manifests: unknown[]): Promise<void> {
  const current = JSON.parse((await kubectl(['get', 'crd', CRD, '-o', 'json'])).stdout) as {
    metadata: Record<string, unknown>;
    spec: { versions: Array<{ schema: { openAPIV3Schema: { properties: Record<string, unknown> } } }> };
    status?: unknown;
  };
  delete current.status;
  delete current.metadata.managedFields;
  for (const version of current.spec.versions) {
    version.schema.openAPIV3Schema.properties.spec = { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
  }
  const replaced = await kubectl(['replace', '-f', '-'], { input: JSON.stringify(current) });
  expect(replaced.code, replaced.stderr).to.equal(0);
  try {
    const list = JSON.stringify({ apiVersion: 'v1', kind: 'List', items: manifests });
    // The API server takes a moment to serve the new schema.
    await eventually(
      'the permissive schema to take the invalid pools',
      async () => {
        const created = await kubectl(['create', '-f', '-'], { input: list });
        if (created.code === 0) return true;
        // Some may have gone in on an earlier try.
        return created.stderr.split('\n').every((line) => line.trim() === '' || line.includes('AlreadyExists')) || undefined;
      },
      30_000,
      500,
    );
  } finally {
    await installCrd(loadKubeConfig(stack.kubeconfig));
  }
  // The schema is back when it refuses an invalid spec again.
  await eventually(
    'the CRD schema to refuse invalid specs again',
    async () => {
      const probe = manifest('schema-probe', { function: { name: 'x y' }, queue: 'q' });
      const r = await kubectl(['create', '--dry-run=server', '-f', '-'], { input: JSON.stringify(probe) });
      return r.code !== 0;
    },
    30_000,
    250,
  );
}

/**
 * What the owner of a pool with an invalid spec sees: Ready=False InvalidSpec in status; or, when the API server
 * refuses the status write because the stored object fails the schema now back in place (required fields and
 * types are not ratcheted), a Warning Event InvalidSpec with the same message. Which one depends on whether the
 * controller wrote before the schema came back.
 */
async function invalidSpecVerdict(name: string): Promise<{ status: string; message: string }> {
  return eventually(
    `${NS.b}/${name}: InvalidSpec in its Ready condition or in an Event`,
    async () => {
      const ready = condition(await getPool(NS.b, name), 'Ready');
      if (ready?.reason === 'InvalidSpec') return { status: ready.status, message: ready.message ?? '' };
      const events = await kubectl([
        'get',
        'events',
        '-n',
        NS.b,
        '--field-selector',
        `involvedObject.name=${name},reason=InvalidSpec,type=Warning`,
        '-o',
        'json',
      ]);
      const [event] = (JSON.parse(events.stdout || '{"items":[]}') as { items: Array<{ message: string }> }).items;
      return event ? { status: 'False', message: event.message } : undefined;
    },
    45_000,
  );
}

describe('security: hostile specs and names (CRD validation, then the controller parse)', function () {
  this.timeout(180_000);
  let stack: SecurityStack;
  let probe: HealthyProbe;
  const LONG_NAME = `long-${'n'.repeat(248)}`;

  before(async function () {
    this.timeout(240_000);
    stack = await securityStack();
    probe = new HealthyProbe(stack).start();
    await storeBypassingTheSchema(
      stack,
      CASES.map((c) => manifest(poolName(c), specOf(c))),
    );
  });

  after(async function () {
    this.timeout(120_000);
    await removePools(NS.b, [...CASES.map(poolName), 'spec-23']);
    await removePools(NS.healthy, [LONG_NAME]);
  });

  for (const c of CASES) {
    it(`[${c.id}] ${c.what}: the API server refuses it, and a pool holding it is Ready=False InvalidSpec and dispatches nothing`, async () => {
      const refused = await kubectl(['create', '--dry-run=server', '-f', '-'], {
        input: JSON.stringify(manifest(`${poolName(c)}-again`, specOf(c))),
      });
      expect(refused.code, `the API server accepted ${c.what}`).to.not.equal(0);
      expect(refused.stderr).to.match(c.api);

      const ready = await invalidSpecVerdict(poolName(c));
      expect(ready.status).to.equal('False');
      expect(ready.message).to.match(/^invalid spec: /);
      expect(ready.message).to.match(c.parse);
      expect(ready.message.length, 'a condition message is bounded').to.be.at.most(1024);
      expect(await invocationRowsOf(stack, NS.b, poolName(c)), 'invocation rows of the invalid pool').to.equal(0);
    });
  }

  it('[SPEC-22] a pool named with the longest name Kubernetes allows (253 characters) dispatches, finishes its tasks, and shows in events and metrics', async () => {
    expect(LONG_NAME).to.have.length(253);
    await applyPool({
      namespace: NS.healthy,
      name: LONG_NAME,
      functionName: 'sec-healthy',
      queue: 'healthy-long-name',
      maxConcurrency: 2,
      tasksPerInvocation: 2,
    });
    const ids = await enqueueTasks(stack.database.db, { queue: 'healthy-long-name', payloads: [{}, {}, {}] });
    await eventually('the long-named pool to finish its tasks', async () => {
      const r = await stack.database.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM ltp.tasks WHERE id = ANY($1) AND status = 'done'`,
        [ids],
      );
      return r.rows[0]?.n === 3;
    });
    await eventually('its status to show the done tasks', async () => (await getPool(NS.healthy, LONG_NAME))?.status.tasks?.done === 3);
    expect(condition(await getPool(NS.healthy, LONG_NAME), 'Ready')?.status).to.equal('True');
    const events = await kubectl(['get', 'events', '-n', NS.healthy, '--field-selector', `involvedObject.name=${LONG_NAME}`, '-o', 'json']);
    expect(events.stdout).to.include('Dispatched');
    const metrics = await (await fetch(stack.metricsUrl)).text();
    expect(metrics).to.include(`ltp_invocations_dispatched_total{namespace="${NS.healthy}",pool="${LONG_NAME}",result="accepted"}`);
  });

  it('[SPEC-23] a spec carrying 1 MiB of unknown fields: the API server prunes them, and the pool works as if they were not there', async () => {
    const junk = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`junk${i}`, 'x'.repeat(64 * 1024)]));
    const body = manifest('spec-23', { function: { name: 'team-b-worker' }, queue: 'team-b/spec-23', maxConcurrency: 1, ...junk });
    const strict = await kubectl(['create', '--validate=strict', '-f', '-'], { input: JSON.stringify(body) });
    expect(strict.code, 'strict validation refuses unknown fields').to.not.equal(0);
    expect(strict.stderr).to.match(/unknown field "spec\.junk0"/);
    const lax = await kubectl(['create', '--validate=false', '-f', '-'], { input: JSON.stringify(body) });
    expect(lax.code, lax.stderr).to.equal(0);
    const stored = JSON.stringify(JSON.parse((await kubectl(['get', 'ltp', 'spec-23', '-n', NS.b, '-o', 'json'])).stdout));
    expect(stored).to.not.include('junk0');
    expect(stored.length).to.be.below(10_000);
    await readyReason(NS.b, 'spec-23', 'Reconciled');
    const [id] = await enqueueTasks(stack.database.db, { queue: 'team-b/spec-23', payloads: [{}] });
    await eventually('its task done', async () => {
      const r = await stack.database.db.query<{ status: string }>(`SELECT status FROM ltp.tasks WHERE id = $1`, [id]);
      return r.rows[0]?.status === 'done';
    });
  });

  it('[SPEC-24] a pool object over the API server limits (a 300 KiB annotation; a 4 MiB spec) is refused whole', async () => {
    const annotated = {
      ...manifest('spec-24-annotated', { function: { name: 'team-b-worker' }, queue: 'team-b/spec-24' }),
      metadata: { name: 'spec-24-annotated', namespace: NS.b, annotations: { note: 'a'.repeat(300 * 1024) } },
    };
    const a = await kubectl(['create', '-f', '-'], { input: JSON.stringify(annotated) });
    expect(a.code).to.not.equal(0);
    // The wording differs between Kubernetes versions; the field and the limit do not.
    expect(a.stderr).to.match(/metadata\.annotations: Too long: (must have at most|may not be more than) 262144 bytes/);
    const huge = manifest('spec-24-huge', {
      function: { name: 'team-b-worker' },
      queue: 'team-b/spec-24',
      junk: 'x'.repeat(4 * 1024 * 1024),
    });
    const h = await kubectl(['create', '--validate=false', '-f', '-'], { input: JSON.stringify(huge) });
    expect(h.code).to.not.equal(0);
    expect(h.stderr).to.match(/too large|Request entity too large/i);
    for (const name of ['spec-24-annotated', 'spec-24-huge']) {
      const lookup = await kubectl(['get', 'ltp', name, '-n', NS.b, '--ignore-not-found', '-o', 'name']);
      expect(lookup.stdout.trim()).to.equal('');
    }
  });

  it('the healthy pool kept dispatching and finishing its tasks, each exactly once, while this group ran', async () => {
    const { tasks } = await probe.check();
    expect(tasks).to.be.greaterThan(0);
  });
});
