/**
 * The Kubernetes discovery source against a small API server speaking list/watch: first list,
 * watch events, 410 Gone (re-list), and an API server that goes away and comes back.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { KubeConfig } from '@kubernetes/client-node';
import { KubernetesSource } from '../../agent/discovery/kubernetes.js';
import type { MeshModel } from '../../agent/discovery/types.js';
import { silentLogger } from '../../agent/log.js';
import { FakeKubeApi, KUBE_PATHS } from '../helpers/fake-kube-api.js';
import { waitFor } from '../helpers/wait.js';

const api = new FakeKubeApi(Object.values(KUBE_PATHS));
let source: KubernetesSource;

const ns = (name: string, mesh: boolean) => ({ metadata: { name, ...(mesh ? { labels: { 'weft.dev/mesh': 'enabled' } } : {}) } });
const pod = (name: string, ip: string, node = 'node-1') => ({
  metadata: { name, namespace: 'shop', labels: { app: name } },
  spec: { nodeName: node, serviceAccountName: name, containers: [{ name: 'main', image: 'x' }] },
  status: { phase: 'Running', podIP: ip },
});

before(async () => {
  await api.start();
  api.upsert(KUBE_PATHS.namespaces, ns('shop', true));
  api.upsert(KUBE_PATHS.pods, pod('cart', '10.1.0.5'));
  api.upsert(KUBE_PATHS.services, { metadata: { name: 'cart', namespace: 'shop' }, spec: { clusterIP: '10.96.0.10', selector: { app: 'cart' }, ports: [{ port: 80, targetPort: 8080, protocol: 'TCP' }] } });
  // Endpoints come from EndpointSlices, as the endpoint-slice controller writes them.
  api.upsert(KUBE_PATHS.endpointSlices, {
    metadata: { name: 'cart-abc', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'cart' } },
    addressType: 'IPv4',
    ports: [{ name: '', port: 8080, protocol: 'TCP' }],
    endpoints: [{ addresses: ['10.1.0.5'], conditions: { ready: true }, targetRef: { kind: 'Pod', namespace: 'shop', name: 'cart' } }],
  });
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'fake', server: api.url, skipTLSVerify: true }],
    users: [{ name: 'agent', token: 'test-token' }],
    contexts: [{ name: 'fake', cluster: 'fake', user: 'agent' }],
    currentContext: 'fake',
  });
  source = new KubernetesSource({ kubeConfig: kc, logger: silentLogger, backoff: { initialMs: 50, maxMs: 200 } });
});

after(async () => {
  await source?.stop();
  await api.stop();
});

function nextUpdate(): Promise<MeshModel> {
  return once(source, 'update').then(([m]) => m as MeshModel);
}

test('the first list builds the model: workloads, identities, service endpoints', async () => {
  const model = await source.start();
  const cart = model.workloadByIp('10.1.0.5');
  assert.equal(cart?.key, 'shop/cart');
  assert.equal(cart?.identity, 'spiffe://cluster.local/ns/shop/sa/cart');
  assert.equal(cart?.inMesh, true);
  assert.deepEqual(model.serviceByVip('10.96.0.10')?.ports.get(80)?.map((e) => `${e.ip}:${e.port}`), ['10.1.0.5:8080']);
  assert.ok(api.requests.some((r) => r.startsWith('GET /api/v1/pods?') && r.includes('watch=true')), 'pods are watched after the list');
});

test('watch events update the model: a pod added, a namespace label removed, a policy added', async () => {
  let update = nextUpdate();
  api.upsert(KUBE_PATHS.pods, pod('pay', '10.1.0.6'));
  let model = await update;
  assert.equal(model.workloadByIp('10.1.0.6')?.key, 'shop/pay');

  update = nextUpdate();
  api.upsert(KUBE_PATHS.namespaces, ns('shop', false));
  model = await update;
  assert.equal(model.workloadByIp('10.1.0.5')?.inMesh, false);

  update = nextUpdate();
  api.upsert(KUBE_PATHS.authorizationPolicies, { metadata: { name: 'deny-all', namespace: 'shop' }, spec: { action: 'DENY', rules: [{}] } });
  model = await update;
  const policy = model.others.find((o) => o.kind === 'AuthorizationPolicy');
  assert.equal(policy?.apiVersion, 'weft.dev/v1alpha1');
  assert.equal(policy?.metadata.name, 'deny-all');
});

test('410 Gone makes the informer list again, and nothing is lost', async () => {
  const lists = () => api.requests.filter((r) => r.startsWith('GET /api/v1/pods?') && !r.includes('watch=true')).length;
  const listsBefore = lists();
  api.compact();
  const update = nextUpdate();
  api.remove(KUBE_PATHS.pods, 'shop', 'pay');
  const model = await update;
  assert.equal(model.workloadByIp('10.1.0.6'), undefined);
  assert.equal(model.workloadByIp('10.1.0.5')?.key, 'shop/cart');
  assert.ok(lists() > listsBefore, 'pods were listed again');
});

test('while the API server is down the last model stays; when it returns, updates resume', async () => {
  const before = source.current();
  await api.stop();
  // Changes made while nobody can watch (as on a restarted API server with its storage).
  api.upsert(KUBE_PATHS.pods, pod('ship', '10.1.0.7'));
  assert.equal(source.current(), before, 'model kept');
  assert.equal(source.current().workloadByIp('10.1.0.5')?.key, 'shop/cart');
  await api.start();
  await waitFor(() => source.current().workloadByIp('10.1.0.7'), 'the pod created during the outage appears', 20_000);
});
