/**
 * The agent's Kubernetes discovery (agent/discovery/kubernetes.ts), authenticated as the
 * weft-agent service account with only the shipped daemonset/rbac.yaml, against the lab's API
 * server: the RBAC is sufficient for what it reads today, and the model follows changes.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { parseAllDocuments } from 'yaml';
import { CoreV1Api, KubernetesObjectApi, PatchStrategy, setHeaderOptions, type KubernetesObject } from '@kubernetes/client-node';
import { KubernetesSource } from '../../agent/discovery/kubernetes.js';
import type { MeshModel } from '../../agent/discovery/types.js';
import { silentLogger } from '../../agent/log.js';
import { waitFor } from '../helpers/wait.js';
import { startTestApi, type TestApi } from './kube-api-helpers.js';

let api: TestApi;
let source: KubernetesSource | undefined;

async function applyFile(path: string): Promise<void> {
  const objects = KubernetesObjectApi.makeApiClient(api.kc);
  for (const doc of parseAllDocuments(await readFile(new URL(`../../../${path}`, import.meta.url), 'utf8'))) {
    const o = doc.toJS() as KubernetesObject | null;
    if (o !== null) await objects.create(o);
  }
}

before(async () => {
  api = await startTestApi();
  for (const f of ['daemonset/namespace.yaml', 'daemonset/rbac.yaml', 'daemonset/crds/weft.dev_authorizationpolicies.yaml', 'daemonset/crds/weft.dev_peerauthentications.yaml']) await applyFile(f);
});
after(async () => {
  await source?.stop();
  await api?.close();
});

test('the agent, with only the shipped RBAC, lists and watches the mesh through this API server', async () => {
  const core = api.kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: 'shop', labels: { 'weft.dev/mesh': 'enabled' } } } });
  await core.createNamespacedServiceAccount({ namespace: 'shop', body: { metadata: { name: 'cart' } } });
  await core.createNamespacedPod({ namespace: 'shop', body: { metadata: { name: 'cart', labels: { app: 'cart' } }, spec: { nodeName: 'node-1', serviceAccountName: 'cart', containers: [{ name: 'c', image: 'cart' }] } } });
  await core.patchNamespacedPodStatus({ namespace: 'shop', name: 'cart', body: { status: { phase: 'Running', podIP: '198.18.1.5', conditions: [{ type: 'Ready', status: 'True' }] } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  const svc = await core.createNamespacedService({ namespace: 'shop', body: { metadata: { name: 'cart' }, spec: { selector: { app: 'cart' }, ports: [{ port: 80, targetPort: 8080 }] } } });
  source = new KubernetesSource({ kubeConfig: api.kcFor(api.server.issueToken('weft-system', 'weft-agent')), logger: silentLogger, nodeName: 'node-1' });
  const model = await source.start();
  assert.equal(model.workloadByIp('198.18.1.5')?.identity, 'spiffe://cluster.local/ns/shop/sa/cart');
  assert.ok(model.serviceByVip(svc.spec!.clusterIP!), 'the service by its allocated ClusterIP');
  let latest = model;
  source.on('update', (m: MeshModel) => (latest = m));
  await core.createNamespacedPod({ namespace: 'shop', body: { metadata: { name: 'cart-2', labels: { app: 'cart' } }, spec: { nodeName: 'node-2', serviceAccountName: 'cart', containers: [{ name: 'c', image: 'cart' }] } } });
  await core.patchNamespacedPodStatus({ namespace: 'shop', name: 'cart-2', body: { status: { phase: 'Running', podIP: '198.18.2.5' } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  const added = await waitFor(() => latest.workloadByIp('198.18.2.5'), 'the new pod in the model');
  assert.equal(added.key, 'shop/cart-2');
});
