// Everything the controller asks of the Kubernetes API, through @kubernetes/client-node.
import {
  ApiException,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  ListWatch,
  Observable,
  PatchStrategy,
  Watch,
  setHeaderOptions,
  type Informer,
  type KubernetesListObject,
  type KubernetesObject,
  type ObjectCache,
  type ObservableMiddleware,
  type ConfigurationOptions,
} from '@kubernetes/client-node';
import type https from 'node:https';
import { Agent, type Dispatcher } from 'undici';
import { GROUP, PLURAL, VERSION, type PoolStatus } from '../api/types.ts';
import { loadKubeconfigInto } from './kubeconfig.ts';

export type PoolObject = KubernetesObject & { spec?: unknown; status?: unknown };
export type PoolInformer = Informer<PoolObject> & ObjectCache<PoolObject>;

/**
 * client-node's Watch, except that a watch request it cannot even make (its credentials refused: an exec
 * credential plugin that fails, as `aws eks get-token` does while STS is unreachable; a token file that cannot
 * be read) is reported through `done`, as a failed request is, and reaches the informer's error handlers
 * (watch-restart.ts). client-node gets the credentials before its own try, so its watch() rejected instead; and
 * ListWatch's own reconnects (after a clean close, a 410, or the watch's 30 s idle timeout) drop that promise:
 * the unhandled rejection ended the controller 31 s after an exec plugin began failing, then again on every
 * restart for as long as it failed.
 */
export class ReportingWatch extends Watch {
  override async watch(...[path, query, onEvent, done]: Parameters<Watch['watch']>): Promise<AbortController> {
    try {
      return await super.watch(path, query, onEvent, done);
    } catch (error) {
      // Thrown only before the request went out: done has not been called.
      done(error);
      return new AbortController();
    }
  }
}

export function loadKubeConfig(kubeconfigPath?: string): KubeConfig {
  const kc = new KubeConfig();
  loadKubeconfigInto(kc, kubeconfigPath, () => new KubeConfig());
  return kc;
}

/** The HTTP status of a failed API call, if it was one. */
export function apiStatus(error: unknown): number | undefined {
  if (error instanceof ApiException) return error.code;
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'number') return error.code;
  return undefined;
}

/**
 * What a failed list or watch of pools most likely means, for the log line: the usual causes of a 401/403
 * and a 404 are a missing RBAC rule and a missing CRD, which a bare "HTTP-Code: 403" does not say.
 */
export function watchFailureHint(error: unknown): string | undefined {
  const status = apiStatus(error);
  if (status === 401 || status === 403) {
    return `the controller's identity may not list and watch ${PLURAL}.${GROUP} here: check its ServiceAccount's RBAC (the chart's rbac.yaml)`;
  }
  if (status === 404)
    return `the ${PLURAL}.${GROUP} CRD is not installed: apply crds/${PLURAL}.yaml (or install the chart with crds.enabled=true)`;
  return undefined;
}

/** Every call the controller makes gives up after this long: a frozen API server must not hold a pass forever. */
export const API_CALL_DEADLINE_MS = 10_000;

/** Per-request options: give up after `ms`, and send the request over `dispatcher` when there is one. */
export type RequestOptions = (ms?: number, base?: ConfigurationOptions) => ConfigurationOptions;

/**
 * Request options that abort the call after `ms` and, when given, send it over one shared connection pool.
 * (The client library builds a new undici Agent, and so a new TLS connection, for every request; at a
 * thousand pools that costs a handshake per call and hundreds of MB of idle sessions. The shared one
 * carries the same TLS settings, read once from the kubeconfig.)
 */
export function requestOptions(dispatcher?: Promise<Dispatcher | undefined>): RequestOptions {
  return (ms = API_CALL_DEADLINE_MS, base?: ConfigurationOptions) => {
    const middleware: ObservableMiddleware = {
      pre: (context) =>
        new Observable(
          (dispatcher ?? Promise.resolve(undefined)).then((shared) => {
            if (shared) context.setDispatcher(shared);
            context.setSignal(AbortSignal.timeout(ms));
            return context;
          }),
        ),
      post: (response) => new Observable(Promise.resolve(response)),
    };
    return { ...base, middleware: [...(base?.middleware ?? []), middleware], middlewareMergeStrategy: 'append' };
  };
}

/** One keep-alive connection pool to the API server, with the kubeconfig's TLS settings; none behind a proxy. */
async function sharedDispatcher(kc: KubeConfig): Promise<Dispatcher | undefined> {
  const cluster = kc.getCurrentCluster();
  if (!cluster || cluster.proxyUrl || !cluster.server.startsWith('https:')) return undefined;
  const opts: https.RequestOptions = {};
  await kc.applyToHTTPSOptions(opts);
  const tls = {
    ...(opts.ca !== undefined ? { ca: opts.ca } : {}),
    ...(opts.cert !== undefined ? { cert: opts.cert } : {}),
    ...(opts.key !== undefined ? { key: opts.key } : {}),
    ...(opts.pfx !== undefined ? { pfx: opts.pfx } : {}),
    ...(opts.passphrase !== undefined ? { passphrase: opts.passphrase } : {}),
    ...(opts.rejectUnauthorized !== undefined ? { rejectUnauthorized: opts.rejectUnauthorized } : {}),
    ...(opts.servername !== undefined ? { servername: opts.servername } : {}),
  };
  return new Agent({ connect: { ...tls, keepAlive: true, keepAliveInitialDelay: 30_000 } });
}

const MERGE_PATCH = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

export interface SecretValue {
  found: boolean;
  value?: string;
}

