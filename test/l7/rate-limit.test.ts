/** LocalRateLimitPolicy -> RouteRule.rateLimit: targets, precedence, conflicts, status, refusals. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RouteStore } from '../../agent/l7/store.js';
import { validateWeftTrafficObject } from '../../agent/l7/weft/validate.js';
import type { RequestPlan } from '../../agent/l7/types.js';
import { backend, cartRoute, CART_PARENT, grpcRoute, model, request, SHOP } from './helpers.js';

function policy(name: string, targetRefs: unknown[], bucket: Record<string, unknown> = { maxTokens: 10, tokensPerFill: 5, fillInterval: '1s' }, metadata: Record<string, unknown> = {}): Record<string, unknown> {
  return { apiVersion: 'weft.dev/v1alpha1', kind: 'LocalRateLimitPolicy', metadata: { name, namespace: 'shop', ...metadata }, spec: { targetRefs, tokenBucket: bucket } };
}
const toRoute = (name: string, sectionName?: string) => ({ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', name, ...(sectionName !== undefined ? { sectionName } : {}) });
const toService = (name: string) => ({ group: '', kind: 'Service', name });
const twoRules = cartRoute([
  { name: 'api', matches: [{ path: { value: '/api' } }], backendRefs: [backend('cart-v2')] },
  { name: 'rest', backendRefs: [backend('cart-v1')] },
]);

function limitAt(store: RouteStore, path: string, port = 8080, service = 'shop/cart'): RequestPlan & { kind: 'forward' } {
  const p = store.table().plan(service, port, request(path), 0);
  assert.ok(p.kind === 'forward', JSON.stringify(p));
  return p;
}

test('a policy on an HTTPRoute limits each of its rules (one bucket per rule); on a rule, only that rule', () => {
  const store = new RouteStore();
  store.update(model(SHOP, [twoRules, policy('all', [toRoute('cart')])]));
  assert.deepEqual(store.rejected(), []);
  assert.deepEqual(limitAt(store, '/api/x').rule!.rateLimit, { policy: 'LocalRateLimitPolicy shop/all', maxTokens: 10, tokensPerFill: 5, fillIntervalMs: 1000 });
  assert.equal(limitAt(store, '/other').rule!.rateLimit!.policy, 'LocalRateLimitPolicy shop/all');
  // rulesFor still lists each rule once (the limit does not split a rule's matches).
  assert.equal(store.table().rulesFor('shop/cart', 8080).length, 2);

  store.update(model(SHOP, [twoRules, policy('api-only', [toRoute('cart', 'api')], { maxTokens: 1, fillInterval: '100ms' })]));
  assert.deepEqual(limitAt(store, '/api').rule!.rateLimit, { policy: 'LocalRateLimitPolicy shop/api-only', maxTokens: 1, tokensPerFill: 1, fillIntervalMs: 100 });
  assert.equal(limitAt(store, '/other').rule!.rateLimit, undefined);
});

test('a policy on a Service: one shared bucket for every rule of every route on it, and a rule of its own where no route is', () => {
  const store = new RouteStore();
  store.update(model(SHOP, [twoRules, policy('svc', [toService('cart'), toService('cart-v1')])]));
  const a = limitAt(store, '/api').rule!.rateLimit!;
  const b = limitAt(store, '/other').rule!.rateLimit!;
  assert.equal(a.bucket, 'LocalRateLimitPolicy shop/svc Service shop/cart');
  assert.equal(a, b, 'the same limit object, the same bucket');
  // Port 9090 of cart has no route; cart-v1 has none at all: still limited, forwarded unchanged.
  const unrouted = limitAt(store, '/x', 8080, 'shop/cart-v1');
  assert.equal(unrouted.rule!.rateLimit!.bucket, 'LocalRateLimitPolicy shop/svc Service shop/cart-v1');
  assert.deepEqual(unrouted.backend, { service: 'shop/cart-v1', port: 8080 });
  assert.equal(unrouted.pathAndQuery, '/x');
  assert.equal(store.table().routed('shop/cart-v1', 8080), false, 'a limit is not a route: no 404 for unmatched paths');
  assert.equal(limitAt(store, '/x', 9090).rule!.rateLimit!.bucket, 'LocalRateLimitPolicy shop/svc Service shop/cart');
});

test('precedence: the rule\'s policy, else the route\'s, else the Service\'s; two on one target: the oldest, the other Conflicted', () => {
  const store = new RouteStore();
  store.update(
    model(SHOP, [
      twoRules,
      policy('svc', [toService('cart')]),
      policy('route', [toRoute('cart')], undefined, { creationTimestamp: '2026-02-01T00:00:00Z' }),
      policy('route-older', [toRoute('cart')], undefined, { creationTimestamp: '2026-01-01T00:00:00Z' }),
      policy('rule', [toRoute('cart', 'api')]),
    ]),
  );
  assert.equal(limitAt(store, '/api').rule!.rateLimit!.policy, 'LocalRateLimitPolicy shop/rule');
  assert.equal(limitAt(store, '/other').rule!.rateLimit!.policy, 'LocalRateLimitPolicy shop/route-older');
  const c = store.statuses().find((s) => s.route === 'LocalRateLimitPolicy shop/route')!.parents[0]!;
  assert.equal(c.parent, 'HTTPRoute shop/cart');
  assert.deepEqual(c.parentRef, { group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespace: 'shop', name: 'cart' });
  assert.equal(c.conditions[0]!.reason, 'Conflicted');
  assert.match(c.conditions[0]!.message, /already has LocalRateLimitPolicy shop\/route-older/);
  assert.equal(store.statuses().find((s) => s.route === 'LocalRateLimitPolicy shop/rule')!.parents[0]!.conditions[0]!.status, 'True');
});

test('a GRPCRoute target; missing targets are TargetNotFound and limit nothing', () => {
  const store = new RouteStore();
  const g = grpcRoute('g', { parentRefs: [{ ...CART_PARENT, port: 9090 }], rules: [{ backendRefs: [backend('cart-v1')] }] });
  store.update(model(SHOP, [g, policy('p', [{ group: 'gateway.networking.k8s.io', kind: 'GRPCRoute', name: 'g' }, toRoute('gone'), toRoute('g', 'nope'), toService('ghost')])]));
  const p = store.table().plan('shop/cart', 9090, request('/a.B/C', { method: 'POST', headers: { 'content-type': 'application/grpc' } }), 0);
  assert.ok(p.kind === 'forward' && p.rule!.rateLimit!.policy === 'LocalRateLimitPolicy shop/p');
  const reasons = store.statuses().find((s) => s.route === 'LocalRateLimitPolicy shop/p')!.parents.map((x) => `${x.parent}: ${x.conditions[0]!.reason}`);
  assert.deepEqual(reasons, ['GRPCRoute shop/g: Accepted', 'HTTPRoute shop/gone: TargetNotFound', 'HTTPRoute shop/g rule nope: TargetNotFound', 'Service shop/ghost: TargetNotFound']);
});

const refusals: [string, unknown[], Record<string, unknown>, string, RegExp][] = [
  ['no targetRefs', [], { maxTokens: 1, fillInterval: '1s' }, 'spec.targetRefs', /greater or equal to 1/],
  ['a target kind', [{ group: 'apps', kind: 'Deployment', name: 'x' }], { maxTokens: 1, fillInterval: '1s' }, 'spec.targetRefs[0].kind', /HTTPRoute or GRPCRoute .* or a Service/],
  ['sectionName on a Service', [{ group: '', kind: 'Service', name: 'cart', sectionName: 'http' }], { maxTokens: 1, fillInterval: '1s' }, 'spec.targetRefs[0].sectionName', /not supported for a Service/],
  ['maxTokens 0', [toService('cart')], { maxTokens: 0, fillInterval: '1s' }, 'spec.tokenBucket.maxTokens', /1-1000000000/],
  ['a fill interval under 50ms', [toService('cart')], { maxTokens: 1, fillInterval: '10ms' }, 'spec.tokenBucket.fillInterval', /at least 50ms/],
  ['a fill interval that is no duration', [toService('cart')], { maxTokens: 1, fillInterval: '1.5s' }, 'spec.tokenBucket.fillInterval', /Gateway API duration/],
  ['tokensPerFill over maxTokens', [toService('cart')], { maxTokens: 2, tokensPerFill: 3, fillInterval: '1s' }, 'spec.tokenBucket.tokensPerFill', /not be greater than maxTokens/],
  ['the same target twice', [toService('cart'), toService('cart')], { maxTokens: 1, fillInterval: '1s' }, 'spec.targetRefs[1]', /same target twice/],
];
for (const [name, targets, bucket, path, message] of refusals) {
  test(`LocalRateLimitPolicy refused by field: ${name}`, () => {
    const v = validateWeftTrafficObject(policy('p', targets, bucket));
    assert.equal(v.ok, false);
    const e = v.ok ? undefined : v.errors.find((x) => x.path === path);
    assert.ok(e !== undefined, JSON.stringify(v));
    assert.match(e.message, message);
  });
}

test('a policy that turns invalid keeps its last good version; its status says so on each target', () => {
  const store = new RouteStore();
  store.update(model(SHOP, [twoRules, policy('p', [toRoute('cart')], { maxTokens: 3, fillInterval: '1s' }, { generation: 1 })]));
  store.update(model(SHOP, [twoRules, policy('p', [toRoute('cart')], { maxTokens: 3, fillInterval: '1ms' }, { generation: 2 })]));
  const [r] = store.rejected();
  assert.equal(r!.kind, 'LocalRateLimitPolicy');
  assert.equal(r!.servingGeneration, 1);
  assert.equal(limitAt(store, '/').rule!.rateLimit!.maxTokens, 3);
  const fresh = new RouteStore();
  fresh.update(model(SHOP, [twoRules, policy('p', [toRoute('cart')], { maxTokens: 3, fillInterval: '1ms' })]));
  assert.equal(limitAt(fresh, '/').rule!.rateLimit, undefined);
  const st = fresh.statuses().find((s) => s.route === 'LocalRateLimitPolicy shop/p')!;
  assert.equal(st.parents[0]!.parent, 'HTTPRoute shop/cart');
  assert.equal(st.parents[0]!.conditions[0]!.reason, 'UnsupportedValue');
});

test('the Kubernetes status of a policy is GEP-713\'s: ancestors with ancestorRef, controllerName and conditions; other controllers kept', async () => {
  const { kubernetesPolicyStatus, ROUTE_CONTROLLER_NAME } = await import('../../agent/l7/status.js');
  const store = new RouteStore();
  store.update(model(SHOP, [twoRules, policy('p', [toRoute('cart'), toService('ghost')], undefined, { generation: 4 })]));
  const st = store.statuses().find((s) => s.route === 'LocalRateLimitPolicy shop/p')!;
  const foreign = { ancestorRef: { group: '', kind: 'Service', namespace: 'shop', name: 'x' }, controllerName: 'other.io/c', conditions: [] };
  const first = kubernetesPolicyStatus(st, { ancestors: [foreign] }, '2026-12-01T00:00:00Z') as { ancestors: { ancestorRef: { kind: string }; controllerName: string; conditions: { reason: string; lastTransitionTime: string; observedGeneration?: number }[] }[] };
  assert.deepEqual(first.ancestors[0], foreign);
  assert.deepEqual(first.ancestors.slice(1).map((a) => [a.ancestorRef.kind, a.controllerName, a.conditions[0]!.reason, a.conditions[0]!.observedGeneration]), [
    ['HTTPRoute', ROUTE_CONTROLLER_NAME, 'Accepted', 4],
    ['Service', ROUTE_CONTROLLER_NAME, 'TargetNotFound', 4],
  ]);
  const again = kubernetesPolicyStatus(st, first, '2026-12-02T00:00:00Z') as typeof first;
  assert.equal(again.ancestors[1]!.conditions[0]!.lastTransitionTime, '2026-12-01T00:00:00Z', 'unchanged status keeps its transition time');
});
