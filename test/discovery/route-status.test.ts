/**
 * Route status in Kubernetes mode (issue 11 point 3, "written to the route's status"): the
 * waypoint's RouteStatusWriter against the lab's API server in process, read back with the real
 * kubectl. Before route-status.ts nothing wrote `status` of an HTTPRoute: kubectl showed none.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { KubernetesSource } from '../../agent/discovery/kubernetes.js';
import { RouteStatusWriter } from '../../agent/discovery/route-status.js';
import { silentLogger } from '../../agent/log.js';
import { startTestApi, rawRequest, type TestApi } from '../lab/kube-api-helpers.js';
import { waitFor } from '../helpers/wait.js';
import { installWeftCrds } from './weft-crds.js';

const apis: TestApi[] = [];
const sources: KubernetesSource[] = [];
const writers: RouteStatusWriter[] = [];
after(async () => {
  for (const w of writers) w.stop();
  for (const s of sources) await s.stop();
  for (const a of apis) await a.close();
});

function kubectl(api: TestApi, args: string[], input?: string): Promise<string> {
  const kubeconfig = join(api.dir, 'kubeconfig');
  writeFileSync(kubeconfig, api.server.kubeconfig({ token: api.server.adminToken }));
  return new Promise((resolve, reject) => {
    const child = execFile('kubectl', ['--kubeconfig', kubeconfig, '--cache-dir', join(api.dir, 'kubectl-cache'), ...args], { encoding: 'utf8' }, (err, stdout, stderr) => (err ? reject(new Error(`kubectl ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout)));
    child.stdin?.end(input ?? '');
  });
}

const OBJECTS = `apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels:
    weft.dev/mesh: enabled
    weft.dev/use-waypoint: waypoint
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: waypoint, namespace: shop}
spec:
  gatewayClassName: weft-waypoint
  listeners: [{name: mesh, port: 15008, protocol: HBONE}]
---
apiVersion: v1
kind: Pod
metadata: {name: waypoint-b, namespace: shop, labels: {gateway.networking.k8s.io/gateway-name: waypoint}}
spec: {nodeName: n2, serviceAccountName: waypoint, containers: [{name: w, image: weft}]}
---
apiVersion: v1
kind: Pod
metadata: {name: waypoint-a, namespace: shop, labels: {gateway.networking.k8s.io/gateway-name: waypoint}}
spec: {nodeName: n1, serviceAccountName: waypoint, containers: [{name: w, image: weft}]}
---
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop}
spec: {selector: {app: reviews}, ports: [{name: http, port: 9080}]}
---
apiVersion: v1
kind: Service
metadata: {name: reviews-v1, namespace: shop}
spec: {selector: {app: reviews, version: v1}, ports: [{name: http, port: 9080}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: reviews, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews, port: 9080}]
  rules:
  - backendRefs: [{name: reviews-v1, port: 9080}]
`;

const RBAC = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..', 'daemonset', 'rbac.yaml');

/**
 * A token of an account bound to the shipped `weft-waypoint` ClusterRole, as a waypoint's is:
 * the writer must do with those permissions (regression: it read the route with a GET the role
 * does not grant, 403 in the Kubernetes-mode lab).
 */
async function waypointToken(api: TestApi): Promise<string> {
  const role = parseAllDocuments(readFileSync(RBAC, 'utf8')).map((d) => d.toJSON() as { kind?: string; metadata?: { name?: string } }).find((o) => o.kind === 'ClusterRole' && o.metadata?.name === 'weft-waypoint');
  assert.ok(role, 'daemonset/rbac.yaml has the weft-waypoint ClusterRole');
  const post = async (path: string, body: unknown): Promise<Record<string, unknown>> => {
    const res = await rawRequest(api, 'POST', path, body);
    assert.ok(res.status === 201 || res.status === 200, `${path}: ${res.status} ${res.text}`);
    return JSON.parse(res.text) as Record<string, unknown>;
  };
  await post('/apis/rbac.authorization.k8s.io/v1/clusterroles', role);
  await post('/api/v1/namespaces/shop/serviceaccounts', { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'waypoint' } });
  await post('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: 'waypoint' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'weft-waypoint' }, subjects: [{ kind: 'ServiceAccount', name: 'waypoint', namespace: 'shop' }] });
  const tr = await post('/api/v1/namespaces/shop/serviceaccounts/waypoint/token', { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } });
  return (tr['status'] as { token: string }).token;
}

