/**
 * The lab's Kubernetes API server (a test double) through @kubernetes/client-node: CRUD with
 * Kubernetes' errors, paged lists, selectors, watch semantics, patches, Services, CRDs, graceful
 * deletion, namespace deletion, injected faults and persistence across restarts.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import {
  AppsV1Api, CoreV1Api, CustomObjectsApi, KubernetesObjectApi, PatchStrategy, Watch, makeInformer, setHeaderOptions,
  type KubernetesObject, type V1ConfigMap, type V1Pod,
} from '@kubernetes/client-node';
import { startKubeApiServer } from '../../agent/lab/kube/index.js';
import { waitFor } from '../helpers/wait.js';
import { rawRequest, startTestApi, statusOf, type TestApi } from './kube-api-helpers.js';

let api: TestApi;
let core: CoreV1Api;

before(async () => {
  api = await startTestApi({ bookmarkIntervalMs: 100 });
  core = api.kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: 'shop' } } });
});
after(() => api?.close());

const pod = (name: string, node?: string, labels: Record<string, string> = {}): V1Pod => ({
  metadata: { name, labels },
  spec: { ...(node ? { nodeName: node } : {}), containers: [{ name: 'main', image: 'app', ports: [{ containerPort: 80 }] }] },
});

test('create sets uid, creationTimestamp, resourceVersion; generateName; AlreadyExists is 409', async () => {
  const created = await core.createNamespacedPod({ namespace: 'shop', body: pod('cart') });
  assert.match(created.metadata?.uid ?? '', /^[0-9a-f-]{36}$/);
  assert.ok(created.metadata?.creationTimestamp instanceof Date);
  assert.match(created.metadata?.resourceVersion ?? '', /^\d+$/);
  assert.equal(created.status?.phase, 'Pending');
  assert.equal(created.spec?.serviceAccountName, 'default');
  const generated = await core.createNamespacedConfigMap({ namespace: 'shop', body: { metadata: { generateName: 'cfg-' } } });
  assert.match(generated.metadata?.name ?? '', /^cfg-[a-z0-9]{5}$/);
  const dup = await statusOf(core.createNamespacedPod({ namespace: 'shop', body: pod('cart') }));
  assert.equal(dup.code, 409);
  assert.equal(dup.body.reason, 'AlreadyExists');
  assert.equal(dup.body.message, 'pods "cart" already exists');
  const missing = await statusOf(core.readNamespacedPod({ namespace: 'shop', name: 'nope' }));
  assert.equal(missing.code, 404);
  assert.equal(missing.body.message, 'pods "nope" not found');
  const noNs = await statusOf(core.createNamespacedPod({ namespace: 'nowhere', body: pod('x') }));
  assert.equal(noNs.code, 404);
  assert.equal(noNs.body.message, 'namespaces "nowhere" not found');
});

test("objects over Kubernetes' size limits are refused with its messages", async () => {
  const big = (n: number) => 'x'.repeat(n);
  const cm = await statusOf(core.createNamespacedConfigMap({ namespace: 'shop', body: { metadata: { name: 'big' }, data: { a: big(1024 * 1024) } } }));
  assert.equal(cm.code, 422);
  assert.equal(cm.body.message, 'ConfigMap "big" is invalid: []: Too long: must have at most 1048576 bytes');
  const ann = await statusOf(core.createNamespacedConfigMap({ namespace: 'shop', body: { metadata: { name: 'ann', annotations: { a: big(300_000) } } } }));
  assert.equal(ann.body.message, 'ConfigMap "ann" is invalid: metadata.annotations: Too long: must have at most 262144 bytes');
  const labels: Record<string, string> = {};
  for (let i = 0; i < 40_000; i++) labels[`label-${i}`] = 'value-value-value-value-value';
  const pod = await statusOf(core.createNamespacedPod({ namespace: 'shop', body: { metadata: { name: 'many-labels', labels }, spec: { containers: [{ name: 'c', image: 'i' }] } } }));
  assert.equal(pod.code, 500);
  assert.equal(pod.body.message, 'etcdserver: request is too large');
  const huge = await rawRequest(api, 'POST', '/api/v1/namespaces/shop/configmaps', { metadata: { name: 'huge' }, data: { a: big(3.5 * 1024 * 1024) } });
  assert.equal(huge.status, 413);
  assert.equal((await statusOf(core.readNamespacedConfigMap({ namespace: 'shop', name: 'big' }))).code, 404, 'nothing stored');
});

test('update with a stale resourceVersion is a 409 Conflict; with the current one it applies', async () => {
  const cm = await core.createNamespacedConfigMap({ namespace: 'shop', body: { metadata: { name: 'settings' }, data: { a: '1' } } });
  const updated = await core.replaceNamespacedConfigMap({ namespace: 'shop', name: 'settings', body: { ...cm, data: { a: '2' } } });
  assert.ok(Number(updated.metadata?.resourceVersion) > Number(cm.metadata?.resourceVersion));
  const stale = await statusOf(core.replaceNamespacedConfigMap({ namespace: 'shop', name: 'settings', body: { ...cm, data: { a: '3' } } }));
  assert.equal(stale.code, 409);
  assert.equal(stale.body.reason, 'Conflict');
  assert.equal(stale.body.message, 'Operation cannot be fulfilled on configmaps "settings": the object has been modified; please apply your changes to the latest version and try again');
  assert.equal((await core.readNamespacedConfigMap({ namespace: 'shop', name: 'settings' })).data?.['a'], '2');
});

test('patch: merge, JSON and strategic merge (containers merged by name)', async () => {
  await core.createNamespacedPod({ namespace: 'shop', body: { metadata: { name: 'web', labels: { app: 'web' } }, spec: { containers: [{ name: 'a', image: 'a:1' }, { name: 'b', image: 'b:1' }] } } });
  const merged = await core.patchNamespacedPod({ namespace: 'shop', name: 'web', body: { metadata: { labels: { tier: 'front' } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  assert.deepEqual(merged.metadata?.labels, { app: 'web', tier: 'front' });
  const json = await core.patchNamespacedPod({ namespace: 'shop', name: 'web', body: [{ op: 'remove', path: '/metadata/labels/tier' }] }, setHeaderOptions('Content-Type', PatchStrategy.JsonPatch));
  assert.deepEqual(json.metadata?.labels, { app: 'web' });
  const smp = await core.patchNamespacedPod({ namespace: 'shop', name: 'web', body: { spec: { containers: [{ name: 'b', image: 'b:2' }] } } }, setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch));
  assert.deepEqual(smp.spec?.containers.map((c) => `${c.name}=${c.image}`), ['a=a:1', 'b=b:2']);
  const bad = await statusOf(core.patchNamespacedPod({ namespace: 'shop', name: 'web', body: [{ op: 'test', path: '/metadata/name', value: 'other' }] }, setHeaderOptions('Content-Type', PatchStrategy.JsonPatch)));
  assert.equal(bad.code, 400);
});

test('list with limit/continue pages over a consistent snapshot; an expired continue is 410', async () => {
  await core.createNamespace({ body: { metadata: { name: 'paging' } } });
  for (let i = 0; i < 5; i++) await core.createNamespacedConfigMap({ namespace: 'paging', body: { metadata: { name: `cm-${i}` } } });
  const first = await core.listNamespacedConfigMap({ namespace: 'paging', limit: 2 });
  assert.deepEqual(first.items.map((c) => c.metadata?.name), ['cm-0', 'cm-1']);
  assert.equal(first.metadata?.remainingItemCount, 3);
  // Changes after the first page do not show in the following ones (same resourceVersion).
  await core.deleteNamespacedConfigMap({ namespace: 'paging', name: 'cm-3' });
  await core.createNamespacedConfigMap({ namespace: 'paging', body: { metadata: { name: 'cm-9' } } });
  const second = await core.listNamespacedConfigMap({ namespace: 'paging', limit: 2, _continue: first.metadata!._continue! });
  assert.deepEqual(second.items.map((c) => c.metadata?.name), ['cm-2', 'cm-3']);
  assert.equal(second.metadata?.resourceVersion, first.metadata?.resourceVersion);
  const third = await core.listNamespacedConfigMap({ namespace: 'paging', limit: 2, _continue: second.metadata!._continue! });
  assert.deepEqual(third.items.map((c) => c.metadata?.name), ['cm-4']);
  assert.equal(third.metadata?._continue, undefined);
  api.server.faults.compact();
  const expired = await statusOf(core.listNamespacedConfigMap({ namespace: 'paging', limit: 2, _continue: first.metadata!._continue! }));
  assert.equal(expired.code, 410);
  assert.equal(expired.body.reason, 'Expired');
});

test('label selectors (=, ==, !=, in, notin, exists, !key) and field selectors; an unsupported field is 400', async () => {
  await core.createNamespace({ body: { metadata: { name: 'sel' } } });
  await core.createNamespacedPod({ namespace: 'sel', body: pod('p1', 'node-1', { app: 'a', tier: 'front' }) });
  await core.createNamespacedPod({ namespace: 'sel', body: pod('p2', 'node-2', { app: 'b' }) });
  await core.createNamespacedPod({ namespace: 'sel', body: pod('p3', 'node-1', { app: 'c', tier: 'back' }) });
  const names = async (labelSelector?: string, fieldSelector?: string): Promise<string[]> =>
    (await core.listNamespacedPod({ namespace: 'sel', ...(labelSelector ? { labelSelector } : {}), ...(fieldSelector ? { fieldSelector } : {}) })).items.map((p) => p.metadata!.name!);
  assert.deepEqual(await names('app=a'), ['p1']);
  assert.deepEqual(await names('app==b'), ['p2']);
  assert.deepEqual(await names('app!=a'), ['p2', 'p3']);
  assert.deepEqual(await names('app in (a, c)'), ['p1', 'p3']);
  assert.deepEqual(await names('app notin (a,c)'), ['p2']);
  assert.deepEqual(await names('tier'), ['p1', 'p3']);
  assert.deepEqual(await names('!tier'), ['p2']);
  assert.deepEqual(await names('tier,app!=c'), ['p1']);
  assert.deepEqual(await names(undefined, 'spec.nodeName=node-1'), ['p1', 'p3']);
  assert.deepEqual(await names(undefined, 'spec.nodeName!=node-1,metadata.name!=p9'), ['p2']);
  assert.deepEqual(await names(undefined, 'status.phase=Pending,metadata.namespace=sel,metadata.name=p3'), ['p3']);
  const all = await core.listPodForAllNamespaces({ fieldSelector: 'spec.nodeName=node-2' });
  assert.deepEqual(all.items.map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`), ['sel/p2']);
  const bad = await statusOf(core.listNamespacedPod({ namespace: 'sel', fieldSelector: 'spec.image=x' }));
  assert.equal(bad.code, 400);
  assert.match(bad.body.message ?? '', /field label not supported: spec.image/);
});

interface Seen {
  type: string;
  name: string;
  rv: string;
  annotations: Record<string, string> | undefined;
}

/** Opens a watch and records its events until `done`. */
async function watchEvents(path: string, query: Record<string, string | number | boolean>) {
  const events: Seen[] = [];
  let ended: unknown = 'open';
  const abort = await new Watch(api.kc).watch(
    path,
    query,
    (type: string, obj: KubernetesObject & { code?: number; reason?: string }) =>
      events.push({ type, name: type === 'ERROR' ? `${String(obj.code)} ${String(obj.reason)}` : obj.metadata?.name ?? '', rv: obj.metadata?.resourceVersion ?? '', annotations: obj.metadata?.annotations }),
    (err: unknown) => (ended = err ?? null),
  );
  return { events, ended: () => ended, abort: () => abort.abort() };
}

