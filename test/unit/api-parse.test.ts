import { expect } from 'chai';
import { NotAPoolError, parsePool, type ParseResult } from '../../src/api/parse.ts';
import type { Pool } from '../../src/api/types.ts';

type Obj = Record<string, unknown>;

const metadata = {
  namespace: 'jobs',
  name: 'thumbnails',
  uid: 'uid-1',
  generation: 4,
  resourceVersion: '77',
  finalizers: ['lambda.taskpool.io/finalizer'],
};

/** A pool as the API server returns it, with only the required spec fields. */
/** `null` leaves the spec out. */
function object(spec: Obj | null = { function: { name: 'make-thumbnails' }, queue: 'thumbnails' }, status: Obj = {}): Obj {
  return { apiVersion: 'lambda.taskpool.io/v1alpha1', kind: 'LambdaTaskPool', metadata, ...(spec ? { spec } : {}), status };
}

/** The minimal spec with some fields replaced (undefined deletes a field). */
function withSpec(over: Obj): Obj {
  const spec: Obj = { function: { name: 'make-thumbnails' }, queue: 'thumbnails', ...over };
  for (const [k, v] of Object.entries(over)) if (v === undefined) delete spec[k];
  return object(spec);
}

function accepted(result: ParseResult): Pool {
  if (!result.ok) throw new Error(`expected the pool to parse, got problems: ${result.problems.join('; ')}`);
  return result.pool;
}

function problemsOf(result: ParseResult): string[] {
  if (result.ok) throw new Error('expected problems, but the pool parsed');
  return result.problems;
}

