import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { localFunctions, withFunctionFlags } from '../../dev/src/local-functions.ts';
import { LambdaConfigError } from '../../dev/src/lambda-runtime/index.ts';

describe('local stack functions (--function with --lambda-config)', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'local-functions-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('gives a function its handler from the flag and every other setting from the file', async () => {
    const file = path.join(dir, 'only-options.yaml');
    await writeFile(
      file,
      [
        'seed: 9',
        'defaults:',
        '  memoryMb: 256',
        'functions:',
        '  my-worker:',
        '    timeoutSeconds: 30',
        '    environment: { MODE: fast }',
        '    async: { maximumRetryAttempts: 0 }',
      ].join('\n'),
    );
    const config = await localFunctions({ file, flags: ['my-worker=workers/my.ts#run'], cwd: dir });
    expect(config.seed).to.equal(9);
    expect(config.functions).to.have.length(1);
    expect(config.functions[0]).to.include({
      name: 'my-worker',
      handler: `${path.join(dir, 'workers', 'my.ts')}#run`,
      timeoutSeconds: 30,
      memoryMb: 256,
    });
    expect(config.functions[0]?.environment).to.deep.equal({ MODE: 'fast' });
    expect(config.functions[0]?.async.maximumRetryAttempts).to.equal(0);
  });

  it("replaces the file's handler with the flag's, and adds flag-only functions with the file's defaults", async () => {
    const file = path.join(dir, 'with-handler.yaml');
    await writeFile(
      file,
      ['defaults: { timeoutSeconds: 45 }', 'functions:', '  a: { handler: ./a.ts }', '  b: { handler: ./b.ts }'].join('\n'),
    );
    const config = await localFunctions({ file, flags: ['a=/elsewhere/a2.ts', 'c=c.ts#go'], cwd: dir });
    const byName = Object.fromEntries(config.functions.map((f) => [f.name, f]));
    expect(byName.a?.handler).to.equal('/elsewhere/a2.ts#handler');
    expect(byName.b?.handler).to.equal(`${path.join(dir, 'b.ts')}#handler`);
    expect(byName.c).to.include({ handler: `${path.join(dir, 'c.ts')}#go`, timeoutSeconds: 45 });
  });

  it('still refuses a function that neither the file nor a flag gives a handler, naming the file and the key', async () => {
    const file = path.join(dir, 'no-handler.yaml');
    await writeFile(file, ['functions:', '  lonely: { timeoutSeconds: 30 }'].join('\n'));
    const error = await localFunctions({ file, flags: ['other=o.ts'], cwd: dir }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).to.be.instanceOf(LambdaConfigError);
    expect(String(error)).to.include('no-handler.yaml').and.include('functions.lonely.handler: is required');
  });

  it('registers flag functions alone when there is no file', async () => {
    const config = await localFunctions({ flags: ['w=w.ts'], cwd: dir });
    expect(config.functions.map((f) => [f.name, f.handler])).to.deep.equal([['w', `${path.join(dir, 'w.ts')}#handler`]]);
  });

  it('leaves a document of the wrong shape for the parser to name', () => {
    expect(withFunctionFlags({ functions: ['x'] }, ['w=w.ts'], dir)).to.deep.equal({ functions: ['x'] });
  });
});
