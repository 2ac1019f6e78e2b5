// Helpers shared by benchmarks.
import { CustomObjectsApi } from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION } from '../src/api/types.ts';
import { loadKubeConfig } from '../src/controller/kube.ts';
import type { LocalStack } from '../dev/src/stack.ts';

export async function kubectlApply(
  stack: LocalStack,
  pool: {
    name: string;
    queue: string;
    maxConcurrency: number;
    tasksPerInvocation: number;
    startTimeoutSeconds: number;
    functionName?: string;
  },
): Promise<void> {
  const api = loadKubeConfig(stack.kubeconfigPath).makeApiClient(CustomObjectsApi);
  await api.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    plural: PLURAL,
    namespace: 'default',
    body: {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'LambdaTaskPool',
      metadata: { name: pool.name },
      spec: {
        function: { name: pool.functionName ?? 'bench-noop' },
        queue: pool.queue,
        maxConcurrency: pool.maxConcurrency,
        tasksPerInvocation: pool.tasksPerInvocation,
        startTimeoutSeconds: pool.startTimeoutSeconds,
      },
    },
  });
}