test('watch with resourceVersion unset: ADDED for what exists, then changes', async () => {
  await core.createNamespace({ body: { metadata: { name: 'w1' } } });
  await core.createNamespacedConfigMap({ namespace: 'w1', body: { metadata: { name: 'old' } } });
  const w = await watchEvents('/api/v1/namespaces/w1/configmaps', {});
  try {
    await waitFor(() => w.events.length === 1, 'the synthetic ADDED');
    await core.createNamespacedConfigMap({ namespace: 'w1', body: { metadata: { name: 'new' } } });
    await core.patchNamespacedConfigMap({ namespace: 'w1', name: 'old', body: { data: { x: 'y' } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    await core.deleteNamespacedConfigMap({ namespace: 'w1', name: 'new' });
    await waitFor(() => w.events.length === 4, 'four events');
    assert.deepEqual(w.events.map((e) => `${e.type} ${e.name}`), ['ADDED old', 'ADDED new', 'MODIFIED old', 'DELETED new']);
    const rvs = w.events.slice(1).map((e) => Number(e.rv));
    assert.deepEqual([...rvs].sort((a, b) => a - b), rvs, 'resourceVersions increase');
  } finally {
    w.abort();
  }
});

test('watch from "0" starts with the current state; from an exact version streams only later changes', async () => {
  await core.createNamespace({ body: { metadata: { name: 'w2' } } });
  const a = await core.createNamespacedConfigMap({ namespace: 'w2', body: { metadata: { name: 'a' } } });
  await core.createNamespacedConfigMap({ namespace: 'w2', body: { metadata: { name: 'b' } } });
  const zero = await watchEvents('/api/v1/namespaces/w2/configmaps', { resourceVersion: '0' });
  const exact = await watchEvents('/api/v1/namespaces/w2/configmaps', { resourceVersion: a.metadata!.resourceVersion! });
  try {
    await waitFor(() => zero.events.length === 2 && exact.events.length === 1, 'initial events');
    assert.deepEqual(zero.events.map((e) => `${e.type} ${e.name}`), ['ADDED a', 'ADDED b']);
    assert.deepEqual(exact.events.map((e) => `${e.type} ${e.name}`), ['ADDED b'], 'only what came after a');
  } finally {
    zero.abort();
    exact.abort();
  }
});

test('watch from a compacted resourceVersion gets an ERROR event with 410 Expired', async () => {
  const before = await core.listNamespacedConfigMap({ namespace: 'shop' });
  await core.createNamespacedConfigMap({ namespace: 'shop', body: { metadata: { name: 'after-compaction' } } });
  api.server.faults.compact();
  const w = await watchEvents('/api/v1/namespaces/shop/configmaps', { resourceVersion: before.metadata!.resourceVersion! });
  await waitFor(() => w.ended() !== 'open', 'the watch ends');
  assert.deepEqual(w.events.map((e) => `${e.type} ${e.name}`), ['ERROR 410 Expired']);
});

test('a watch from a version older than the retained history is 410 too; deletecollection with a selector', async () => {
  const small = await startTestApi({ historyLimit: 3 });
  try {
    const c = small.kc.makeApiClient(CoreV1Api);
    const first = await c.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'c0', labels: { batch: 'x' } } } });
    for (let i = 1; i < 5; i++) await c.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: `c${i}`, labels: { batch: i % 2 ? 'y' : 'x' } } } });
    const events: string[] = [];
    let ended = false;
    await new Watch(small.kc).watch('/api/v1/namespaces/default/configmaps', { resourceVersion: first.metadata!.resourceVersion! }, (type: string, o: { code?: number }) => events.push(`${type} ${String(o.code)}`), () => (ended = true));
    await waitFor(() => ended, 'the watch ends');
    assert.deepEqual(events, ['ERROR 410']);
    await c.deleteCollectionNamespacedConfigMap({ namespace: 'default', labelSelector: 'batch=x' });
    assert.deepEqual((await c.listNamespacedConfigMap({ namespace: 'default' })).items.map((m) => m.metadata?.name), ['c1', 'c3']);
  } finally {
    await small.close();
  }
});