async function markReady(api: TestApi, pod: string, ip: string): Promise<void> {
  const res = await rawRequest(api, 'PATCH', `/api/v1/namespaces/shop/pods/${pod}/status`, { status: { phase: 'Running', podIP: ip, podIPs: [{ ip }], conditions: [{ type: 'Ready', status: 'True' }] } }, { 'Content-Type': 'application/merge-patch+json' });
  assert.equal(res.status, 200, res.text);
}

interface Parent {
  parentRef: Record<string, unknown>;
  controllerName: string;
  conditions: { type: string; status: string; reason: string; observedGeneration?: number; lastTransitionTime: string }[];
}

async function routeStatus(api: TestApi): Promise<{ generation: number; resourceVersion: string; parents: Parent[] }> {
  const o = JSON.parse(await kubectl(api, ['get', 'httproute', 'reviews', '-n', 'shop', '-o', 'json'])) as { metadata: { generation: number; resourceVersion: string }; status?: { parents?: Parent[] } };
  return { generation: o.metadata.generation, resourceVersion: o.metadata.resourceVersion, parents: o.status?.parents ?? [] };
}

test('the waypoint writes Accepted/ResolvedRefs to the HTTPRoute status once, keeps other controllers, follows changes; a non-leader replica writes nothing', async () => {
  const api = await startTestApi();
  apis.push(api);
  await installWeftCrds(api);
  await kubectl(api, ['apply', '-f', '-'], OBJECTS);
  await markReady(api, 'waypoint-a', '198.18.140.10');
  await markReady(api, 'waypoint-b', '198.18.140.11');
  // Another controller's entry (an ingress Gateway's) must survive Weft's writes.
  const other = { parentRef: { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'ingress', namespace: 'shop' }, controllerName: 'example.com/ingress', conditions: [{ type: 'Accepted', status: 'True', reason: 'Accepted', message: '', lastTransitionTime: '2026-01-01T00:00:00Z' }] };
  const seeded = await rawRequest(api, 'PATCH', '/apis/gateway.networking.k8s.io/v1/namespaces/shop/httproutes/reviews/status', { status: { parents: [other] } }, { 'Content-Type': 'application/merge-patch+json' });
  assert.equal(seeded.status, 200, seeded.text);

  const source = new KubernetesSource({ kubeConfig: api.kc, logger: silentLogger, backoff: { initialMs: 20, maxMs: 100 }, referenceGrants: true });
  sources.push(source);
  const asWaypoint = api.kcFor(await waypointToken(api));
  const leader = new RouteStatusWriter({ kubeConfig: asWaypoint, waypoint: 'shop/waypoint', podName: 'waypoint-a', logger: silentLogger, minIntervalMs: 10 });
  const follower = new RouteStatusWriter({ kubeConfig: asWaypoint, waypoint: 'shop/waypoint', podName: 'waypoint-b', logger: silentLogger, minIntervalMs: 10 });
  writers.push(leader, follower);
  source.on('update', (m) => {
    leader.update(m);
    follower.update(m);
  });
  const model = await source.start();
  leader.update(model);
  follower.update(model);

  const first = await waitFor(async () => {
    const s = await routeStatus(api);
    return s.parents.some((p) => p.controllerName === 'weft.dev/waypoint-controller') ? s : undefined;
  }, 'the route status written');
  const ours = first.parents.filter((p) => p.controllerName === 'weft.dev/waypoint-controller');
  assert.equal(ours.length, 1);
  assert.deepEqual(ours[0]!.parentRef, { group: '', kind: 'Service', namespace: 'shop', name: 'reviews', port: 9080 });
  const byType = new Map(ours[0]!.conditions.map((c) => [c.type, c]));
  assert.equal(byType.get('Accepted')?.status, 'True');
  assert.equal(byType.get('ResolvedRefs')?.status, 'True');
  assert.equal(byType.get('Accepted')?.observedGeneration, first.generation);
  assert.deepEqual(first.parents.find((p) => p.controllerName === 'example.com/ingress'), other, "another controller's parent kept as it was");
  assert.match(await kubectl(api, ['get', 'httproute', 'reviews', '-n', 'shop', '-o', 'yaml']), /type: ResolvedRefs\n\s+controllerName: weft\.dev\/waypoint-controller/);
  assert.equal(leader.writes, 1);

  // Nothing changed: another model update writes nothing.
  await kubectl(api, ['label', 'pod', '-n', 'shop', 'waypoint-b', 'x=y']);
  await waitFor(() => source.current().workloads.get('shop/waypoint-b')?.labels['x'] === 'y' || source.current().generation > model.generation || undefined, 'a model update');
  assert.equal((await routeStatus(api)).resourceVersion, first.resourceVersion, 'no write without a change');

  // A backend that does not exist: ResolvedRefs False BackendNotFound, for the new generation.
  await kubectl(api, ['patch', 'httproute', 'reviews', '-n', 'shop', '--type=merge', '-p', '{"spec":{"rules":[{"backendRefs":[{"name":"nowhere","port":9080}]}]}}']);
  const second = await waitFor(async () => {
    const s = await routeStatus(api);
    const c = s.parents.find((p) => p.controllerName === 'weft.dev/waypoint-controller')?.conditions.find((x) => x.type === 'ResolvedRefs');
    return c?.status === 'False' ? { s, c } : undefined;
  }, 'ResolvedRefs False written');
  assert.equal(second.c.reason, 'BackendNotFound');
  assert.equal(second.c.observedGeneration, second.s.generation);
  assert.ok(second.s.generation > first.generation);
  const accepted = second.s.parents.find((p) => p.controllerName === 'weft.dev/waypoint-controller')?.conditions.find((x) => x.type === 'Accepted');
  assert.equal(accepted?.lastTransitionTime, byType.get('Accepted')?.lastTransitionTime, 'Accepted unchanged: its lastTransitionTime kept');
  assert.equal(follower.writes, 0, 'only the lowest-named ready waypoint pod writes');
});

