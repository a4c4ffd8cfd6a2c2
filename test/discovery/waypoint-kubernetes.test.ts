/**
 * Waypoints in Kubernetes mode (issue 11, point 2) against the lab's API server (in process, on
 * loopback) with the real kubectl: the Gateway API kinds are served (apply, get), the agent's
 * source watches Gateways, HTTPRoutes and GRPCRoutes only when `gateway.networking.k8s.io/v1` is
 * served, builds waypoints from Gateways and their pods (of any node), binds services by label,
 * rebinds at once on a namespace relabel, refuses an invalid waypoint Gateway, and starts
 * watching once the Gateway API's CRDs are installed later.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubernetesSource } from '../../agent/discovery/kubernetes.js';
import { silentLogger } from '../../agent/log.js';
import { gatewayApiCrds } from '../../agent/lab/kube/gateway-api.js';
import { startTestApi, rawRequest, type TestApi } from '../lab/kube-api-helpers.js';
import { waitFor } from '../helpers/wait.js';

const apis: TestApi[] = [];
const sources: KubernetesSource[] = [];
after(async () => {
  for (const s of sources) await s.stop();
  for (const a of apis) await a.close();
});

/** The real kubectl, asynchronously: the API server answers from this process's event loop. */
function kubectl(api: TestApi, args: string[], input?: string): Promise<string> {
  const kubeconfig = join(api.dir, 'kubeconfig');
  writeFileSync(kubeconfig, api.server.kubeconfig({ token: api.server.adminToken }));
  return new Promise((resolve, reject) => {
    const child = execFile('kubectl', ['--kubeconfig', kubeconfig, ...args], { encoding: 'utf8' }, (err, stdout, stderr) => (err ? reject(new Error(`kubectl ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout)));
    child.stdin?.end(input ?? '');
  });
}

const GATEWAY = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: waypoint
  namespace: shop
spec:
  gatewayClassName: weft-waypoint
  listeners:
  - name: mesh
    port: 15008
    protocol: HBONE
`;

const OBJECTS = `apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels:
    weft.dev/mesh: enabled
    weft.dev/use-waypoint: waypoint
---
apiVersion: v1
kind: Service
metadata:
  name: reviews
  namespace: shop
spec:
  selector:
    app: reviews
  ports:
  - port: 9080
---
apiVersion: v1
kind: Service
metadata:
  name: ratings
  namespace: shop
  labels:
    weft.dev/use-waypoint: none
spec:
  selector:
    app: ratings
  ports:
  - port: 9080
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: reviews
  namespace: shop
spec:
  parentRefs:
  - group: ""
    kind: Service
    name: reviews
    port: 9080
  rules:
  - backendRefs:
    - name: reviews
      port: 9080
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata:
  name: grpc
  namespace: shop
spec:
  parentRefs:
  - group: ""
    kind: Service
    name: reviews
---
${GATEWAY}---
apiVersion: v1
kind: Pod
metadata:
  name: waypoint-1
  namespace: shop
  labels:
    gateway.networking.k8s.io/gateway-name: waypoint
    weft.dev/mesh: disabled
spec:
  nodeName: n2
  serviceAccountName: waypoint
  containers:
  - name: waypoint
    image: weft
`;

/** Weft's own CRDs (the agent watches its policies), as `kubectl apply -k daemonset/` installs them. */
const WEFT_CRDS = fileURLToPath(new URL('../../../daemonset/crds/', import.meta.url));
async function installWeftCrds(api: TestApi): Promise<void> {
  await kubectl(api, ['apply', '-f', join(WEFT_CRDS, 'weft.dev_authorizationpolicies.yaml'), '-f', join(WEFT_CRDS, 'weft.dev_peerauthentications.yaml')]);
}

async function markReady(api: TestApi, pod: string, ip: string): Promise<void> {
  const res = await rawRequest(api, 'PATCH', `/api/v1/namespaces/shop/pods/${pod}/status`, { status: { phase: 'Running', podIP: ip, podIPs: [{ ip }], conditions: [{ type: 'Ready', status: 'True' }] } }, { 'Content-Type': 'application/merge-patch+json' });
  assert.equal(res.status, 200, res.text);
}

function source(api: TestApi, options: { gatewayApiRecheckMs?: number } = {}): KubernetesSource {
  const s = new KubernetesSource({ kubeConfig: api.kc, logger: silentLogger, nodeName: 'n1', backoff: { initialMs: 20, maxMs: 100 }, ...options });
  sources.push(s);
  return s;
}

test('kubectl applies and gets the Gateway API kinds; the agent builds waypoints and bindings from them', async () => {
  const api = await startTestApi();
  apis.push(api);
  await installWeftCrds(api);
  assert.match(await kubectl(api, ['get', 'gatewayclass', 'weft-waypoint', '-o', 'name']), /gatewayclass\.gateway\.networking\.k8s\.io\/weft-waypoint/);
  await kubectl(api, ['apply', '-f', '-'], OBJECTS);
  assert.match(await kubectl(api, ['get', 'gateways', '-n', 'shop', '-o', 'name']), /gateway\.gateway\.networking\.k8s\.io\/waypoint/);
  assert.match(await kubectl(api, ['get', 'httproutes,grpcroutes', '-n', 'shop', '-o', 'name']), /httproute\.gateway\.networking\.k8s\.io\/reviews\s+grpcroute\.gateway\.networking\.k8s\.io\/grpc/);
  assert.match(await kubectl(api, ['get', 'gtw', '-n', 'shop']), /waypoint\s+weft-waypoint/);
  await markReady(api, 'waypoint-1', '198.18.127.10');

  const s = source(api);
  const model = await s.start();
  assert.equal(s.gatewayApi, true);
  const w = model.waypoints.get('shop/waypoint');
  assert.ok(w, 'the waypoint is in the first model');
  assert.equal(w.identity, 'spiffe://cluster.local/ns/shop/sa/waypoint');
  assert.deepEqual(w.endpoints.map((e) => `${e.ip}:${e.port}`), ['198.18.127.10:15008'], 'a pod of another node is an endpoint');
  assert.equal(model.services.get('shop/reviews')?.waypoint, 'shop/waypoint', 'bound by the namespace label');
  assert.equal(model.services.get('shop/ratings')?.waypoint, undefined, '`none` opts out');
  const kinds = model.others.map((o) => `${o.apiVersion} ${o.kind} ${o.metadata.name}`).sort();
  assert.deepEqual(kinds.filter((k) => k.startsWith('gateway.networking.k8s.io/')), ['gateway.networking.k8s.io/v1 GRPCRoute grpc', 'gateway.networking.k8s.io/v1 Gateway waypoint', 'gateway.networking.k8s.io/v1 HTTPRoute reviews']);

  await kubectl(api, ['label', 'namespace', 'shop', 'weft.dev/use-waypoint-']);
  await waitFor(() => s.current().services.get('shop/reviews')?.waypoint === undefined, 'the namespace relabel unbinds reviews');

  await kubectl(api, ['apply', '-f', '-'], GATEWAY.replace('name: waypoint', 'name: broken').replace('protocol: HBONE', 'protocol: HTTP'));
  const refusal = await waitFor(() => s.refusals().find((r) => r.object === 'Gateway shop/broken'), 'the invalid waypoint Gateway refused');
  assert.equal(refusal.code, 'WEFT_ERR_WAYPOINT_INVALID');
  assert.match(refusal.reason, /no listener \{protocol: HBONE, port: 15008\}/);
  assert.equal(s.current().waypoints.has('shop/broken'), false);

  await kubectl(api, ['delete', 'pod', '-n', 'shop', 'waypoint-1', '--grace-period=0', '--force', '--wait=false']);
  await waitFor(() => s.current().waypoints.get('shop/waypoint')?.endpoints.length === 0, 'the waypoint down once its pod is gone');
});

test('a server without the Gateway API: no Gateway watch at all, and watching starts once its CRDs are installed', async () => {
  const api = await startTestApi({ gatewayApi: false });
  apis.push(api);
  await installWeftCrds(api);
  const s = source(api, { gatewayApiRecheckMs: 50 });
  await s.start();
  assert.equal(s.gatewayApi, false);
  await assert.rejects(kubectl(api, ['get', 'gateways', '-A']), /the server doesn't have a resource type "gateways"/);

  for (const crd of gatewayApiCrds()) {
    const res = await rawRequest(api, 'POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
    assert.equal(res.status, 201, res.text);
  }
  await kubectl(api, ['apply', '-f', '-'], `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n---\n${GATEWAY}`);
  await waitFor(() => s.current().waypoints.has('shop/waypoint'), 'the Gateway seen once the API exists');
  assert.equal(s.gatewayApi, true);
});
