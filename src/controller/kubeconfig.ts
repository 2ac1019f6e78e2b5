// Where the CLI's and the controller's kubeconfig comes from when none is named, in the order kubectl and
// @kubernetes/client-node's loadFromDefault look: KUBECONFIG, ~/.kube/config, then the in-cluster service
// account. When the library finds none it quietly falls back to a cluster at http://localhost:8080, whose only
// effect is a confusing connection error (or, in the controller, a watch failing for ever): we say so instead.
import { existsSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';

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

type FileKind = 'file' | 'other' | 'missing';

function kindOf(file: string): FileKind {
  if (!existsSync(file)) return 'missing';
  return statSync(file).isFile() ? 'file' : 'other';
}

/**
 * The files of a KUBECONFIG list, read as kubectl reads it: a file that does not exist is skipped (so that
 * KUBECONFIG=~/.kube/config:~/.kube/extra works before extra is made), one that is not a file is an error,
 * and a list with no file at all is one too. client-node's loadFromDefault failed on the first missing file.
 */
export function kubeconfigList(value: string, kind: (file: string) => FileKind = kindOf): { files: string[] } | { problem: string } {
  const named = value.split(path.delimiter).filter((file) => file !== '');
  const kinds = named.map((file) => ({ file, kind: kind(file) }));
  const notFiles = kinds.filter((k) => k.kind === 'other').map((k) => k.file);
  if (notFiles.length > 0) return { problem: `KUBECONFIG names ${notFiles.join(', ')}, which is not a file` };
  const files = kinds.filter((k) => k.kind === 'file').map((k) => k.file);
  if (files.length === 0) return { problem: `KUBECONFIG names no kubeconfig that exists (${named.join(', ')})` };
  return { files };
}

/** Why no kubeconfig can be used (a message for a UsageError), or undefined when one can. */
export function missingKubeconfig(named: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (named !== undefined) {
    if (!existsSync(named)) return `the kubeconfig ${named} does not exist`;
    return statSync(named).isFile() ? undefined : `the kubeconfig ${named} is not a file`;
  }
  if (env.KUBECONFIG) {
    const list = kubeconfigList(env.KUBECONFIG);
    return 'problem' in list ? list.problem : undefined;
  }
  if (defaultKubeconfigSource(env)) return undefined;
  return 'no kubeconfig found: pass --kubeconfig, set KUBECONFIG, create ~/.kube/config, or run inside a cluster';
}

/**
 * Loads the kubeconfig named, else the one kubectl would use: KUBECONFIG's files that exist, merged as
 * kubectl merges them (mergeFirstWins), else client-node's defaults (~/.kube/config, in-cluster).
 */
export function loadKubeconfigInto(
  kc: KubeConfig,
  named: string | undefined,
  make: () => KubeConfig,
  env: NodeJS.ProcessEnv = process.env,
): void {
  if (named) return kc.loadFromFile(named);
  const list = env.KUBECONFIG ? kubeconfigList(env.KUBECONFIG) : undefined;
  if (!list || 'problem' in list) return kc.loadFromDefault();
  const [first, ...rest] = list.files;
  kc.loadFromFile(first as string);
  for (const file of rest) {
    const more = make();
    more.loadFromFile(file);
    mergeFirstWins(kc, more);
  }
}

/**
 * kubectl's merge of a KUBECONFIG list: the first file to name a cluster, user or context wins, and so does
 * the first current-context. client-node's mergeConfig took the last current-context (the CLI then spoke to
 * another cluster than kubectl) and threw on a name two files share.
 */
function mergeFirstWins(kc: KubeConfig, more: KubeConfig): void {
  if (!kc.getCurrentContext() && more.getCurrentContext()) kc.setCurrentContext(more.getCurrentContext());
  for (const cluster of more.getClusters()) if (!kc.getCluster(cluster.name)) kc.addCluster(cluster);
  for (const user of more.getUsers()) if (!kc.getUser(user.name)) kc.addUser(user);
  for (const context of more.getContexts()) if (!kc.getContextObject(context.name)) kc.addContext(context);
}
