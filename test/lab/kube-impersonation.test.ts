// Regression: `kubectl --as` against the lab's API server. Impersonation headers were ignored,
// so `kubectl auth can-i create pods --as=system:serviceaccount:weft-system:weft-agent` said
// "yes" (the admin's answer) where the shipped RBAC says no. Uses the real kubectl.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKubeApiServer } from '../../agent/lab/kube/index.js';
import { REPO_DIR } from '../../agent/lab/paths.js';

test('kubectl --as answers with the impersonated account\'s RBAC, and impersonation itself needs RBAC', async () => {
  const server = await startKubeApiServer({ listen: [{ host: '127.0.0.1', port: 0 }] });
  const dir = mkdtempSync(join(tmpdir(), 'weft-kube-as-'));
  try {
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, server.kubeconfig());
    // Asynchronous: the API server runs in this process and must answer while kubectl waits.
    const run = (config: string, args: string[]) =>
      new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
        execFile('kubectl', ['--kubeconfig', config, ...args], { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => resolve({ status: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr }));
      });
    const kubectl = (...args: string[]) => run(kubeconfig, args);
    for (const f of ['namespace.yaml', 'rbac.yaml']) assert.equal((await kubectl('apply', '-f', join(REPO_DIR, 'daemonset', f))).status, 0);
    const agent = '--as=system:serviceaccount:weft-system:weft-agent';
    assert.equal((await kubectl('auth', 'can-i', 'list', 'pods', agent)).stdout.trim(), 'yes');
    assert.equal((await kubectl('auth', 'can-i', 'create', 'pods', agent)).stdout.trim(), 'no');
    assert.equal((await kubectl('auth', 'can-i', 'create', 'tokenreviews.authentication.k8s.io', '--as=system:serviceaccount:weft-system:weft-ca')).stdout.trim(), 'yes');
    const denied = await kubectl('delete', 'namespace', 'weft-system', agent);
    assert.notEqual(denied.status, 0);
    assert.match(denied.stderr, /User "system:serviceaccount:weft-system:weft-agent" cannot delete resource "namespaces"/);
    // The agent's own token may not impersonate anyone.
    const token = server.issueToken('weft-system', 'weft-agent');
    writeFileSync(join(dir, 'agent'), server.kubeconfig({ token }));
    const escalation = await run(join(dir, 'agent'), ['get', 'secrets', '-A', '--as=weft-lab-admin']);
    assert.notEqual(escalation.status, 0);
    assert.match(escalation.stderr, /cannot impersonate resource "users"/);
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
