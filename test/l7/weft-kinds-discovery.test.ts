/**
 * HTTPFault and LocalRateLimitPolicy reach the route store in both discovery modes: from
 * manifests (the local source's model keeps the kinds), and from a Kubernetes API server that
 * serves the shipped CRDs (daemonset/crds), read as the weft-waypoint service account with only
 * the shipped RBAC (daemonset/rbac.yaml).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { parseAllDocuments } from 'yaml';
import { KubernetesObjectApi, RbacAuthorizationV1Api, type KubernetesObject } from '@kubernetes/client-node';
import { buildModel } from '../../agent/discovery/model.js';
import { KubernetesSource } from '../../agent/discovery/kubernetes.js';
import type { ManifestObject, MeshModel } from '../../agent/discovery/types.js';
import { silentLogger } from '../../agent/log.js';
import { RouteStore } from '../../agent/l7/store.js';
import { waitFor } from '../helpers/wait.js';
import { startTestApi, type TestApi } from '../lab/kube-api-helpers.js';

const FAULT = { apiVersion: 'weft.dev/v1alpha1', kind: 'HTTPFault', metadata: { name: 'slow', namespace: 'shop' }, spec: { delay: { fixedDelay: '1s', percentage: { value: 100 } } } };
const LIMIT = { apiVersion: 'weft.dev/v1alpha1', kind: 'LocalRateLimitPolicy', metadata: { name: 'cart', namespace: 'shop' }, spec: { targetRefs: [{ group: '', kind: 'Service', name: 'cart' }], tokenBucket: { maxTokens: 5, fillInterval: '1s' } } };
const kinds = (m: MeshModel) => m.others.map((o) => (o as { kind: string }).kind).sort();

test('manifests mode: the model keeps HTTPFault and LocalRateLimitPolicy for the route store', () => {
  const m = buildModel([FAULT, LIMIT] as unknown as ManifestObject[]);
  assert.deepEqual(kinds(m), ['HTTPFault', 'LocalRateLimitPolicy']);
  const store = new RouteStore();
  store.update(m);
  assert.deepEqual(store.rejected(), []);
  assert.ok(store.statuses().some((s) => s.route === 'LocalRateLimitPolicy shop/cart'));
});

let api: TestApi | undefined;
let source: KubernetesSource | undefined;
after(async () => {
  await source?.stop();
  await api?.close();
});

async function applyFile(objects: KubernetesObjectApi, path: string): Promise<void> {
  for (const doc of parseAllDocuments(await readFile(new URL(`../../../${path}`, import.meta.url), 'utf8'))) {
    const o = doc.toJS() as KubernetesObject | null;
    if (o !== null) await objects.create(o);
  }
}

test('Kubernetes mode: with the shipped CRDs and RBAC, a waypoint\'s discovery watches both kinds', async () => {
  api = await startTestApi();
  const objects = KubernetesObjectApi.makeApiClient(api.kc);
  for (const f of ['daemonset/namespace.yaml', 'daemonset/rbac.yaml', 'daemonset/crds/weft.dev_authorizationpolicies.yaml', 'daemonset/crds/weft.dev_peerauthentications.yaml', 'daemonset/crds/weft.dev_httpfaults.yaml', 'daemonset/crds/weft.dev_localratelimitpolicies.yaml']) {
    await applyFile(objects, f);
  }
  // What `weft waypoint generate` does for a waypoint: its own account bound to the weft-waypoint ClusterRole.
  await objects.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } } as KubernetesObject);
  await objects.create({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'waypoint', namespace: 'shop' } } as KubernetesObject);
  await api.kc.makeApiClient(RbacAuthorizationV1Api).createClusterRoleBinding({
    body: { metadata: { name: 'waypoint-shop' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'weft-waypoint' }, subjects: [{ kind: 'ServiceAccount', name: 'waypoint', namespace: 'shop' }] },
  });
  await objects.create(FAULT as KubernetesObject);
  source = new KubernetesSource({ kubeConfig: api.kcFor(api.server.issueToken('shop', 'waypoint')), logger: silentLogger, referenceGrants: true });
  let latest = await source.start();
  source.on('update', (m: MeshModel) => (latest = m));
  assert.deepEqual(kinds(latest).filter((k) => k === 'HTTPFault'), ['HTTPFault']);
  await objects.create(LIMIT as KubernetesObject);
  await waitFor(() => kinds(latest).includes('LocalRateLimitPolicy') || undefined, 'the LocalRateLimitPolicy in the model');
});
