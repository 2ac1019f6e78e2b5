// Finds, or builds from pinned Go modules, the kube-apiserver, etcd, kubectl and helm binaries
// (test/env/build-binaries.sh). The build is cached outside the repository, keyed by the versions.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Binaries {
  dir: string;
  kubeApiserver: string;
  etcd: string;
  kubectl: string;
  helm: string;
}

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BUILD_SCRIPT = path.join(REPO_ROOT, 'test', 'env', 'build-binaries.sh');

export async function ensureBinaries(log: (line: string) => void = () => undefined): Promise<Binaries> {
  if (!existsSync(BUILD_SCRIPT)) throw new Error(`missing ${BUILD_SCRIPT}: the local stack runs from a checkout of the repository`);
  const dir = await new Promise<string>((resolve, reject) => {
    const child = spawn('bash', [BUILD_SCRIPT], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      for (const line of d.toString().split('\n')) if (line.trim()) log(line.trim());
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      const last = out.trim().split('\n').pop() ?? '';
      if (code === 0 && last) resolve(last);
      else reject(new Error(`building the control-plane binaries failed (exit ${code}): ${err.trim().slice(-3000)}`));
    });
  });
  const bin = (name: string) => {
    const file = path.join(dir, name);
    if (!existsSync(file)) throw new Error(`the binary ${file} is missing after the build`);
    return file;
  };
  return { dir, kubeApiserver: bin('kube-apiserver'), etcd: bin('etcd'), kubectl: bin('kubectl'), helm: bin('helm') };
}
