// The pool watch when the controller's credentials fail for a while: a kubeconfig whose exec credential plugin
// (as `aws eks get-token`) hands out short-lived tokens and then fails, against a real kube-apiserver. The
// failure must reach the informer's error handlers (the controller restarts the watch from there), never end
// the process as an unhandled rejection.
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { KubeApi, loadKubeConfig } from '../../src/controller/kube.ts';
import { kubectl, sharedControlPlane } from '../support/kube.ts';

const NS = `exec-cred-${process.pid}`;

describe('the pool watch while its exec credential plugin fails (real kube-apiserver)', function () {
  this.timeout(120_000);
  let dir: string;
  let kube: KubeApi | undefined;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ltp-exec-cred-'));
  });
  after(async () => {
    await kube?.close();
    await kubectl(['delete', 'namespace', NS, '--wait=false']);
    await rm(dir, { recursive: true, force: true });
  });

  it('reports the failed reconnect to the error handlers and lists again once the plugin works', async () => {
    const cp = await sharedControlPlane();
    const broken = path.join(dir, 'broken');
    const plugin = path.join(dir, 'token.sh');
    // Tokens that expire 2 s after they are made, so that the watch's reconnect has to ask again.
    await writeFile(
      plugin,
      [
        '#!/bin/sh',
        `if [ -e '${broken}' ]; then echo 'credential backend unreachable' >&2; exit 1; fi`,
        `exp=$(date -u -d '+2 seconds' +%Y-%m-%dT%H:%M:%SZ)`,
        `printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s","expirationTimestamp":"%s"}}\\n' '${cp.adminToken}' "$exp"`,
        '',
      ].join('\n'),
    );
    await chmod(plugin, 0o755);
    const kubeconfig = path.join(dir, 'kubeconfig');
    await writeFile(
      kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        '- name: c',
        '  cluster:',
        `    server: ${cp.server}`,
        `    certificate-authority-data: ${cp.caData}`,
        'users:',
        '- name: u',
        '  user:',
        '    exec:',
        '      apiVersion: client.authentication.k8s.io/v1',
        `      command: ${plugin}`,
        '      interactiveMode: Never',
        'contexts:',
        '- name: c',
        '  context: {cluster: c, user: u}',
        'current-context: c',
        '',
      ].join('\n'),
    );
    kube = new KubeApi(loadKubeConfig(kubeconfig));
    // A namespace of its own: no other test's pool event resets the watch's idle timer.
    await kubectl(['create', 'namespace', NS]);
    const [informer] = kube.poolInformers([NS]);
    if (!informer) throw new Error('no informer');
    const errors: string[] = [];
    informer.on('error', (error: unknown) => errors.push(error instanceof Error ? error.message : String(error)));
    await informer.start();
    expect(errors, 'the first list and watch went through').to.deep.equal([]);

    // The plugin fails from now on. The watch is quiet, so it reconnects after its 30 s idle timeout, and
    // asks the plugin for a token then. Before, that rejection was dropped and Node ended the process.
    await writeFile(broken, '');
    const deadline = Date.now() + 60_000;
    while (errors.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 250));
    expect(errors.join('; '), 'the failed reconnect reached the error handlers').to.include('credential backend unreachable');

    // The plugin works again: a restart (as watch-restart.ts makes) lists and watches once more.
    await rm(broken);
    const before = errors.length;
    await informer.start();
    expect(errors.slice(before), 'no error once the plugin works').to.deep.equal([]);
    expect(Array.isArray(informer.list())).to.equal(true);
    await informer.stop();
  });
});
