import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { parse as parseYaml } from 'yaml';
import {
  DEFAULT_ASYNC_SETTINGS,
  LambdaConfigError,
  loadLambdaConfig,
  parseFunctionFlag,
  parseLambdaConfig,
} from '../../dev/src/lambda-runtime/index.ts';
import { resolveFunctionConfig } from '../../dev/src/lambda-runtime/config.ts';

function errorOf(run: () => unknown): LambdaConfigError {
  try {
    run();
  } catch (error) {
    if (error instanceof LambdaConfigError) return error;
    throw error;
  }
  throw new Error('expected a LambdaConfigError, got none');
}

describe('lambda runtime config', () => {
  let dir: string;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'lambda-config-'));
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('loads a YAML file, merging defaults under each function and resolving handlers from the file', async () => {
    const file = path.join(dir, 'lambda.yaml');
    await writeFile(
      file,
      [
        'seed: 42',
        'concurrencyLimit: 4',
        'defaults:',
        '  timeoutSeconds: 60',
        '  environment: { STAGE: local, PORT: 5432 }',
        '  async: { maximumRetryAttempts: 1, retryDelaysMs: [100, 200] }',
        'functions:',
        '  worker:',
        '    handler: ./handlers/worker.ts#run',
        '    reservedConcurrency: 3',
        '    environment: { QUEUE: emails }',
        '    async: { dropRate: 0.1, startDelayMs: { min: 10, max: 20 } }',
        '  plain:',
        '    handler: /abs/plain.ts',
        '',
      ].join('\n'),
    );
    const config = await loadLambdaConfig(file);
    expect(config.seed).to.equal(42);
    expect(config.concurrencyLimit).to.equal(4);
    expect(config.functions).to.have.length(2);
    const [worker, plain] = config.functions;
    expect(worker).to.deep.equal({
      name: 'worker',
      handler: `${path.join(dir, 'handlers/worker.ts')}#run`,
      timeoutSeconds: 60,
      memoryMb: 128,
      reservedConcurrency: 3,
      environment: { STAGE: 'local', PORT: '5432', QUEUE: 'emails' },
      state: 'Active',
      async: {
        ...DEFAULT_ASYNC_SETTINGS,
        maximumRetryAttempts: 1,
        retryDelaysMs: [100, 200],
        dropRate: 0.1,
        startDelayMs: { min: 10, max: 20 },
      },
    });
    expect(plain?.handler).to.equal('/abs/plain.ts#handler');
    expect(plain?.timeoutSeconds).to.equal(60);
    expect(plain?.async.maximumRetryAttempts).to.equal(1);
  });

  it('gives every unset setting its documented default', () => {
    const config = resolveFunctionConfig({ name: 'f', handler: '/x.ts' });
    expect(config).to.deep.equal({
      name: 'f',
      handler: '/x.ts#handler',
      timeoutSeconds: 900,
      memoryMb: 128,
      environment: {},
      state: 'Active',
      async: {
        startDelayMs: 0,
        maximumRetryAttempts: 2,
        retryDelaysMs: [60_000, 120_000],
        maximumEventAgeSeconds: 21_600,
        duplicateRate: 0,
        dropRate: 0,
        throttleRate: 0,
        crashRate: 0,
        crashAfterMs: { min: 50, max: 500 },
      },
    });
  });

  it('names the file and the key when a YAML file has an unknown key', async () => {
    const file = path.join(dir, 'typo.yaml');
    await writeFile(file, 'functions:\n  worker:\n    handler: ./w.ts\n    async:\n      dropRat: 0.5\n');
    let message = '';
    try {
      await loadLambdaConfig(file);
    } catch (error) {
      expect(error).to.be.instanceOf(LambdaConfigError);
      message = error instanceof Error ? error.message : '';
    }
    expect(message).to.contain(file).and.contain('functions.worker.async.dropRat: unknown key');
  });

  it('reports a file that is not YAML', async () => {
    const file = path.join(dir, 'broken.yaml');
    await writeFile(file, 'functions: [unclosed\n');
    let message = '';
    try {
      await loadLambdaConfig(file);
    } catch (error) {
      message = error instanceof Error ? error.message : '';
    }
    expect(message).to.contain('not valid YAML');
  });

  const rejected: Array<{ name: string; document: unknown; key: string; says: string }> = [
    { name: 'an unknown top-level key', document: { sede: 1 }, key: 'sede', says: 'unknown key' },
    { name: 'a seed that is not an integer', document: { seed: 1.5 }, key: 'seed', says: 'integer' },
    { name: 'a function without a handler', document: { functions: { w: {} } }, key: 'functions.w.handler', says: 'is required' },
    {
      name: 'a bad function name',
      document: { functions: { 'no spaces': { handler: 'x.ts' } } },
      key: 'functions.no spaces',
      says: '1 to 64',
    },
    {
      name: 'a timeout above 900 s',
      document: { functions: { w: { handler: 'x.ts', timeoutSeconds: 901 } } },
      key: 'functions.w.timeoutSeconds',
      says: 'from 1 to 900',
    },
    { name: 'a timeout of 0', document: { defaults: { timeoutSeconds: 0 } }, key: 'defaults.timeoutSeconds', says: 'from 1 to 900' },
    {
      name: 'a rate above 1',
      document: { functions: { w: { handler: 'x.ts', async: { dropRate: 1.5 } } } },
      key: 'functions.w.async.dropRate',
      says: 'from 0 to 1',
    },
    {
      name: 'a negative rate',
      document: { defaults: { async: { crashRate: -0.1 } } },
      key: 'defaults.async.crashRate',
      says: 'from 0 to 1',
    },
    {
      name: 'three retries',
      document: { defaults: { async: { maximumRetryAttempts: 3 } } },
      key: 'defaults.async.maximumRetryAttempts',
      says: '0, 1 or 2',
    },
    {
      name: 'one retry delay',
      document: { defaults: { async: { retryDelaysMs: [1] } } },
      key: 'defaults.async.retryDelaysMs',
      says: 'two delays',
    },
    {
      name: 'an event age of 0',
      document: { defaults: { async: { maximumEventAgeSeconds: 0 } } },
      key: 'defaults.async.maximumEventAgeSeconds',
      says: 'above 0 to 21600',
    },
    {
      name: 'an event age above 6 hours',
      document: { defaults: { async: { maximumEventAgeSeconds: 21_601 } } },
      key: 'defaults.async.maximumEventAgeSeconds',
      says: 'above 0 to 21600',
    },
    {
      name: 'a delay range upside down',
      document: { defaults: { async: { startDelayMs: { min: 5, max: 1 } } } },
      key: 'defaults.async.startDelayMs',
      says: 'must not be below min',
    },
    {
      name: 'an unknown key in a delay range',
      document: { defaults: { async: { crashAfterMs: { min: 1, max: 2, avg: 1 } } } },
      key: 'defaults.async.crashAfterMs.avg',
      says: 'unknown key',
    },
    { name: 'an unknown state', document: { defaults: { state: 'Inactive' } }, key: 'defaults.state', says: 'Active, Pending, Failed' },
    {
      name: 'a reserved environment variable',
      document: { defaults: { environment: { AWS_REGION: 'x' } } },
      key: 'defaults.environment.AWS_REGION',
      says: 'reserved',
    },
    {
      name: 'an environment value that is a map',
      document: { defaults: { environment: { A: { b: 1 } } } },
      key: 'defaults.environment.A',
      says: 'must be a string',
    },
    {
      name: 'a handler export that is no identifier',
      document: { functions: { w: { handler: 'x.ts#not-valid' } } },
      key: 'functions.w.handler',
      says: 'not a JavaScript identifier',
    },
    { name: 'an account id that is a number', document: { accountId: 123456789012 }, key: 'accountId', says: '12 digits' },
  ];
  for (const { name, document, key, says } of rejected) {
    it(`rejects ${name}, naming the key`, () => {
      const error = errorOf(() => parseLambdaConfig(document, '/base'));
      expect(error.key).to.equal(key);
      expect(error.message).to.contain(key).and.contain(says);
    });
  }

  it('allows a sub-minute event age for tests, below the AWS minimum of 60 s', () => {
    const config = parseLambdaConfig({ functions: { w: { handler: 'x.ts', async: { maximumEventAgeSeconds: 0.5 } } } }, '/base');
    expect(config.functions[0]?.async.maximumEventAgeSeconds).to.equal(0.5);
  });

  it('accepts the example file of docs/lambda-runtime.md', () => {
    const docs = readFileSync(fileURLToPath(new URL('../../docs/lambda-runtime.md', import.meta.url)), 'utf8');
    const example = /```yaml\n([\s\S]*?)```/.exec(docs)?.[1];
    expect(example, 'a yaml block in the docs').to.be.a('string');
    const config = parseLambdaConfig(parseYaml(example ?? ''), '/repo');
    expect(config.functions.map((fn) => fn.name)).to.deep.equal(['worker', 'probe']);
    expect(config.functions[0]?.environment).to.deep.equal({
      DATABASE_URL: 'postgres://ltp@127.0.0.1:5432/ltp',
      TASKS_PER_INVOCATION: '3',
    });
    expect(config.functions[1]).to.include({ handler: '/repo/examples/probe.ts#handler', timeoutSeconds: 5, state: 'Pending' });
  });

  it('reads an empty file as no functions', () => {
    expect(parseLambdaConfig(null, '/base')).to.deep.equal({ functions: [] });
  });

  it('validates settings passed from code the same way as from YAML', () => {
    const error = errorOf(() => resolveFunctionConfig({ name: 'w', handler: 'x.ts', async: { duplicateRate: 2 } }, { keyPrefix: 'w' }));
    expect(error.message).to.equal('w.async.duplicateRate: must be a number from 0 to 1 (got 2)');
  });

  describe('parseFunctionFlag', () => {
    it('splits NAME=PATH and keeps an #export', () => {
      expect(parseFunctionFlag('worker=./src/worker.ts#main')).to.deep.equal({ name: 'worker', handler: './src/worker.ts#main' });
      expect(parseFunctionFlag('w=a=b.ts')).to.deep.equal({ name: 'w', handler: 'a=b.ts' });
    });

    const bad: Array<[string, string]> = [
      ['worker', 'expected NAME=PATH[#export]'],
      ['=./w.ts', '--function NAME'],
      ['my worker=./w.ts', '--function NAME'],
      ['worker=', 'needs a module path'],
      ['worker=#handler', 'needs a module path'],
      ['worker=./w.ts#1st', 'not a JavaScript identifier'],
    ];
    for (const [flag, says] of bad) {
      it(`rejects ${JSON.stringify(flag)} with a clear error`, () => {
        expect(errorOf(() => parseFunctionFlag(flag)).message).to.contain(says);
      });
    }
  });
});
