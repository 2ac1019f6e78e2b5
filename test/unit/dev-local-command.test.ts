import { expect } from 'chai';
import { readyMessage } from '../../dev/src/local-command.ts';

type Stack = Parameters<typeof readyMessage>[0];

function stack(over: Partial<Stack> = {}): Stack {
  return {
    controlPlane: { version: 'v1.34.4', server: 'https://127.0.0.1:6443' } as Stack['controlPlane'],
    postgres: { version: '15.14', engine: 'debian' } as Stack['postgres'],
    lambda: { endpoint: 'http://127.0.0.1:9001' } as Stack['lambda'],
    controller: { healthPort: 8081 } as Stack['controller'],
    envPath: '/repo/.local/env',
    functionNames: ['thumbnail-worker'],
    keptData: false,
    postgresDataDir: '/repo/.local/postgres',
    ...over,
  };
}

describe('local up: what it prints when ready', () => {
  it('says where everything runs, then the commands to run next: source the env, apply the example, enqueue, watch', () => {
    const lines = readyMessage(stack(), { cwd: '/repo' }).split('\n');
    expect(lines[0]).to.equal(
      'local stack ready: kube-apiserver v1.34.4 at https://127.0.0.1:6443, postgres 15.14 (debian), lambda runtime at http://127.0.0.1:9001, controller metrics on 127.0.0.1:8081',
    );
    const next = lines.slice(lines.indexOf('Next, in another shell:') + 1).map((l) => l.trim().split(/\s+#/)[0]?.trim());
    expect(next.slice(0, 4)).to.deep.equal([
      'source .local/env',
      'kubectl apply -f examples/pool.yaml',
      `npm run cli -- enqueue --queue thumbnails --count 30 --payload '{"ms":1500}'`,
      'kubectl get ltp -w',
    ]);
    expect(lines.at(-1)).to.equal('Press Ctrl-C to stop everything.');
  });

  it('names the env file by its full path outside the current directory, the kept data, and the controller to start', () => {
    const text = readyMessage(stack({ controller: undefined, keptData: true, functionNames: ['my-worker'] }), { cwd: '/elsewhere' });
    expect(text).to.include('source /repo/.local/env');
    expect(text).to.include('postgres data: /repo/.local/postgres (kept');
    expect(text).to.include('no controller');
    expect(text).to.include('npm run cli -- controller');
    expect(text).to.include('spec.function.name: my-worker');
  });
});
