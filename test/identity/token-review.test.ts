/** The CA's Kubernetes authenticator against a small API server: TokenReview, node from the token or the pod. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { KubeConfig } from '@kubernetes/client-node';
import { TokenReviewAuthenticator } from '../../agent/identity/token-review.js';
import { FakeKubeApi, KUBE_PATHS } from '../helpers/fake-kube-api.js';

const api = new FakeKubeApi(Object.values(KUBE_PATHS));
const AGENT = 'system:serviceaccount:weft-system:weft-agent';
let auth: TokenReviewAuthenticator;

function kcOf(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'fake', server: api.url, skipTLSVerify: true }],
    users: [{ name: 'ca', token: 'ca-token' }],
    contexts: [{ name: 'fake', cluster: 'fake', user: 'ca' }],
    currentContext: 'fake',
  });
  return kc;
}

before(async () => {
  await api.start();
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'fake', server: api.url, skipTLSVerify: true }],
    users: [{ name: 'ca', token: 'ca-token' }],
    contexts: [{ name: 'fake', cluster: 'fake', user: 'ca' }],
    currentContext: 'fake',
  });
  api.tokens.set('bound', { username: AGENT, audiences: ['weft-ca'], extra: { 'authentication.kubernetes.io/node-name': ['node-7'] } });
  api.tokens.set('pod-only', { username: AGENT, audiences: ['weft-ca'], extra: { 'authentication.kubernetes.io/pod-name': ['weft-agent-x1'] } });
  api.tokens.set('other-account', { username: 'system:serviceaccount:shop:cart', audiences: ['weft-ca'], extra: { 'authentication.kubernetes.io/node-name': ['node-7'] } });
  api.tokens.set('wrong-audience', { username: AGENT, audiences: ['https://kubernetes.default.svc'], extra: { 'authentication.kubernetes.io/node-name': ['node-7'] } });
  api.tokens.set('waypoint-bound', { username: 'system:serviceaccount:shop:waypoint', audiences: ['weft-ca'], extra: { 'authentication.kubernetes.io/pod-name': ['waypoint-1'], 'authentication.kubernetes.io/node-name': ['node-2'] } });
  api.upsert(KUBE_PATHS.pods, { metadata: { name: 'weft-agent-x1', namespace: 'weft-system' }, spec: { nodeName: 'node-3', containers: [] } });
  auth = new TokenReviewAuthenticator({ kubeConfig: kc, agentServiceAccount: AGENT });
});
after(() => api.stop());

test('a bound agent token names its node', async () => {
  assert.equal(await auth.authenticate('bound'), 'node-7');
});

test('without the node in the token, the node comes from the agent pod', async () => {
  assert.equal(await auth.authenticate('pod-only'), 'node-3');
});

test('another service account, another audience, an unknown token: refused', async () => {
  assert.equal(await auth.authenticate('other-account'), undefined);
  assert.equal(await auth.authenticate('wrong-audience'), undefined);
  assert.equal(await auth.authenticate('nonsense'), undefined);
  assert.equal(await auth.authenticate(''), undefined);
});

test("another account's pod-bound token is a workload caller (its own identity only), never a node", async () => {
  assert.deepEqual(await auth.authenticateCaller('waypoint-bound'), { node: 'node-2', workload: { namespace: 'shop', serviceAccount: 'waypoint' } });
  assert.equal(await auth.authenticate('waypoint-bound'), undefined, 'not an agent: it does not stand for its node');
  assert.equal(await auth.authenticateCaller('other-account'), undefined, 'not bound to a pod: refused');
  assert.deepEqual(await auth.authenticateCaller('bound'), { node: 'node-7' });
  const agentsOnly = new TokenReviewAuthenticator({ kubeConfig: kcOf(), agentServiceAccount: AGENT, workloadTokens: false });
  assert.equal(await agentsOnly.authenticateCaller('waypoint-bound'), undefined);
});

test('an API server that is away is an error saying so, not a refusal', async () => {
  await api.stop();
  try {
    await assert.rejects(auth.authenticate('never-seen'), (err: Error & { code?: string }) => err.code === 'WEFT_ERR_CA_UNAVAILABLE' && /TokenReview failed/.test(err.message));
  } finally {
    await api.start();
  }
});