test('a 409 Conflict is read again and retried; a route gone is no error', async () => {
  const api = await startTestApi();
  apis.push(api);
  await installWeftCrds(api);
  await kubectl(api, ['apply', '-f', '-'], OBJECTS);
  const source = new KubernetesSource({ kubeConfig: api.kc, logger: silentLogger, backoff: { initialMs: 20, maxMs: 100 }, referenceGrants: true });
  sources.push(source);
  const model = await source.start();
  // Someone else changes the route between the writer's GET and its PATCH (its annotations: every
  // write bumps the object's resourceVersion, which the writer's patch carries as a precondition).
  let stop = false;
  let churned = 0;
  const churn = (async () => {
    for (let i = 0; !stop && i < 300; i++) {
      const res = await rawRequest(api, 'PATCH', '/apis/gateway.networking.k8s.io/v1/namespaces/shop/httproutes/reviews', { metadata: { annotations: { churn: String(i) } } }, { 'Content-Type': 'application/merge-patch+json' });
      if (res.status === 200) churned++;
    }
  })();
  const writer = new RouteStatusWriter({ kubeConfig: api.kc, waypoint: 'shop/waypoint', podName: '', logger: silentLogger, minIntervalMs: 1, retryInitialMs: 20 });
  writers.push(writer);
  writer.update(model);
  await waitFor(async () => ((await routeStatus(api)).parents.some((p) => p.controllerName === 'weft.dev/waypoint-controller') ? true : undefined), 'written despite the churn');
  stop = true;
  await churn;
  assert.ok(churned > 0);
  await kubectl(api, ['delete', 'httproute', 'reviews', '-n', 'shop']);
  writer.update(source.current());
});