describe('parsePool', () => {
  it('fills every omitted field with its default', () => {
    const pool = accepted(parsePool(object()));

    expect(pool.spec).to.deep.equal({
      function: { name: 'make-thumbnails' },
      queue: 'thumbnails',
      maxConcurrency: 10,
      tasksPerInvocation: 1,
      startTimeoutSeconds: 900,
      heartbeatTimeoutSeconds: 120,
      maxTaskAttempts: 3,
      retry: { initialDelaySeconds: 10, maxDelaySeconds: 600 },
      suspend: false,
    });
    expect(pool.meta).to.deep.equal({
      namespace: 'jobs',
      name: 'thumbnails',
      uid: 'uid-1',
      generation: 4,
      resourceVersion: '77',
      deletionTimestamp: undefined,
      finalizers: ['lambda.taskpool.io/finalizer'],
    });
  });

  it('keeps every field that was set, and defaults the Secret key to "url"', () => {
    const spec = {
      function: { name: 'arn:aws:lambda:eu-west-1:123456789012:function:make-thumbnails', qualifier: 'live', region: 'eu-west-1' },
      queue: 'media/thumbnails:v2',
      maxConcurrency: 1000,
      tasksPerInvocation: 100,
      startTimeoutSeconds: 10,
      heartbeatTimeoutSeconds: 5,
      maxTaskAttempts: 1,
      retry: { initialDelaySeconds: 0, maxDelaySeconds: 86400 },
      suspend: true,
      database: { secretRef: { name: 'media-db' } },
    };
    const status = { observedGeneration: 3, backlog: 12 };
    const pool = accepted(parsePool(object(spec, status)));

    expect(pool.spec).to.deep.equal({ ...spec, database: { secretRef: { name: 'media-db', key: 'url' } } });
    expect(pool.status).to.deep.equal(status);
  });

  it('accepts a partial ARN, a $LATEST qualifier, a GovCloud region and an explicit Secret key', () => {
    const pool = accepted(
      parsePool(
        withSpec({
          function: { name: '123456789012:function:make-thumbnails', qualifier: '$LATEST', region: 'us-gov-west-1' },
          database: { secretRef: { name: 'media-db', key: 'DATABASE_URL' } },
        }),
      ),
    );
    expect(pool.spec.function).to.deep.equal({
      name: '123456789012:function:make-thumbnails',
      qualifier: '$LATEST',
      region: 'us-gov-west-1',
    });
    expect(pool.spec.database).to.deep.equal({ secretRef: { name: 'media-db', key: 'DATABASE_URL' } });
  });

  const invalid: Array<{ name: string; input: Obj; field: string }> = [
    { name: 'reports a missing spec', input: object(null), field: 'spec is missing' },
    { name: 'reports a spec that is not an object', input: { ...object(), spec: 'thumbnails' }, field: 'spec is missing' },
    { name: 'reports a missing function', input: withSpec({ function: undefined }), field: 'spec.function.name' },
    { name: 'reports a missing function name', input: withSpec({ function: { qualifier: 'live' } }), field: 'spec.function.name' },
    { name: 'reports an empty function name', input: withSpec({ function: { name: '' } }), field: 'spec.function.name' },
    { name: 'reports a function name that is not a string', input: withSpec({ function: { name: 42 } }), field: 'spec.function.name' },
    {
      name: 'reports a function name with spaces and shell characters',
      input: withSpec({ function: { name: 'thumbs; rm -rf /' } }),
      field: 'spec.function.name',
    },
    {
      name: 'reports a function name longer than 64 characters',
      input: withSpec({ function: { name: 'f'.repeat(65) } }),
      field: 'spec.function.name',
    },
    {
      name: 'reports an ARN whose account id is too short',
      input: withSpec({ function: { name: 'arn:aws:lambda:us-east-1:12345:function:make-thumbnails' } }),
      field: 'spec.function.name',
    },
    {
      name: 'reports an ARN of another service',
      input: withSpec({ function: { name: 'arn:aws:sqs:us-east-1:123456789012:function:make-thumbnails' } }),
      field: 'spec.function.name',
    },
    {
      name: 'reports a qualifier with a space',
      input: withSpec({ function: { name: 'f', qualifier: 'my alias' } }),
      field: 'spec.function.qualifier',
    },
    { name: 'reports an empty qualifier', input: withSpec({ function: { name: 'f', qualifier: '' } }), field: 'spec.function.qualifier' },
    {
      name: 'reports a region in capitals',
      input: withSpec({ function: { name: 'f', region: 'US-EAST-1' } }),
      field: 'spec.function.region',
    },
    {
      name: 'reports a region that is not one',
      input: withSpec({ function: { name: 'f', region: 'moon' } }),
      field: 'spec.function.region',
    },
    { name: 'reports a missing queue', input: withSpec({ queue: undefined }), field: 'spec.queue' },
    { name: 'reports an empty queue', input: withSpec({ queue: '' }), field: 'spec.queue' },
    { name: 'reports a queue that is not a string', input: withSpec({ queue: ['a'] }), field: 'spec.queue' },
    { name: 'reports a queue carrying SQL', input: withSpec({ queue: "x'; DROP TABLE ltp.tasks; --" }), field: 'spec.queue' },
    { name: 'reports a queue starting with a dash', input: withSpec({ queue: '-thumbnails' }), field: 'spec.queue' },
    { name: 'reports a queue of 129 characters', input: withSpec({ queue: 'q'.repeat(129) }), field: 'spec.queue' },
    { name: 'reports a queue with a newline', input: withSpec({ queue: 'thumbnails\n' }), field: 'spec.queue' },
    { name: 'reports maxConcurrency of zero', input: withSpec({ maxConcurrency: 0 }), field: 'spec.maxConcurrency' },
    { name: 'reports maxConcurrency above 1000', input: withSpec({ maxConcurrency: 1001 }), field: 'spec.maxConcurrency' },
    { name: 'reports a negative maxConcurrency', input: withSpec({ maxConcurrency: -1 }), field: 'spec.maxConcurrency' },
    { name: 'reports a fractional maxConcurrency', input: withSpec({ maxConcurrency: 2.5 }), field: 'spec.maxConcurrency' },
    { name: 'reports maxConcurrency given as a string', input: withSpec({ maxConcurrency: '10' }), field: 'spec.maxConcurrency' },
    {
      name: 'reports an infinite maxConcurrency',
      input: withSpec({ maxConcurrency: Number.POSITIVE_INFINITY }),
      field: 'spec.maxConcurrency',
    },
    { name: 'reports tasksPerInvocation above 100', input: withSpec({ tasksPerInvocation: 101 }), field: 'spec.tasksPerInvocation' },
    { name: 'reports startTimeoutSeconds below 10', input: withSpec({ startTimeoutSeconds: 9 }), field: 'spec.startTimeoutSeconds' },
    {
      name: 'reports startTimeoutSeconds above six hours',
      input: withSpec({ startTimeoutSeconds: 21601 }),
      field: 'spec.startTimeoutSeconds',
    },
    {
      name: 'reports heartbeatTimeoutSeconds below 5',
      input: withSpec({ heartbeatTimeoutSeconds: 4 }),
      field: 'spec.heartbeatTimeoutSeconds',
    },
    {
      name: 'reports heartbeatTimeoutSeconds above an hour',
      input: withSpec({ heartbeatTimeoutSeconds: 3601 }),
      field: 'spec.heartbeatTimeoutSeconds',
    },
    { name: 'reports maxTaskAttempts of zero', input: withSpec({ maxTaskAttempts: 0 }), field: 'spec.maxTaskAttempts' },
    { name: 'reports a fractional maxTaskAttempts', input: withSpec({ maxTaskAttempts: 1.5 }), field: 'spec.maxTaskAttempts' },
    { name: 'reports a retry that is not an object', input: withSpec({ retry: 10 }), field: 'spec.retry' },
    {
      name: 'reports a negative initial retry delay',
      input: withSpec({ retry: { initialDelaySeconds: -1 } }),
      field: 'spec.retry.initialDelaySeconds',
    },
    {
      name: 'reports a maximum retry delay above a day',
      input: withSpec({ retry: { maxDelaySeconds: 86401 } }),
      field: 'spec.retry.maxDelaySeconds',
    },
    {
      name: 'reports a maximum retry delay below the initial one',
      input: withSpec({ retry: { initialDelaySeconds: 60, maxDelaySeconds: 30 } }),
      field: 'spec.retry.maxDelaySeconds',
    },
    { name: 'reports suspend given as a string', input: withSpec({ suspend: 'true' }), field: 'spec.suspend' },
    { name: 'reports suspend given as a number', input: withSpec({ suspend: 1 }), field: 'spec.suspend' },
    { name: 'reports a database without a secretRef', input: withSpec({ database: {} }), field: 'spec.database.secretRef.name' },
    {
      name: 'reports a Secret name with capitals and underscores',
      input: withSpec({ database: { secretRef: { name: 'Media_DB' } } }),
      field: 'spec.database.secretRef.name',
    },
    {
      name: 'reports a Secret name with a path',
      input: withSpec({ database: { secretRef: { name: '../kube-system/admin' } } }),
      field: 'spec.database.secretRef.name',
    },
    {
      name: 'reports an empty Secret name',
      input: withSpec({ database: { secretRef: { name: '' } } }),
      field: 'spec.database.secretRef.name',
    },
    {
      name: 'reports a Secret key with a space',
      input: withSpec({ database: { secretRef: { name: 'media-db', key: 'database url' } } }),
      field: 'spec.database.secretRef.key',
    },
  ];

  for (const c of invalid) {
    it(`${c.name}, naming the field`, () => {
      const result = parsePool(c.input);
      const problems = problemsOf(result);

      expect(problems, problems.join('; ')).to.have.length(1);
      expect(problems[0]).to.include(c.field);
      expect(result.meta.uid).to.equal('uid-1');
    });
  }

  it('reports every problem at once, not just the first', () => {
    const problems = problemsOf(
      parsePool(
        withSpec({
          function: { name: 'f', region: 'nowhere' },
          queue: 'has space',
          maxConcurrency: 0,
          heartbeatTimeoutSeconds: 1.5,
          suspend: 'no',
        }),
      ),
    );

    expect(problems).to.have.length(5);
    for (const field of ['spec.function.region', 'spec.queue', 'spec.maxConcurrency', 'spec.heartbeatTimeoutSeconds', 'spec.suspend']) {
      expect(
        problems.some((p) => p.includes(field)),
        `${field} in ${problems.join('; ')}`,
      ).to.equal(true);
    }
  });

  it('hands back the metadata and the current status of a rejected pool so its status can be written', () => {
    const status = { observedGeneration: 2, conditions: [] };
    const result = parsePool(object({ queue: 'thumbnails' }, status));

    expect(result.ok).to.equal(false);
    expect(result.meta.name).to.equal('thumbnails');
    if (!result.ok) expect(result.status).to.deep.equal(status);
  });

  it('truncates a very long function name in the problem it reports', () => {
    const [problem] = problemsOf(parsePool(withSpec({ function: { name: `bad name ${'x'.repeat(5000)}` } })));
    expect(problem?.length).to.be.below(200);
  });

  const notPools: Array<{ name: string; input: unknown }> = [
    { name: 'metadata without a uid', input: { metadata: { namespace: 'jobs', name: 'thumbnails' }, spec: {} } },
    { name: 'metadata without a namespace', input: { metadata: { name: 'thumbnails', uid: 'u' }, spec: {} } },
    { name: 'no metadata', input: { spec: {} } },
    { name: 'null', input: null },
    { name: 'a string', input: 'thumbnails' },
  ];
  for (const c of notPools) {
    it(`throws NotAPoolError for ${c.name}`, () => {
      expect(() => parsePool(c.input)).to.throw(NotAPoolError);
    });
  }
});
