/**
 * Optional kinds in Kubernetes mode (issue 11 leftovers, point 3), against the lab's API server
 * in process: a kind the account may not list (403) or whose CRD is not installed (404) does not
 * hold the first model; it is reported (optionalKinds(), refusals() with
 * WEFT_ERR_KIND_UNAVAILABLE for 403) and picked up without a restart once the permission is
 * granted or the CRD installed (Istio's CRDs applied after the agent started).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { KubernetesSource } from '../../agent/discovery/kubernetes.js';
import { silentLogger } from '../../agent/log.js';
import { startTestApi, rawRequest, type TestApi } from '../lab/kube-api-helpers.js';
import { waitFor } from '../helpers/wait.js';
import { installWeftCrds } from './weft-crds.js';

const apis: TestApi[] = [];
const sources: KubernetesSource[] = [];
after(async () => {
  for (const s of sources) await s.stop();
  for (const a of apis) await a.close();
});

async function ok(api: TestApi, method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await rawRequest(api, method, path, body);
  assert.ok(res.status >= 200 && res.status < 300, `${method} ${path}: ${res.status} ${res.text}`);
  return JSON.parse(res.text) as Record<string, unknown>;
}

function istioCrd(group: string, kind: string, plural: string): unknown {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.${group}` },
    spec: {
      group,
      names: { kind, listKind: `${kind}List`, plural, singular: kind.toLowerCase() },
      scope: 'Namespaced',
      versions: [{ name: 'v1', served: true, storage: true, subresources: { status: {} }, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
    },
  };
}

/** A service account whose ClusterRole reads the required kinds and Weft's, but not the Gateway API. */
async function agentWithoutGatewayApiRbac(api: TestApi): Promise<string> {
  await ok(api, 'POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'weft-system' } });
  await ok(api, 'POST', '/api/v1/namespaces/weft-system/serviceaccounts', { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'agent' } });
  await ok(api, 'POST', '/apis/rbac.authorization.k8s.io/v1/clusterroles', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name: 'agent' },
    rules: [
      { apiGroups: [''], resources: ['namespaces', 'pods', 'services'], verbs: ['list', 'watch'] },
      { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] },
      { apiGroups: ['weft.dev'], resources: ['authorizationpolicies', 'peerauthentications'], verbs: ['list', 'watch'] },
    ],
  });
  await ok(api, 'POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: 'agent' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'agent' },
    subjects: [{ kind: 'ServiceAccount', name: 'agent', namespace: 'weft-system' }],
  });
  const review = await ok(api, 'POST', '/api/v1/namespaces/weft-system/serviceaccounts/agent/token', { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } });
  return (review['status'] as { token: string }).token;
}

/** start() or a failure after `ms` (the old code never resolved: the test must not hang). */
async function startWithin(s: KubernetesSource, ms: number): ReturnType<KubernetesSource['start']> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([s.start(), new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`start() did not resolve within ${ms} ms: an optional kind holds the first sync`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

const GATEWAY = {
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'Gateway',
  metadata: { name: 'waypoint', namespace: 'default' },
  spec: { gatewayClassName: 'weft-waypoint', listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }] },
};

test('a 403 on the Gateway API kinds does not hold the first model; granting them later starts the watches without a restart', async () => {
  const api = await startTestApi();
  apis.push(api);
  await installWeftCrds(api);
  const token = await agentWithoutGatewayApiRbac(api);
  await ok(api, 'POST', '/apis/gateway.networking.k8s.io/v1/namespaces/default/gateways', GATEWAY);

  const s = new KubernetesSource({ kubeConfig: api.kcFor(token), logger: silentLogger, nodeName: 'n1', backoff: { initialMs: 20, maxMs: 100 }, gatewayApiRecheckMs: 50 });
  sources.push(s);
  const model = await startWithin(s, 10_000);
  assert.equal(model.waypoints.size, 0);
  const states = new Map(s.optionalKinds().map((k) => [k.kind, k]));
  assert.equal(states.get('gateway.networking.k8s.io/v1 Gateway')?.state, 'forbidden');
  assert.match(states.get('gateway.networking.k8s.io/v1 Gateway')?.reason ?? '', /403/);
  assert.equal(states.get('networking.istio.io/v1 VirtualService')?.state, 'not-served', 'Istio CRDs not installed: 404');
  const refusal = s.refusals().find((r) => r.object === 'kind gateway.networking.k8s.io/v1 Gateway');
  assert.equal(refusal?.code, 'WEFT_ERR_KIND_UNAVAILABLE');
  assert.equal(s.refusals().some((r) => r.object.includes('VirtualService')), false, 'a kind not installed is no refusal');

  await ok(api, 'POST', '/apis/rbac.authorization.k8s.io/v1/clusterroles', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name: 'agent-gateway-api' },
    rules: [{ apiGroups: ['gateway.networking.k8s.io'], resources: ['gateways', 'httproutes', 'grpcroutes'], verbs: ['list', 'watch'] }],
  });
  await ok(api, 'POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: 'agent-gateway-api' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'agent-gateway-api' },
    subjects: [{ kind: 'ServiceAccount', name: 'agent', namespace: 'weft-system' }],
  });
  await waitFor(() => s.current().waypoints.has('default/waypoint'), 'the Gateway watched once the permission is granted');
  assert.equal(new Map(s.optionalKinds().map((k) => [k.kind, k.state])).get('gateway.networking.k8s.io/v1 Gateway'), 'watching');
  // HTTPRoute and GRPCRoute retry on their own backoff: they follow.
  await waitFor(() => !s.refusals().some((r) => r.code === 'WEFT_ERR_KIND_UNAVAILABLE'), 'no kind forbidden any more');
});

test("Istio's CRDs installed after the agent started are watched without a restart; a CRD deleted again takes its objects with it", async () => {
  const api = await startTestApi();
  apis.push(api);
  await installWeftCrds(api);
  const s = new KubernetesSource({ kubeConfig: api.kc, logger: silentLogger, nodeName: 'n1', backoff: { initialMs: 20, maxMs: 100 }, gatewayApiRecheckMs: 50 });
  sources.push(s);
  await startWithin(s, 10_000);
  assert.equal(new Map(s.optionalKinds().map((k) => [k.kind, k.state])).get('security.istio.io/v1 AuthorizationPolicy'), 'not-served');

  await ok(api, 'POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', istioCrd('security.istio.io', 'AuthorizationPolicy', 'authorizationpolicies'));
  await ok(api, 'POST', '/apis/security.istio.io/v1/namespaces/default/authorizationpolicies', {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name: 'deny-all', namespace: 'default' },
    spec: {},
  });
  await waitFor(() => s.current().others.some((o) => o.apiVersion === 'security.istio.io/v1' && o.metadata.name === 'deny-all'), 'the Istio policy seen once its CRD exists');
  assert.equal(new Map(s.optionalKinds().map((k) => [k.kind, k.state])).get('security.istio.io/v1 AuthorizationPolicy'), 'watching');

  await ok(api, 'DELETE', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/authorizationpolicies.security.istio.io');
  await waitFor(() => !s.current().others.some((o) => o.apiVersion === 'security.istio.io/v1'), 'the policy gone with its CRD');
});
