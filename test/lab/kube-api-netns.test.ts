/**
 * One API server process on host loopback and inside a network namespace at once (as the lab
 * runs it: kubectl on the host, agents in node namespaces reaching the fabric), also after it
 * went down and came back. Needs root (ip netns).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { runCommand } from '../../agent/util/exec.js';
import { createTestNetns } from '../helpers/netns.js';
import { startTestApi, type TestApi } from './kube-api-helpers.js';

const NS = 'weft-kapi-apins';
let netns: ReturnType<typeof createTestNetns>;
let api: TestApi;
let config: string;

before(async () => {
  netns = createTestNetns(NS);
  api = await startTestApi({ listen: [{ host: '127.0.0.1', port: 0 }, { host: '127.0.0.1', port: 6443, netnsPath: netns.path }] });
  config = join(api.dir, 'in-netns.kubeconfig');
  await writeFile(config, api.server.kubeconfig({ server: 'https://127.0.0.1:6443' }));
});
after(async () => {
  await api?.close();
  netns?.remove();
});

/** kubectl inside the namespace (asynchronously: the server answers from this process). */
async function kubectlInNetns(args: string[]): Promise<string> {
  return (await runCommand('ip', ['netns', 'exec', NS, '/usr/bin/kubectl', '--kubeconfig', config, '--cache-dir', join(api.dir, 'cache'), ...args])).stdout;
}

test('the same objects are served on the host and inside the namespace', async () => {
  const core = api.kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: 'from-host' } } });
  assert.match(await kubectlInNetns(['get', 'ns', 'from-host']), /\nfrom-host\s+Active/);
  await kubectlInNetns(['create', 'namespace', 'from-netns']);
  assert.equal((await core.readNamespace({ name: 'from-netns' })).status?.phase, 'Active');
  assert.deepEqual(api.server.urls, [api.server.urls[0], 'https://127.0.0.1:6443']);
});

test('after going down and coming back it listens inside the namespace again', async () => {
  await api.server.goDown();
  await assert.rejects(kubectlInNetns(['get', 'ns', 'from-host', '--request-timeout=2s']), 'refused while down');
  await api.server.comeBack();
  assert.match(await kubectlInNetns(['get', 'ns', 'from-host']), /\nfrom-host\s+Active/);
});