test('bookmarks when allowed, the initial-events-end bookmark, and a server-side timeout', async () => {
  await core.createNamespace({ body: { metadata: { name: 'w3' } } });
  await core.createNamespacedConfigMap({ namespace: 'w3', body: { metadata: { name: 'a' } } });
  const w = await watchEvents('/api/v1/namespaces/w3/configmaps', { allowWatchBookmarks: true, sendInitialEvents: true, resourceVersionMatch: 'NotOlderThan', timeoutSeconds: 1 });
  await waitFor(() => w.ended() !== 'open', 'the server ends the watch after timeoutSeconds', 5000);
  assert.deepEqual(w.events.slice(0, 2).map((e) => `${e.type} ${e.name}`), ['ADDED a', 'BOOKMARK ']);
  assert.equal(w.events[1]!.annotations?.['k8s.io/initial-events-end'], 'true');
  assert.ok(w.events.filter((e) => e.type === 'BOOKMARK').length >= 3, 'periodic bookmarks (every 100 ms here)');
  assert.equal(w.ended(), null, 'ended by the server without error');
  const plain = await watchEvents('/api/v1/namespaces/w3/configmaps', { timeoutSeconds: 1 });
  await waitFor(() => plain.ended() !== 'open', 'second watch ends', 5000);
  assert.ok(plain.events.every((e) => e.type !== 'BOOKMARK'), 'no bookmarks unless asked for');
});

