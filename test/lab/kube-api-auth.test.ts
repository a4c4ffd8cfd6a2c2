/**
 * Authentication and authorization of the lab's API server: bearer tokens, TokenRequest with
 * audiences and pod binding, TokenReview as Kubernetes 1.32 answers it (and the CA's own
 * TokenReview authenticator against it), RBAC from the shipped daemonset/rbac.yaml with
 * Kubernetes' exact 403, Roles with resourceNames and subresources, SelfSubjectAccessReview.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { parseAllDocuments } from 'yaml';
import { AuthenticationV1Api, AuthorizationV1Api, CoreV1Api, KubernetesObjectApi, PatchStrategy, setHeaderOptions, type KubernetesObject, type V1Pod } from '@kubernetes/client-node';
import { TokenReviewAuthenticator } from '../../agent/identity/token-review.js';
import { rawRequest, startTestApi, statusOf, type TestApi } from './kube-api-helpers.js';

let api: TestApi;
let core: CoreV1Api;
let clock = Date.now();
let agentPod: V1Pod;
const AGENT = 'system:serviceaccount:weft-system:weft-agent';

async function applyFile(path: string): Promise<void> {
  const objects = KubernetesObjectApi.makeApiClient(api.kc);
  for (const doc of parseAllDocuments(await readFile(new URL(`../../../${path}`, import.meta.url), 'utf8'))) {
    const o = doc.toJS() as KubernetesObject | null;
    if (o !== null) await objects.create(o);
  }
}

before(async () => {
  api = await startTestApi({ now: () => clock });
  core = api.kc.makeApiClient(CoreV1Api);
  await applyFile('daemonset/namespace.yaml');
  await applyFile('daemonset/rbac.yaml');
  await core.createNode({ body: { metadata: { name: 'node-1' } } });
  agentPod = await core.createNamespacedPod({ namespace: 'weft-system', body: { metadata: { name: 'weft-agent-abcde' }, spec: { nodeName: 'node-1', serviceAccountName: 'weft-agent', containers: [{ name: 'agent', image: 'weft' }] } } });
});
after(() => api?.close());

function tokenRequest(sa: string, spec: Record<string, unknown>) {
  return core.createNamespacedServiceAccountToken({ namespace: 'weft-system', name: sa, body: { spec } as never });
}

test('no token or an unknown token is 401 Unauthorized', async () => {
  for (const token of ['', 'not-a-token', `${api.server.adminToken}x`]) {
    const r = await rawRequest(api, 'GET', '/api/v1/pods', undefined, token === '' ? { Authorization: '' } : {}, token);
    assert.equal(r.status, 401, `token "${token.slice(0, 8)}"`);
    assert.equal((JSON.parse(r.text) as { reason: string }).reason, 'Unauthorized');
  }
  assert.equal((await rawRequest(api, 'GET', '/api/v1/pods')).status, 200, 'the admin token works');
});

test('TokenRequest bound to a pod, reviewed by TokenReview: user, groups and the pod and node extras', async () => {
  const tr = await tokenRequest('weft-agent', { audiences: ['weft-ca'], expirationSeconds: 3600, boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: agentPod.metadata!.name!, uid: agentPod.metadata!.uid! } });
  const token = tr.status!.token;
  assert.equal(token.split('.').length, 3, 'a JWT');
  const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
  assert.equal(claims['sub'], AGENT);
  assert.deepEqual(claims['aud'], ['weft-ca']);
  assert.ok(tr.status!.expirationTimestamp.getTime() > clock);
  const caToken = api.server.issueToken('weft-system', 'weft-ca');
  const auth = api.kcFor(caToken).makeApiClient(AuthenticationV1Api);
  const review = await auth.createTokenReview({ body: { spec: { token, audiences: ['weft-ca'] } } });
  assert.equal(review.status?.authenticated, true);
  assert.equal(review.status?.user?.username, AGENT);
  assert.deepEqual(review.status?.user?.groups, ['system:serviceaccounts', 'system:serviceaccounts:weft-system', 'system:authenticated']);
  assert.deepEqual(review.status?.audiences, ['weft-ca']);
  const extra = review.status?.user?.extra ?? {};
  assert.deepEqual(extra['authentication.kubernetes.io/pod-name'], ['weft-agent-abcde']);
  assert.deepEqual(extra['authentication.kubernetes.io/pod-uid'], [agentPod.metadata!.uid!]);
  assert.deepEqual(extra['authentication.kubernetes.io/node-name'], ['node-1']);
  assert.match(extra['authentication.kubernetes.io/credential-id']?.[0] ?? '', /^JTI=/);
  // The CA's authenticator (agent/identity/token-review.ts) gets the node from it.
  const authenticator = new TokenReviewAuthenticator({ kubeConfig: api.kcFor(caToken), agentServiceAccount: AGENT, cacheMs: 1 });
  assert.equal(await authenticator.authenticate(token), 'node-1');

  const wrongAudience = await auth.createTokenReview({ body: { spec: { token, audiences: ['other'] } } });
  assert.notEqual(wrongAudience.status?.authenticated, true);
  assert.match(wrongAudience.status?.error ?? '', /audience/);
  const againstApi = await rawRequest(api, 'GET', '/api/v1/namespaces', undefined, {}, token);
  assert.equal(againstApi.status, 401, 'a weft-ca token is not an API token');
});

test('a bound token stops being valid when its pod is gone; every token when it expires', async () => {
  const p = await core.createNamespacedPod({ namespace: 'weft-system', body: { metadata: { name: 'weft-agent-short' }, spec: { nodeName: 'node-1', serviceAccountName: 'weft-agent', containers: [{ name: 'a', image: 'weft' }] } } });
  const bound = (await tokenRequest('weft-agent', { audiences: ['weft-ca'], boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: 'weft-agent-short' } })).status!.token;
  const unbound = (await tokenRequest('weft-agent', { expirationSeconds: 600 })).status!.token;
  const auth = api.kc.makeApiClient(AuthenticationV1Api);
  const ok = async (token: string, audiences?: string[]) => (await auth.createTokenReview({ body: { spec: { token, ...(audiences ? { audiences } : {}) } } })).status?.authenticated === true;
  assert.equal(await ok(bound, ['weft-ca']), true);
  assert.equal(await ok(unbound), true, 'default audience is the API server');
  assert.equal((await rawRequest(api, 'GET', '/api/v1/namespaces/weft-system/pods', undefined, {}, unbound)).status, 200, 'usable against the API');
  await core.deleteNamespacedPod({ namespace: 'weft-system', name: p.metadata!.name!, gracePeriodSeconds: 0 });
  assert.equal(await ok(bound, ['weft-ca']), false, 'pod deleted');
  clock += 601_000;
  try {
    assert.equal(await ok(unbound), false, 'expired');
  } finally {
    clock -= 601_000;
  }
});

test('TokenRequest refuses a missing account, a pod of another account and a too short expiry', async () => {
  assert.equal((await statusOf(tokenRequest('nobody', {}))).code, 404);
  await core.createNamespacedPod({ namespace: 'weft-system', body: { metadata: { name: 'ca-pod' }, spec: { serviceAccountName: 'weft-ca', containers: [{ name: 'a', image: 'weft' }] } } });
  const other = await statusOf(tokenRequest('weft-agent', { boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: 'ca-pod' } }));
  assert.equal(other.code, 400);
  const short = await statusOf(tokenRequest('weft-agent', { expirationSeconds: 60 }));
  assert.equal(short.code, 422);
  assert.match(short.body.message ?? '', /may not specify a duration less than 10 minutes/);
});

test("RBAC from daemonset/rbac.yaml: the agent may list and watch what it reads, nothing else, with Kubernetes' 403", async () => {
  const agent = api.kcFor(api.server.issueToken('weft-system', 'weft-agent')).makeApiClient(CoreV1Api);
  assert.ok((await agent.listPodForAllNamespaces()).items.length > 0);
  await agent.listServiceForAllNamespaces();
  await agent.listNamespace();
  const get = await statusOf(agent.readNamespace({ name: 'weft-system' }));
  assert.equal(get.body.message, `namespaces "weft-system" is forbidden: User "${AGENT}" cannot get resource "namespaces" in API group "" at the cluster scope`, 'list and watch do not grant get');
  const create = await statusOf(agent.createNamespacedPod({ namespace: 'default', body: { metadata: { name: 'x' }, spec: { containers: [{ name: 'a', image: 'b' }] } } }));
  assert.equal(create.code, 403);
  assert.equal(create.body.reason, 'Forbidden');
  assert.equal(create.body.message, `pods is forbidden: User "${AGENT}" cannot create resource "pods" in API group "" in the namespace "default"`);
  assert.deepEqual(create.body.details, { kind: 'pods' });
  const secrets = await statusOf(agent.listSecretForAllNamespaces());
  assert.equal(secrets.body.message, `secrets is forbidden: User "${AGENT}" cannot list resource "secrets" in API group "" at the cluster scope`);
  const named = await statusOf(agent.readNamespacedSecret({ namespace: 'weft-system', name: 'weft-ca-keys' }));
  assert.equal(named.body.message, `secrets "weft-ca-keys" is forbidden: User "${AGENT}" cannot get resource "secrets" in API group "" in the namespace "weft-system"`);
  const review = await statusOf(api.kcFor(api.server.issueToken('weft-system', 'weft-agent')).makeApiClient(AuthenticationV1Api).createTokenReview({ body: { spec: { token: 'x' } } }));
  assert.equal(review.body.message, `tokenreviews.authentication.k8s.io is forbidden: User "${AGENT}" cannot create resource "tokenreviews" in API group "authentication.k8s.io" at the cluster scope`);
  const ca = api.kcFor(api.server.issueToken('weft-system', 'weft-ca')).makeApiClient(AuthenticationV1Api);
  assert.equal((await ca.createTokenReview({ body: { spec: { token: 'x' } } })).status?.authenticated, undefined, 'the CA may review (an invalid token)');
  // The CA's Role names its Secret: allowed (so 404 while it does not exist), any other Secret 403.
  const caCore = api.kcFor(api.server.issueToken('weft-system', 'weft-ca')).makeApiClient(CoreV1Api);
  assert.equal((await statusOf(caCore.readNamespacedSecret({ namespace: 'weft-system', name: 'weft-ca-keys' }))).code, 404);
  assert.equal((await statusOf(caCore.readNamespacedSecret({ namespace: 'weft-system', name: 'other' }))).code, 403);
  assert.equal((await statusOf(caCore.readNamespacedSecret({ namespace: 'default', name: 'weft-ca-keys' }))).code, 403, 'a Role grants only in its namespace');
});

test('Roles: namespaces, resourceNames and the pods/status subresource', async () => {
  await core.createNamespace({ body: { metadata: { name: 'shop' } } });
  await core.createNamespacedServiceAccount({ namespace: 'shop', body: { metadata: { name: 'kubelet-ish' } } });
  for (const n of ['a', 'b']) await core.createNamespacedPod({ namespace: 'shop', body: { metadata: { name: n }, spec: { containers: [{ name: 'c', image: 'i' }] } } });
  const objects = KubernetesObjectApi.makeApiClient(api.kc);
  await objects.create({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'status-of-a', namespace: 'shop' }, rules: [{ apiGroups: [''], resources: ['pods/status'], resourceNames: ['a'], verbs: ['get', 'patch'] }] } as KubernetesObject);
  await objects.create({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'status-of-a', namespace: 'shop' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'status-of-a' }, subjects: [{ kind: 'ServiceAccount', name: 'kubelet-ish', namespace: 'shop' }] } as KubernetesObject);
  const who = 'system:serviceaccount:shop:kubelet-ish';
  const client = api.kcFor(api.server.issueToken('shop', 'kubelet-ish')).makeApiClient(CoreV1Api);
  const patched = await client.patchNamespacedPodStatus({ namespace: 'shop', name: 'a', body: { status: { phase: 'Running' } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  assert.equal(patched.status?.phase, 'Running');
  const other = await statusOf(client.patchNamespacedPodStatus({ namespace: 'shop', name: 'b', body: { status: { phase: 'Running' } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch)));
  assert.equal(other.body.message, `pods "b" is forbidden: User "${who}" cannot patch resource "pods/status" in API group "" in the namespace "shop"`);
  const main = await statusOf(client.patchNamespacedPod({ namespace: 'shop', name: 'a', body: { metadata: { labels: { x: 'y' } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch)));
  assert.equal(main.code, 403, 'pods/status does not grant pods');
  // The status subresource changes status only; the main resource never changes status.
  const viaMain = await core.patchNamespacedPod({ namespace: 'shop', name: 'a', body: { metadata: { labels: { x: 'y' } }, status: { phase: 'Failed' } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  assert.equal(viaMain.status?.phase, 'Running');
  const viaStatus = await core.patchNamespacedPodStatus({ namespace: 'shop', name: 'a', body: { metadata: { labels: { z: 'w' } }, status: { podIP: '198.18.0.9' } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  assert.equal(viaStatus.status?.podIP, '198.18.0.9');
  assert.equal(viaStatus.metadata?.labels?.['z'], undefined);
});

test('SelfSubjectAccessReview answers for the caller (weft check uses it)', async () => {
  const authz = api.kcFor(api.server.issueToken('weft-system', 'weft-agent')).makeApiClient(AuthorizationV1Api);
  const ask = async (verb: string, resource: string, group = '', namespace = '') =>
    (await authz.createSelfSubjectAccessReview({ body: { spec: { resourceAttributes: { verb, resource, group, namespace } } } })).status?.allowed;
  assert.equal(await ask('watch', 'pods'), true);
  assert.equal(await ask('list', 'authorizationpolicies', 'weft.dev'), true);
  assert.equal(await ask('create', 'pods', '', 'default'), false);
  assert.equal(await ask('create', 'tokenreviews', 'authentication.k8s.io'), false);
});
