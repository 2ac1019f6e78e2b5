// Where a kubeconfig comes from when none is named, in the order @kubernetes/client-node's loadFromDefault
// looks: KUBECONFIG, ~/.kube/config, then the in-cluster service account. When it finds none it quietly
// falls back to a cluster at http://localhost:8080, whose only effect is a confusing connection error (or,
// in the controller, a watch failing for ever): the CLI says so instead.
import { existsSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/** The kubeconfig loadFromDefault would use, or undefined when there is none. */
export function defaultKubeconfigSource(
  env: NodeJS.ProcessEnv = process.env,
  exists: (file: string) => boolean = existsSync,
  platform: NodeJS.Platform = process.platform,
): 'KUBECONFIG' | '~/.kube/config' | 'in-cluster' | 'elsewhere' | undefined {
  if (env.KUBECONFIG) return 'KUBECONFIG';
  if (exists(path.join(env.HOME ?? os.homedir(), '.kube', 'config'))) return '~/.kube/config';
  // On Windows the library also asks WSL for a kubeconfig: leave that to it.
  if (platform === 'win32') return 'elsewhere';
  if (exists(SERVICE_ACCOUNT_TOKEN)) return 'in-cluster';
  return undefined;
}

/** Why no kubeconfig can be used (a message for a UsageError), or undefined when one can. */
export function missingKubeconfig(named: string | undefined): string | undefined {
  if (named !== undefined) {
    if (!existsSync(named)) return `the kubeconfig ${named} does not exist`;
    return statSync(named).isFile() ? undefined : `the kubeconfig ${named} is not a file`;
  }
  if (defaultKubeconfigSource()) return undefined;
  return 'no kubeconfig found: pass --kubeconfig, set KUBECONFIG, create ~/.kube/config, or run inside a cluster';
}
