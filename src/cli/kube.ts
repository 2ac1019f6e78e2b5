// The Kubernetes side of the CLI: LambdaTaskPool resources read with @kubernetes/client-node, from the
// kubeconfig kubectl would use. The client library is loaded only when a command needs it.
import type { ConfigurationOptions } from '@kubernetes/client-node';
import { GROUP, KIND, PLURAL, VERSION } from '../api/types.ts';
import { UsageError } from './command.ts';
import { loadKubeconfigInto, missingKubeconfig } from '../controller/kubeconfig.ts';

export interface KubeTarget {
  kubeconfig?: string;
  context?: string;
}

export interface PoolReader {
  /** The namespace of the kubeconfig's current context, else "default" (as kubectl). */
  defaultNamespace: string;
  /** The server, to name in messages. */
  server: string;
  list(namespace: string | undefined): Promise<unknown[]>;
  /** The pool, or undefined when there is none by that name. */
  get(namespace: string, name: string): Promise<unknown>;
}

const DEADLINE_MS = 15_000;

export async function poolReader(target: KubeTarget): Promise<PoolReader> {
  const { ApiException, CustomObjectsApi, KubeConfig, Observable } = await import('./kube-client.js');
  const missing = missingKubeconfig(target.kubeconfig);
  if (missing) throw new UsageError(missing);
  const kc = new KubeConfig();
  try {
    loadKubeconfigInto(kc, target.kubeconfig, () => new KubeConfig());
  } catch (error) {
    throw new UsageError(`cannot read the kubeconfig${target.kubeconfig ? ` ${target.kubeconfig}` : ''}: ${messageOf(error)}`);
  }
  if (target.context) {
    if (!kc.getContextObject(target.context)) throw new UsageError(`the kubeconfig has no context named ${JSON.stringify(target.context)}`);
    kc.setCurrentContext(target.context);
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new UsageError('the kubeconfig names no cluster: pass --kubeconfig, set KUBECONFIG, or run inside a cluster');
  const api = kc.makeApiClient(CustomObjectsApi);
  const server = cluster.server;
  // Every call gives up after the deadline: a server that accepts the connection and never answers must not hang the CLI.
  const options = (): ConfigurationOptions => ({
    middleware: [
      {
        pre: (context) => {
          context.setSignal(AbortSignal.timeout(DEADLINE_MS));
          return new Observable(Promise.resolve(context));
        },
        post: (response) => new Observable(Promise.resolve(response)),
      },
    ],
    middlewareMergeStrategy: 'append',
  });

  const explain = (error: unknown, what: string): Error => {
    if (error instanceof ApiException) {
      if (error.code === 404) {
        return new Error(`${what}: the API server at ${server} does not serve ${PLURAL}.${GROUP}: is the ${KIND} CRD installed (crds/)?`);
      }
      if (error.code === 401 || error.code === 403) {
        return new Error(`${what}: the API server at ${server} refused (HTTP ${error.code}): the kubeconfig's user may not read ${PLURAL}`);
      }
      return new Error(`${what}: the API server at ${server} answered HTTP ${error.code}`);
    }
    return new Error(`${what}: cannot reach the API server at ${server}: ${messageOf(error)}`);
  };

  const reader: PoolReader = {
    defaultNamespace: kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default',
    server,
    async list(namespace) {
      try {
        const body: unknown = namespace
          ? await api.listNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace }, options())
          : await api.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL }, options());
        return typeof body === 'object' && body !== null && 'items' in body && Array.isArray(body.items) ? body.items : [];
      } catch (error) {
        throw explain(error, `cannot list ${PLURAL}${namespace ? ` in ${namespace}` : ''}`);
      }
    },
    async get(namespace, name) {
      try {
        const body: unknown = await api.getNamespacedCustomObject(
          { group: GROUP, version: VERSION, plural: PLURAL, namespace, name },
          options(),
        );
        return body;
      } catch (error) {
        if (error instanceof ApiException && error.code === 404) {
          // A missing pool, or a missing CRD: the list tells which.
          await reader.list(namespace);
          return undefined;
        }
        throw explain(error, `cannot read ${KIND} ${namespace}/${name}`);
      }
    },
  };
  return reader;
}

function messageOf(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
    return `${error.message}${cause}`;
  }
  return String(error);
}