export class KubeApi {
  readonly custom: CustomObjectsApi;
  readonly core: CoreV1Api;
  readonly coordination: CoordinationV1Api;
  /** Options for every request: a deadline, and the shared connection pool. */
  readonly options: RequestOptions;
  private readonly dispatcher: Promise<Dispatcher | undefined>;

  constructor(readonly kc: KubeConfig) {
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.core = kc.makeApiClient(CoreV1Api);
    this.coordination = kc.makeApiClient(CoordinationV1Api);
    this.dispatcher = sharedDispatcher(kc).catch(() => undefined);
    this.options = requestOptions(this.dispatcher);
  }

  /** Closes the shared connections. */
  async close(): Promise<void> {
    await (await this.dispatcher)?.close().catch(() => undefined);
  }

  /**
   * One informer per watched namespace, or one for the whole cluster. Its cache keeps each pool without
   * metadata.managedFields (see slimPool), as client-go's informers do with a transform.
   */
  poolInformers(namespaces: readonly string[], onListed?: (informerIndex: number) => void): PoolInformer[] {
    const list = (index: number, namespace?: string) => async (): Promise<KubernetesListObject<PoolObject>> => {
      const body: unknown = namespace
        ? await this.custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace }, this.options(30_000))
        : await this.custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL }, this.options(30_000));
      const items = toList(body);
      items.items.forEach(slimPool);
      onListed?.(index);
      return items;
    };
    // makeInformer, with a watch that reports a request it cannot make (ReportingWatch).
    const informer = (path: string, listFn: () => Promise<KubernetesListObject<PoolObject>>): PoolInformer =>
      new ListWatch<PoolObject>(path, new ReportingWatch(this.kc), listFn, false);
    const informers =
      namespaces.length === 0
        ? [informer(`/apis/${GROUP}/${VERSION}/${PLURAL}`, list(0))]
        : namespaces.map((ns, i) => informer(`/apis/${GROUP}/${VERSION}/namespaces/${ns}/${PLURAL}`, list(i, ns)));
    // The first handlers, so every other handler sees the slim object: a watch event's object is the one cached.
    for (const informer of informers) {
      informer.on('add', slimPool);
      informer.on('update', slimPool);
    }
    return informers;
  }

  async getPool(namespace: string, name: string): Promise<PoolObject | undefined> {
    try {
      const body: unknown = await this.custom.getNamespacedCustomObject(
        { group: GROUP, version: VERSION, plural: PLURAL, namespace, name },
        this.options(),
      );
      return isKubeObject(body) ? body : undefined;
    } catch (error) {
      if (apiStatus(error) === 404) return undefined;
      throw error;
    }
  }

  /**
   * Whether the pool is gone: no object by that name, or one with another uid (deleted and created again).
   * Undefined when the API server cannot say (no access to the namespace, or it is unreachable).
   */
  async poolGone(pool: { namespace: string; name: string; uid: string }): Promise<boolean | undefined> {
    try {
      const current = await this.getPool(pool.namespace, pool.name);
      return current === undefined || current.metadata?.uid !== pool.uid;
    } catch {
      return undefined;
    }
  }

  async patchStatus(namespace: string, name: string, status: PoolStatus): Promise<void> {
    await this.custom.patchNamespacedCustomObjectStatus(
      { group: GROUP, version: VERSION, plural: PLURAL, namespace, name, body: { status } },
      this.options(API_CALL_DEADLINE_MS, MERGE_PATCH),
    );
  }

  /** Sets the finalizers with a merge patch guarded by resourceVersion, so a concurrent change is not lost. */
  async setFinalizers(namespace: string, name: string, finalizers: string[], resourceVersion?: string): Promise<void> {
    await this.custom.patchNamespacedCustomObject(
      {
        group: GROUP,
        version: VERSION,
        plural: PLURAL,
        namespace,
        name,
        body: { metadata: { finalizers, ...(resourceVersion ? { resourceVersion } : {}) } },
      },
      this.options(API_CALL_DEADLINE_MS, MERGE_PATCH),
    );
  }

  /** Reads one key of a Secret in the pool's own namespace. The value never leaves the caller's hands. */
  async readSecretKey(namespace: string, name: string, key: string): Promise<SecretValue> {
    try {
      const secret = await this.core.readNamespacedSecret({ namespace, name }, this.options());
      const data = secret.data ?? {};
      const encoded = data[key];
      return { found: true, value: encoded === undefined ? undefined : Buffer.from(encoded, 'base64').toString('utf8') };
    } catch (error) {
      if (apiStatus(error) === 404) return { found: false };
      throw error;
    }
  }
}

/**
 * Drops metadata.managedFields from a pool object, in place: the API server's field-ownership records, which
 * the controller never reads and which grow with every manager that writes the object (about a third of a
 * pool object with status). At 10,000 pools that is tens of MB of the informer cache.
 */
export function slimPool(obj: PoolObject): void {
  if (obj.metadata && 'managedFields' in obj.metadata) delete obj.metadata.managedFields;
}

function isKubeObject(value: unknown): value is PoolObject {
  return typeof value === 'object' && value !== null && 'metadata' in value;
}

function toList(body: unknown): KubernetesListObject<PoolObject> {
  if (typeof body !== 'object' || body === null || !('items' in body) || !Array.isArray(body.items)) {
    throw new Error('the API server answered a list request without items');
  }
  const metadata = 'metadata' in body && typeof body.metadata === 'object' && body.metadata !== null ? body.metadata : {};
  return { apiVersion: `${GROUP}/${VERSION}`, kind: 'LambdaTaskPoolList', metadata, items: body.items.filter(isKubeObject) };
}
