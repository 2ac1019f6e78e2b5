// Installs the LambdaTaskPool CRD from crds/lambdataskpools.yaml and waits until it is Established.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ApiextensionsV1Api, CustomObjectsApi, loadYaml, type KubeConfig, type V1CustomResourceDefinition } from '@kubernetes/client-node';
import { apiStatus } from '../../src/controller/kube.ts';
import { REPO_ROOT } from './binaries.ts';

export const CRD_FILE = path.join(REPO_ROOT, 'crds', 'lambdataskpools.yaml');

export async function installCrd(kc: KubeConfig, timeoutMs = 30_000): Promise<void> {
  // loadYaml maps the file onto the client's model (`default` -> `_default`, ...); a plain YAML parse would
  // have the client drop every default and CEL rule on the way out.
  const crd = loadYaml<V1CustomResourceDefinition>(await readFile(CRD_FILE, 'utf8'));
  const name = crd.metadata?.name;
  if (!name) throw new Error(`${CRD_FILE} has no metadata.name`);
  const api = kc.makeApiClient(ApiextensionsV1Api);
  try {
    await api.createCustomResourceDefinition({ body: crd });
  } catch (error) {
    if (apiStatus(error) !== 409) throw error;
    const existing = await api.readCustomResourceDefinition({ name });
    crd.metadata = { ...crd.metadata, resourceVersion: existing.metadata?.resourceVersion };
    await api.replaceCustomResourceDefinition({ name, body: crd });
  }
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const current = await api.readCustomResourceDefinition({ name });
    const established = current.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
    if (established && (await servesList(kc, crd))) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the CRD ${name} was not Established within ${timeoutMs} ms`);
}

/** Right after Established the API server may still answer 429 while its storage initialises. */
async function servesList(kc: KubeConfig, crd: V1CustomResourceDefinition): Promise<boolean> {
  const version = crd.spec.versions.find((v) => v.storage)?.name ?? crd.spec.versions[0]?.name ?? 'v1';
  try {
    await kc.makeApiClient(CustomObjectsApi).listClusterCustomObject({ group: crd.spec.group, version, plural: crd.spec.names.plural });
    return true;
  } catch {
    return false;
  }
}
