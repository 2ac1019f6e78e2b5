import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { defaultKubeconfigSource, kubeconfigList, loadKubeconfigInto } from '../../src/controller/kubeconfig.ts';

describe('defaultKubeconfigSource: the kubeconfig loadFromDefault would use, in its order', () => {
  const token = '/var/run/secrets/kubernetes.io/serviceaccount/token';
  const rows: Array<[why: string, env: NodeJS.ProcessEnv, files: string[], expected: string | undefined]> = [
    ['KUBECONFIG first', { KUBECONFIG: '/k', HOME: '/h' }, ['/h/.kube/config', token], 'KUBECONFIG'],
    ['then ~/.kube/config', { HOME: '/h' }, ['/h/.kube/config', token], '~/.kube/config'],
    ['then the in-cluster service account', { HOME: '/h' }, [token], 'in-cluster'],
    ['none of them: nothing (not a made-up localhost:8080)', { HOME: '/h' }, [], undefined],
  ];
  for (const [why, env, files, expected] of rows) {
    it(why, () => {
      expect(defaultKubeconfigSource(env, (f) => files.includes(f), 'linux')).to.equal(expected);
    });
  }
});

describe('kubeconfigList: the files of KUBECONFIG, as kubectl reads them', () => {
  const kinds: Record<string, 'file' | 'other'> = {
    '/home/me/.kube/config': 'file',
    '/home/me/.kube/extra': 'file',
    '/home/me/.kube': 'other',
  };
  const kind = (file: string) => kinds[file] ?? 'missing';
  const rows: Array<[why: string, value: string, expected: { files: string[] } | { problem: string }]> = [
    ['every file, in order', '/home/me/.kube/extra:/home/me/.kube/config', { files: ['/home/me/.kube/extra', '/home/me/.kube/config'] }],
    ['a file that does not exist is skipped', '/home/me/.kube/config:/home/me/.kube/new', { files: ['/home/me/.kube/config'] }],
    ['empty entries are skipped', ':/home/me/.kube/config:', { files: ['/home/me/.kube/config'] }],
    ['none that exists is an error that names them', '/a:/b', { problem: 'KUBECONFIG names no kubeconfig that exists (/a, /b)' }],
    [
      'a directory is an error, not a bare EISDIR',
      '/home/me/.kube:/home/me/.kube/config',
      { problem: 'KUBECONFIG names /home/me/.kube, which is not a file' },
    ],
  ];
  for (const [why, value, expected] of rows) {
    it(why, () => {
      expect(kubeconfigList(value, kind)).to.deep.equal(expected);
    });
  }
});

describe('loadKubeconfigInto: a KUBECONFIG list merged as kubectl merges it', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'kubeconfig-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const config = (name: string, server: string, token: string) => `apiVersion: v1
kind: Config
current-context: ${name}
clusters: [{ name: ${name}, cluster: { server: ${server} } }]
users: [{ name: admin, user: { token: ${token} } }]
contexts: [{ name: ${name}, context: { cluster: ${name}, user: admin } }]
`;

  it('takes the first current-context and the first of a name two files share', async () => {
    const prod = path.join(dir, 'prod.yaml');
    const staging = path.join(dir, 'staging.yaml');
    await writeFile(prod, config('prod', 'https://prod.example:6443', 'prod-token'));
    await writeFile(staging, config('staging', 'https://staging.example:6443', 'staging-token'));
    const kc = new KubeConfig();
    loadKubeconfigInto(kc, undefined, () => new KubeConfig(), {
      KUBECONFIG: `${prod}${path.delimiter}/no/such/file${path.delimiter}${staging}`,
    });
    expect(kc.getCurrentContext()).to.equal('prod');
    expect(kc.getCurrentCluster()?.server).to.equal('https://prod.example:6443');
    expect(kc.getCurrentUser()?.token, 'the user both files name: the first one').to.equal('prod-token');
    expect(kc.getContexts().map((c) => c.name)).to.deep.equal(['prod', 'staging']);
  });
});
