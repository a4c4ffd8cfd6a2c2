// Regression: a watch with nothing to send yet must answer its headers at once. Node holds
// writeHead's headers until the first body write, and client-node's ListWatch.start() awaits the
// watch's response: the lab's kubelets and controllers hung at start (no pod ever ran).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig, ListWatch, Watch, type V1Pod } from '@kubernetes/client-node';
import { startKubeApiServer } from '../../agent/lab/kube/index.js';

test('ListWatch.start() resolves against the lab API server when the watch has no event to send', async () => {
  const server = await startKubeApiServer({ listen: [{ host: '127.0.0.1', port: 0 }] });
  const dir = mkdtempSync(join(tmpdir(), 'weft-kube-watch-'));
  const lw = { current: undefined as ListWatch<V1Pod> | undefined };
  try {
    const file = join(dir, 'kubeconfig');
    writeFileSync(file, server.kubeconfig());
    const kc = new KubeConfig();
    kc.loadFromFile(file);
    const core = kc.makeApiClient(CoreV1Api);
    const fieldSelector = 'spec.nodeName=node-1';
    lw.current = new ListWatch<V1Pod>('/api/v1/pods', new Watch(kc), () => core.listPodForAllNamespaces({ fieldSelector }), false, undefined, fieldSelector);
    let timer: NodeJS.Timeout | undefined;
    const started = await Promise.race([
      lw.current.start().then(() => 'started'),
      new Promise<string>((resolve) => (timer = setTimeout(() => resolve('hung'), 5_000))),
    ]);
    clearTimeout(timer);
    assert.equal(started, 'started');
  } finally {
    await lw.current?.stop();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
