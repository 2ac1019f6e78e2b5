// One real kube-apiserver + etcd per test run, started on first use, with the CRD installed.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startControlPlane, type ControlPlane } from '../../dev/src/control-plane.ts';
import { installCrd } from '../../dev/src/crd.ts';
import { loadKubeConfig } from '../../src/controller/kube.ts';
import { registerTeardown } from './teardown.ts';

const run = promisify(execFile);
let plane: Promise<ControlPlane> | undefined;

export function sharedControlPlane(): Promise<ControlPlane> {
  if (!plane) {
    plane = (async () => {
      let cp: ControlPlane;
      try {
        cp = await startControlPlane();
      } catch (error) {
        throw new Error(
          `the tests need a real kube-apiserver and etcd (built from Go modules by test/env/build-binaries.sh), and they could not start: ${String(error)}`,
          { cause: error },
        );
      }
      registerTeardown(() => cp.stop());
      await installCrd(loadKubeConfig(cp.kubeconfigPath));
      return cp;
    })();
  }
  return plane;
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the pinned kubectl against the shared control plane. Never throws on a non-zero exit. */
export async function kubectl(args: string[], options: { input?: string; kubeconfig?: string } = {}): Promise<CommandResult> {
  const cp = await sharedControlPlane();
  return runTool(cp.binaries.kubectl, ['--kubeconfig', options.kubeconfig ?? cp.kubeconfigPath, ...args], options.input);
}

export async function helm(args: string[], options: { kubeconfig?: string } = {}): Promise<CommandResult> {
  const cp = await sharedControlPlane();
  return runTool(cp.binaries.helm, ['--kubeconfig', options.kubeconfig ?? cp.kubeconfigPath, ...args]);
}

async function runTool(bin: string, args: string[], input?: string): Promise<CommandResult> {
  if (input !== undefined) {
    return new Promise((resolve) => {
      const child = execFile(bin, args, { maxBuffer: 10_000_000 }, (error, stdout, stderr) => {
        const code = error && typeof error.code === 'number' ? error.code : error ? 1 : 0;
        resolve({ code, stdout, stderr });
      });
      child.stdin?.end(input);
    });
  }
  try {
    const { stdout, stderr } = await run(bin, args, { maxBuffer: 10_000_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}
