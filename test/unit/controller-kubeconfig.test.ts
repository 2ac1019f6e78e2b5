import { expect } from 'chai';
import { defaultKubeconfigSource, kubeconfigList } from '../../src/controller/kubeconfig.ts';

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
