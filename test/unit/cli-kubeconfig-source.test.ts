import { expect } from 'chai';
import { defaultKubeconfigSource } from '../../src/cli/kubeconfig-source.ts';

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
