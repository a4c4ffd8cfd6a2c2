/**
 * The policy matcher is reentrant (issue 11, "the shape"): each decision's derived values
 * (parsed addresses, principal, namespace) belong to that decision. With the module-level
 * scratch the matcher had, starting a second decision in the middle of a first one made the
 * first answer with the second connection's values: both tests below failed on that code
 * (there, `beginMatch` reset shared state and `matchesPolicy(p)` read it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { beginMatch, compileAuthorizationPolicy, matchesPolicy, type ConnectionInfo } from '../../policy/authz.js';
import { compilePolicies, evaluate } from '../../policy/engine.js';
import { validatePolicyObject } from '../../policy/validate.js';
import type { AuthorizationPolicy } from '../../policy/schema.js';

function policy(name: string, rules: unknown[], action = 'ALLOW'): AuthorizationPolicy {
  const obj = { apiVersion: 'weft.dev/v1alpha1', kind: 'AuthorizationPolicy', metadata: { name, namespace: 'shop' }, spec: { action, rules } };
  const v = validatePolicyObject(obj);
  assert.ok(v.ok, JSON.stringify(v));
  return v.value as AuthorizationPolicy;
}

const fromA: ConnectionInfo = { sourceIp: '198.18.215.2', sourcePrincipal: 'spiffe://cluster.local/ns/alpha/sa/a', trustDomain: 'cluster.local', destinationIp: '198.18.215.3', destinationPort: 9080 };
const fromB: ConnectionInfo = { sourceIp: '198.18.216.2', sourcePrincipal: 'spiffe://cluster.local/ns/beta/sa/b', trustDomain: 'cluster.local', destinationIp: '198.18.216.3', destinationPort: 80 };

const byIp = compileAuthorizationPolicy(policy('by-ip', [{ from: [{ source: { ipBlocks: ['198.18.215.0/24'] } }] }]), 'shop');
const byNamespace = compileAuthorizationPolicy(policy('by-ns', [{ from: [{ source: { namespaces: ['alpha'] } }] }]), 'shop');
const byPrincipal = compileAuthorizationPolicy(policy('by-principal', [{ from: [{ source: { principals: ['cluster.local/ns/alpha/sa/a'] } }] }]), 'shop');
const byPort = compileAuthorizationPolicy(policy('by-port', [{ to: [{ operation: { ports: ['9080'] } }] }]), 'shop');

test('two decisions built side by side keep their own connection and derived values', () => {
  const a = beginMatch(fromA);
  // A's address, principal and namespace are derived (and cached) before B starts.
  assert.equal(matchesPolicy(a, byIp), true);
  assert.equal(matchesPolicy(a, byNamespace), true);
  const b = beginMatch(fromB);
  for (const p of [byIp, byNamespace, byPrincipal, byPort]) assert.equal(matchesPolicy(b, p), false, `B does not match ${p.key}`);
  // Back to A after B derived its own values.
  for (const p of [byIp, byNamespace, byPrincipal, byPort]) assert.equal(matchesPolicy(a, p), true, `A still matches ${p.key}`);
});

test('a whole decision made from within another (as from a callback) leaves the outer one intact', () => {
  const store = compilePolicies([
    { apiVersion: 'weft.dev/v1alpha1', kind: 'AuthorizationPolicy', metadata: { name: 'only-alpha', namespace: 'shop' }, spec: { rules: [{ from: [{ source: { namespaces: ['alpha'], ipBlocks: ['198.18.215.0/24'] } }] }] } },
  ]);
  const wp = store.forWorkload({ namespace: 'shop', labels: {} });
  const outer = beginMatch(fromA);
  assert.equal(matchesPolicy(outer, byIp), true);
  const inner = evaluate(wp, fromB);
  assert.equal(inner.allowed, false);
  assert.equal(inner.reason, 'no-allow-match');
  assert.equal(matchesPolicy(outer, byNamespace), true);
  assert.equal(matchesPolicy(outer, byIp), true);
  assert.equal(evaluate(wp, fromA).allowed, true);
  // Contexts are reused once a decision ended, never while one is under way.
  const another = beginMatch(fromB);
  assert.notEqual(another, outer);
  assert.equal(matchesPolicy(outer, byPrincipal), true);
  assert.equal(matchesPolicy(another, byPrincipal), false);
});