test('watch with a selector: objects entering and leaving it are ADDED and DELETED', async () => {
  await core.createNamespace({ body: { metadata: { name: 'w4' } } });
  const w = await watchEvents('/api/v1/namespaces/w4/pods', { labelSelector: 'app=x' });
  try {
    await core.createNamespacedPod({ namespace: 'w4', body: pod('p', 'node-1', { app: 'y' }) });
    await core.patchNamespacedPod({ namespace: 'w4', name: 'p', body: { metadata: { labels: { app: 'x' } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    await core.patchNamespacedPod({ namespace: 'w4', name: 'p', body: { metadata: { labels: { app: 'z' } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    await waitFor(() => w.events.length === 2, 'two events');
    assert.deepEqual(w.events.map((e) => `${e.type} ${e.name}`), ['ADDED p', 'DELETED p']);
  } finally {
    w.abort();
  }
});

test('faults: the next lists answer 429 with Retry-After, then 500, then succeed', async () => {
  api.server.faults.failNextLists(1, { status: 429, retryAfterSeconds: 2 });
  api.server.faults.failNextLists(1, { status: 500 });
  const throttled = await statusOf(core.listNamespacedPod({ namespace: 'shop' }));
  assert.equal(throttled.code, 429);
  assert.equal(throttled.headers['retry-after'], '2');
  assert.equal(throttled.body.reason, 'TooManyRequests');
  const failed = await statusOf(core.listNamespacedPod({ namespace: 'shop' }));
  assert.equal(failed.code, 500);
  assert.equal(failed.body.reason, 'InternalError');
  assert.ok((await core.listNamespacedPod({ namespace: 'shop' })).items.length > 0);
});

test('an informer lists, watches, and recovers after the server goes down and comes back', async () => {
  await core.createNamespace({ body: { metadata: { name: 'inf' } } });
  await core.createNamespacedConfigMap({ namespace: 'inf', body: { metadata: { name: 'one' } } });
  const informer = makeInformer<V1ConfigMap>(api.kc, '/api/v1/namespaces/inf/configmaps', () => core.listNamespacedConfigMap({ namespace: 'inf' }));
  const errors: unknown[] = [];
  let stopped = false;
  informer.on('error', (e: unknown) => {
    errors.push(e);
    setTimeout(() => {
      if (!stopped) void informer.start().catch(() => undefined);
    }, 50);
  });
  await informer.start();
  try {
    assert.deepEqual(informer.list().map((c) => c.metadata?.name), ['one']);
    await core.createNamespacedConfigMap({ namespace: 'inf', body: { metadata: { name: 'two' } } });
    await waitFor(() => informer.list().length === 2, 'the watch delivers the new object');
    await api.server.goDown();
    await assert.rejects(core.listNamespacedConfigMap({ namespace: 'inf' }), 'requests fail while down');
    await api.server.comeBack();
    await waitFor(() => errors.length > 0, 'the informer saw the outage');
    await core.createNamespacedConfigMap({ namespace: 'inf', body: { metadata: { name: 'three' } } });
    await waitFor(() => informer.list().length === 3, 'the informer recovered and sees changes again');
  } finally {
    stopped = true;
    await informer.stop();
  }
});

test('Services: ClusterIP from 198.19.128.0/17, headless None, NodePort, LoadBalancer, ExternalName', async () => {
  const mk = (name: string, spec: Record<string, unknown>) => core.createNamespacedService({ namespace: 'shop', body: { metadata: { name }, spec } });
  const cip = await mk('cip', { selector: { app: 'x' }, ports: [{ port: 80, targetPort: 8080 }] });
  assert.match(cip.spec?.clusterIP ?? '', /^198\.19\.(1[2-9]\d|2[0-5]\d)\.\d+$/);
  assert.equal(cip.spec?.type, 'ClusterIP');
  assert.equal(cip.spec?.ports?.[0]?.protocol, 'TCP');
  const headless = await mk('headless', { clusterIP: 'None', selector: { app: 'x' } });
  assert.equal(headless.spec?.clusterIP, 'None');
  const np = await mk('np', { type: 'NodePort', ports: [{ port: 80 }] });
  assert.ok((np.spec?.ports?.[0]?.nodePort ?? 0) >= 30000);
  assert.equal(np.spec?.ports?.[0]?.targetPort, 80);
  const lb = await mk('lb', { type: 'LoadBalancer', ports: [{ port: 443 }] });
  assert.ok(lb.spec?.clusterIP && lb.spec.ports?.[0]?.nodePort);
  const ext = await mk('ext', { type: 'ExternalName', externalName: 'example.org' });
  assert.equal(ext.spec?.clusterIP, undefined);
  const taken = await statusOf(mk('taken', { clusterIP: cip.spec!.clusterIP!, ports: [{ port: 1 }] }));
  assert.equal(taken.code, 422);
  assert.equal(taken.body.reason, 'Invalid');
  // An update keeps the allocated address.
  const again = await core.patchNamespacedService({ namespace: 'shop', name: 'cip', body: { metadata: { labels: { a: 'b' } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  assert.equal(again.spec?.clusterIP, cip.spec?.clusterIP);
});

test("a created CRD makes its kind served (Weft's AuthorizationPolicy), namespaced, listed across namespaces", async () => {
  const objects = KubernetesObjectApi.makeApiClient(api.kc);
  for (const file of ['weft.dev_authorizationpolicies.yaml', 'weft.dev_peerauthentications.yaml']) {
    for (const doc of parseAllDocuments(await readFile(new URL(`../../../daemonset/crds/${file}`, import.meta.url), 'utf8'))) await objects.create(doc.toJS() as KubernetesObject);
  }
  const custom = api.kc.makeApiClient(CustomObjectsApi);
  const created = (await custom.createNamespacedCustomObject({
    group: 'weft.dev', version: 'v1alpha1', namespace: 'shop', plural: 'authorizationpolicies',
    body: { apiVersion: 'weft.dev/v1alpha1', kind: 'AuthorizationPolicy', metadata: { name: 'allow-cart' }, spec: { action: 'ALLOW' } },
  })) as KubernetesObject;
  assert.equal(created.metadata?.namespace, 'shop');
  const all = (await custom.listClusterCustomObject({ group: 'weft.dev', version: 'v1alpha1', plural: 'authorizationpolicies' })) as { items: KubernetesObject[] };
  assert.deepEqual(all.items.map((o) => o.metadata?.name), ['allow-cart']);
  const discovery = JSON.parse((await rawRequest(api, 'GET', '/apis/weft.dev/v1alpha1')).text) as { resources: { name: string; namespaced: boolean }[] };
  assert.ok(discovery.resources.some((r) => r.name === 'authorizationpolicies' && r.namespaced));
  const unknown = await rawRequest(api, 'GET', '/apis/example.com/v1/widgets');
  assert.equal(unknown.status, 404);
});

test('pods are deleted gracefully: deletionTimestamp first, gone with grace 0; finalizers hold any object', async () => {
  await core.createNamespacedPod({ namespace: 'shop', body: { ...pod('graceful', 'node-1'), spec: { ...pod('graceful', 'node-1').spec!, terminationGracePeriodSeconds: 20 } } });
  const terminating = (await core.deleteNamespacedPod({ namespace: 'shop', name: 'graceful' })) as V1Pod;
  assert.ok(terminating.metadata?.deletionTimestamp, 'marked for deletion');
  assert.equal(terminating.metadata?.deletionGracePeriodSeconds, 20);
  assert.ok((await core.readNamespacedPod({ namespace: 'shop', name: 'graceful' })).metadata?.deletionTimestamp, 'still there');
  await core.deleteNamespacedPod({ namespace: 'shop', name: 'graceful', gracePeriodSeconds: 0 });
  assert.equal((await statusOf(core.readNamespacedPod({ namespace: 'shop', name: 'graceful' }))).code, 404);
  await core.createNamespacedConfigMap({ namespace: 'shop', body: { metadata: { name: 'held', finalizers: ['weft.dev/test'] } } });
  await core.deleteNamespacedConfigMap({ namespace: 'shop', name: 'held' });
  const held = await core.readNamespacedConfigMap({ namespace: 'shop', name: 'held' });
  assert.ok(held.metadata?.deletionTimestamp);
  await core.patchNamespacedConfigMap({ namespace: 'shop', name: 'held', body: { metadata: { finalizers: null } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  assert.equal((await statusOf(core.readNamespacedConfigMap({ namespace: 'shop', name: 'held' }))).code, 404);
});

test('deleting a namespace deletes what is in it, then the namespace; no new content meanwhile', async () => {
  await core.createNamespace({ body: { metadata: { name: 'doomed' } } });
  await core.createNamespacedConfigMap({ namespace: 'doomed', body: { metadata: { name: 'c' } } });
  await core.createNamespacedPod({ namespace: 'doomed', body: pod('running', 'node-1') });
  await core.deleteNamespace({ name: 'doomed' });
  const ns = await core.readNamespace({ name: 'doomed' });
  assert.equal(ns.status?.phase, 'Terminating', 'waits for the running pod');
  assert.equal((await core.listNamespacedConfigMap({ namespace: 'doomed' })).items.length, 0);
  const refused = await statusOf(core.createNamespacedConfigMap({ namespace: 'doomed', body: { metadata: { name: 'late' } } }));
  assert.equal(refused.code, 403);
  assert.match(refused.body.message ?? '', /because it is being terminated/);
  await core.deleteNamespacedPod({ namespace: 'doomed', name: 'running', gracePeriodSeconds: 0 });
  assert.equal((await statusOf(core.readNamespace({ name: 'doomed' }))).code, 404, 'gone once empty');
});

test('apps/v1, batch/v1, coordination, policy/v1, scheduling, discovery.k8s.io kinds are stored and served', async () => {
  const apps = api.kc.makeApiClient(AppsV1Api);
  const d = await apps.createNamespacedDeployment({ namespace: 'shop', body: { metadata: { name: 'd' }, spec: { selector: { matchLabels: { a: 'b' } }, template: { metadata: { labels: { a: 'b' } }, spec: { containers: [{ name: 'c', image: 'i' }] } } } } });
  assert.equal(d.metadata?.generation, 1);
  const d2 = await apps.patchNamespacedDeployment({ namespace: 'shop', name: 'd', body: { spec: { replicas: 3 } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  assert.equal(d2.metadata?.generation, 2, 'a spec change bumps generation');
  const objects = KubernetesObjectApi.makeApiClient(api.kc);
  await objects.create({ apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name: 'pdb', namespace: 'shop' }, spec: { minAvailable: 1 } } as KubernetesObject);
  await objects.create({ apiVersion: 'scheduling.k8s.io/v1', kind: 'PriorityClass', metadata: { name: 'high' }, value: 1000 } as KubernetesObject);
  await objects.create({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'cip-1', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'cip' } }, addressType: 'IPv4', endpoints: [{ addresses: ['198.18.0.5'] }] } as KubernetesObject);
  await objects.create({ apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'bootstrap', namespace: 'shop' }, spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'i' }] } } } } as KubernetesObject);
  await objects.create({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'leader', namespace: 'shop' }, spec: { holderIdentity: 'ca-0' } } as KubernetesObject);
  const slices = await objects.list('discovery.k8s.io/v1', 'EndpointSlice', 'shop');
  assert.deepEqual(slices.items.map((s) => s.metadata?.name), ['cip-1']);
});

test('objects whose owners are all gone are garbage-collected (EndpointSlices of a deleted Service)', async () => {
  const svc = await core.createNamespacedService({ namespace: 'shop', body: { metadata: { name: 'owned' }, spec: { ports: [{ port: 80 }] } } });
  const other = await core.createNamespacedConfigMap({ namespace: 'shop', body: { metadata: { name: 'second-owner' } } });
  const objects = KubernetesObjectApi.makeApiClient(api.kc);
  const ref = (kind: string, o: KubernetesObject) => ({ apiVersion: 'v1', kind, name: o.metadata!.name!, uid: o.metadata!.uid! });
  const slice = (name: string, owners: object[]) => ({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name, namespace: 'shop', ownerReferences: owners }, addressType: 'IPv4', endpoints: [] }) as KubernetesObject;
  await objects.create(slice('owned-1', [ref('Service', svc)]));
  await objects.create(slice('owned-2', [ref('Service', svc), ref('ConfigMap', other)]));
  await core.deleteNamespacedService({ namespace: 'shop', name: 'owned' });
  const left = await objects.list('discovery.k8s.io/v1', 'EndpointSlice', 'shop');
  assert.deepEqual(left.items.map((s) => s.metadata?.name).filter((n) => n?.startsWith('owned')), ['owned-2'], 'the slice with a living owner stays');
});

test('the kubernetes Service has no selector and hand-managed Endpoints and EndpointSlice naming the server', async () => {
  const fixed = await startTestApi({ advertise: { ip: '198.19.0.254', port: 6443 } });
  try {
    const c = fixed.kc.makeApiClient(CoreV1Api);
    const svc = await c.readNamespacedService({ namespace: 'default', name: 'kubernetes' });
    assert.equal(svc.spec?.selector, undefined);
    assert.equal(svc.spec?.clusterIP, '198.19.128.1');
    const ep = await c.readNamespacedEndpoints({ namespace: 'default', name: 'kubernetes' });
    assert.deepEqual(ep.subsets?.[0]?.addresses?.map((a) => a.ip), ['198.19.0.254']);
    const slices = await KubernetesObjectApi.makeApiClient(fixed.kc).list('discovery.k8s.io/v1', 'EndpointSlice', 'default', undefined, undefined, undefined, undefined, 'kubernetes.io/service-name=kubernetes');
    assert.deepEqual((slices.items[0] as KubernetesObject & { endpoints: { addresses: string[] }[] }).endpoints[0]?.addresses, ['198.19.0.254']);
  } finally {
    await fixed.close();
  }
});

test('an unreadable state file or a taken address fails the start with WEFT_ERR_KUBE_API, naming which', async () => {
  const broken = join(api.dir, 'broken.json');
  await writeFile(broken, '{"version": 1, "resourceVer');
  await assert.rejects(startKubeApiServer({ listen: [{ host: '127.0.0.1', port: 0 }], stateFile: broken }), (e: Error & { code?: string }) => e.code === 'WEFT_ERR_KUBE_API' && e.message.includes(broken));
  const port = Number(new URL(api.server.urls[0]!).port);
  await assert.rejects(startKubeApiServer({ listen: [{ host: '127.0.0.1', port }] }), (e: Error & { code?: string }) => e.code === 'WEFT_ERR_KUBE_API' && e.message.includes(`127.0.0.1:${port}`));
});

test('the state file keeps objects across a restart; resourceVersions stay monotonic', async () => {
  const cm = await core.createNamespacedConfigMap({ namespace: 'shop', body: { metadata: { name: 'durable' }, data: { k: 'v' } } });
  const token = api.server.adminToken;
  await api.server.stop();
  await api.restart();
  assert.equal(api.server.adminToken, token, 'the admin token (and the serving CA) survive');
  core = api.kc.makeApiClient(CoreV1Api);
  const back = await core.readNamespacedConfigMap({ namespace: 'shop', name: 'durable' });
  assert.equal(back.data?.['k'], 'v');
  assert.equal(back.metadata?.uid, cm.metadata?.uid);
  const next = await core.createNamespacedConfigMap({ namespace: 'shop', body: { metadata: { name: 'newer' } } });
  assert.ok(Number(next.metadata?.resourceVersion) > Number(cm.metadata?.resourceVersion));
});
