/**
 * Issue 12 point 2: security.istio.io/v1 and v1beta1 AuthorizationPolicy and PeerAuthentication
 * are Weft's own. Policies shaped as in Istio's ambient tasks (L4 policy on productpage, the
 * namespace allow-nothing, STRICT mTLS) parse under both Istio versions and decide exactly as
 * the same objects under weft.dev/v1alpha1.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicies, evaluate, mtlsModeForPort } from '../../policy/engine.js';
import { validatePolicyObject } from '../../policy/validate.js';
import type { ConnectionInfo } from '../../policy/authz.js';

const productpageZtunnel = {
  apiVersion: 'security.istio.io/v1',
  kind: 'AuthorizationPolicy',
  metadata: { name: 'productpage-ztunnel', namespace: 'default' },
  spec: { selector: { matchLabels: { app: 'productpage' } }, action: 'ALLOW', rules: [{ from: [{ source: { principals: ['cluster.local/ns/default/sa/bookinfo-gateway-istio'] } }] }] },
};
const denyCurl = {
  apiVersion: 'security.istio.io/v1',
  kind: 'AuthorizationPolicy',
  metadata: { name: 'deny-curl', namespace: 'default' },
  spec: { selector: { matchLabels: { app: 'ratings' } }, action: 'DENY', rules: [{ from: [{ source: { principals: ['cluster.local/ns/default/sa/curl'] } }], to: [{ operation: { ports: ['9080'] } }] }] },
};
const allowNothing = { apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: { name: 'allow-nothing', namespace: 'shop' }, spec: {} };
const strict = { apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: { name: 'default', namespace: 'default' }, spec: { mtls: { mode: 'STRICT' } } };
const permissive9080 = { apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: { name: 'ratings', namespace: 'default' }, spec: { selector: { matchLabels: { app: 'ratings' } }, mtls: { mode: 'STRICT' }, portLevelMtls: { '9080': { mode: 'PERMISSIVE' } } } };
const ISTIO = [productpageZtunnel, denyCurl, allowNothing, strict, permissive9080];

const as = (apiVersion: string) => ISTIO.map((o) => ({ ...o, apiVersion }));
const sa = (ns: string, name: string) => `spiffe://cluster.local/ns/${ns}/sa/${name}`;
const workloads = [
  { namespace: 'default', labels: { app: 'productpage' } },
  { namespace: 'default', labels: { app: 'ratings' } },
  { namespace: 'default', labels: { app: 'details' } },
  { namespace: 'shop', labels: { app: 'cart' } },
];
const conns: ConnectionInfo[] = [
  { sourceIp: '198.18.156.5', sourcePrincipal: sa('default', 'bookinfo-gateway-istio'), destinationIp: '198.18.157.9', destinationPort: 9080 },
  { sourceIp: '198.18.156.6', sourcePrincipal: sa('default', 'curl'), destinationIp: '198.18.157.9', destinationPort: 9080 },
  { sourceIp: '198.18.156.6', sourcePrincipal: sa('default', 'curl'), destinationIp: '198.18.157.9', destinationPort: 9081 },
  { sourceIp: '198.18.156.7', sourcePrincipal: undefined, destinationIp: '198.18.157.9', destinationPort: 9080 },
];

test('Istio-shaped policies validate under security.istio.io/v1 and v1beta1; another version is refused by field', () => {
  for (const v of ['security.istio.io/v1', 'security.istio.io/v1beta1', 'weft.dev/v1alpha1']) {
    for (const o of as(v)) {
      const r = validatePolicyObject(o);
      assert.ok(r.ok, `${v} ${o.metadata.name}: ${JSON.stringify(!r.ok && r.errors)}`);
    }
  }
  const r = validatePolicyObject({ ...allowNothing, apiVersion: 'security.istio.io/v1alpha1' });
  assert.ok(!r.ok && r.errors[0]!.path === 'apiVersion');
});

test("Istio's security apiVersions decide exactly as weft.dev/v1alpha1 (allow, deny, allow-nothing, STRICT and per-port mTLS)", () => {
  const weft = compilePolicies(as('weft.dev/v1alpha1'));
  assert.deepEqual(weft.rejected, []);
  const decisions = (store: ReturnType<typeof compilePolicies>) =>
    workloads.flatMap((w) => conns.map((c) => `${evaluate(store.forWorkload(w), c).allowed} ${mtlsModeForPort(store.forWorkload(w), c.destinationPort)}`));
  const expected = decisions(weft);
  // The decisions are not all alike (the test can fail): some allowed, some denied, both modes.
  assert.ok(expected.some((d) => d.startsWith('true')) && expected.some((d) => d.startsWith('false')));
  assert.ok(expected.some((d) => d.endsWith('PERMISSIVE')) && expected.some((d) => d.endsWith('STRICT')));
  for (const v of ['security.istio.io/v1', 'security.istio.io/v1beta1']) {
    const istio = compilePolicies(as(v));
    assert.deepEqual(istio.rejected, [], v);
    assert.deepEqual(decisions(istio), expected, v);
  }
  // And the mix of both APIs is enforced (not ignored): Istio's DENY beside Weft's ALLOW.
  const mixed = compilePolicies([{ ...productpageZtunnel, apiVersion: 'weft.dev/v1alpha1' }, denyCurl]);
  assert.equal(evaluate(mixed.forWorkload(workloads[1]!), conns[1]!).allowed, false);
});
