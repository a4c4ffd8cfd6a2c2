import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backend, cartRoute, grpcRoute, CART_PARENT, request, table } from './helpers.js';
import type { RequestPlan, RequestView } from '../../agent/l7/types.js';

/** The rule name of the plan (which rule won). */
function winner(plan: RequestPlan): string | undefined {
  return plan.kind === 'reply' && plan.rule === undefined ? undefined : plan.rule?.name;
}

function rule(match: unknown, to = 'cart-v1'): unknown {
  return { matches: [match], backendRefs: [backend(to)] };
}

/** Two single-rule routes `a` and `b`; which one wins for `req`. The rules are given in both orders. */
function contest(a: unknown, b: unknown, req: RequestView): string {
  const first = table([cartRoute([a, b], 'r')]);
  const second = table([cartRoute([b, a], 'r')]);
  const w1 = winner(first.plan('shop/cart', 8080, req, 0));
  const w2 = winner(second.plan('shop/cart', 8080, req, 0));
  // rule 0 in the first table is `a`, rule 1 in the second table is `a`.
  const n1 = w1 === 'HTTPRoute shop/r rule 0' ? 'a' : 'b';
  const n2 = w2 === 'HTTPRoute shop/r rule 1' ? 'a' : 'b';
  assert.equal(n1, n2, 'precedence must not depend on rule order when the criteria differ');
  return n1;
}

const cases: { name: string; a: unknown; b: unknown; req: RequestView }[] = [
  { name: 'Exact path beats PathPrefix', a: { path: { type: 'Exact', value: '/foo/bar' } }, b: { path: { type: 'PathPrefix', value: '/foo/bar' } }, req: request('/foo/bar') },
  { name: 'the longest PathPrefix wins', a: { path: { type: 'PathPrefix', value: '/foo/bar' } }, b: { path: { type: 'PathPrefix', value: '/foo' } }, req: request('/foo/bar/baz') },
  { name: 'PathPrefix beats RegularExpression (regexes rank after prefixes, as in Istio)', a: { path: { type: 'PathPrefix', value: '/' } }, b: { path: { type: 'RegularExpression', value: '/foo.*' } }, req: request('/foo/x') },
  { name: 'a longer regex beats a shorter one', a: { path: { type: 'RegularExpression', value: '/foo/[a-z]+' } }, b: { path: { type: 'RegularExpression', value: '/foo/.*' } }, req: request('/foo/x') },
  { name: 'same path: a method match wins', a: { path: { type: 'PathPrefix', value: '/foo' }, method: 'GET' }, b: { path: { type: 'PathPrefix', value: '/foo' }, headers: [{ name: 'x-a', value: '1' }, { name: 'x-b', value: '1' }] }, req: request('/foo', { headers: { 'x-a': '1', 'x-b': '1' } }) },
  { name: 'same path and method: more header matches win', a: { headers: [{ name: 'x-a', value: '1' }, { name: 'x-b', value: '1' }] }, b: { headers: [{ name: 'x-a', value: '1' }], queryParams: [{ name: 'q', value: '1' }, { name: 'r', value: '1' }] }, req: request('/', { headers: { 'x-a': '1', 'x-b': '1' }, query: 'q=1&r=1' }) },
  { name: 'same headers: more query matches win', a: { queryParams: [{ name: 'q', value: '1' }, { name: 'r', value: '1' }] }, b: { queryParams: [{ name: 'q', value: '1' }] }, req: request('/', { query: 'q=1&r=1' }) },
  { name: 'a longer prefix beats an Exact-less method+headers match', a: { path: { type: 'PathPrefix', value: '/foo/bar' } }, b: { path: { type: 'PathPrefix', value: '/foo' }, method: 'GET', headers: [{ name: 'x-a', value: '1' }] }, req: request('/foo/bar', { headers: { 'x-a': '1' } }) },
];

for (const c of cases) {
  test(`precedence: ${c.name}`, () => {
    assert.equal(contest(rule(c.a), rule(c.b), c.req), 'a');
  });
}

test('precedence across routes: criteria first, then the oldest route, then namespace/name, then rule order', () => {
  const same = (name: string, created?: string) =>
    cartRoute([rule({ path: { type: 'PathPrefix', value: '/x' } }), rule({ path: { type: 'PathPrefix', value: '/x' } })], name, created !== undefined ? { creationTimestamp: created } : {});
  // Criteria beat age: the newer route's longer prefix wins.
  const t0 = table([same('old', '2020-01-01T00:00:00Z'), cartRoute([rule({ path: { type: 'PathPrefix', value: '/x/y' } })], 'new', { creationTimestamp: '2024-01-01T00:00:00Z' })]);
  assert.equal(winner(t0.plan('shop/cart', 8080, request('/x/y'), 0)), 'HTTPRoute shop/new rule 0');
  // Equal criteria: the oldest route wins, whatever its name and input order.
  const t1 = table([same('b', '2024-01-01T00:00:00Z'), same('z', '2020-01-01T00:00:00Z')]);
  assert.equal(winner(t1.plan('shop/cart', 8080, request('/x'), 0)), 'HTTPRoute shop/z rule 0');
  // Same age (or none): alphabetical by namespace/name.
  const t2 = table([same('b', '2024-01-01T00:00:00Z'), same('a', '2024-01-01T00:00:00Z')]);
  assert.equal(winner(t2.plan('shop/cart', 8080, request('/x'), 0)), 'HTTPRoute shop/a rule 0');
  const t3 = table([same('b'), same('a')]);
  assert.equal(winner(t3.plan('shop/cart', 8080, request('/x'), 0)), 'HTTPRoute shop/a rule 0');
  // A route with a timestamp ranks before one without.
  const t4 = table([same('a'), same('b', '2024-01-01T00:00:00Z')]);
  assert.equal(winner(t4.plan('shop/cart', 8080, request('/x'), 0)), 'HTTPRoute shop/b rule 0');
  // Within a route: the first rule.
  const t5 = table([same('a')]);
  assert.equal(winner(t5.plan('shop/cart', 8080, request('/x'), 0)), 'HTTPRoute shop/a rule 0');
});

test('precedence is per match, not per rule: a later rule\'s Exact match beats an earlier rule\'s prefix', () => {
  const t = table([cartRoute([rule({ path: { type: 'PathPrefix', value: '/' } }), { matches: [{ path: { type: 'PathPrefix', value: '/q' } }, { path: { type: 'Exact', value: '/e' } }], backendRefs: [backend('cart-v2')] }])]);
  assert.equal(winner(t.plan('shop/cart', 8080, request('/e'), 0)), 'HTTPRoute shop/cart rule 1');
  assert.equal(winner(t.plan('shop/cart', 8080, request('/z'), 0)), 'HTTPRoute shop/cart rule 0');
  assert.deepEqual(t.rulesFor('shop/cart', 8080).map((r) => r.name), ['HTTPRoute shop/cart rule 1', 'HTTPRoute shop/cart rule 0']);
});

test('HTTPRoutes and GRPCRoutes never share a Service port: the oldest route\'s kind keeps it', () => {
  const http = cartRoute([rule({ path: { type: 'PathPrefix', value: '/' } })], 'web', { creationTimestamp: '2024-01-01T00:00:00Z' });
  const grpc = (created: string, parentRefs: unknown[] = [CART_PARENT]) => grpcRoute('rpc', { parentRefs, rules: [{ backendRefs: [backend('cart-v2')] }] }, { creationTimestamp: created });
  const grpcReq = request('/shop.Cart/Get', { method: 'POST', headers: { 'content-type': 'application/grpc' } });
  const plainReq = request('/shop.Cart/Get', { method: 'POST', headers: { 'content-type': 'application/json' } });
  // The GRPCRoute is older: it holds both ports of shop/cart; the HTTPRoute is not accepted.
  const older = table([http, grpc('2023-01-01T00:00:00Z')]);
  assert.equal(winner(older.plan('shop/cart', 8080, grpcReq, 0)), 'GRPCRoute shop/rpc rule 0');
  assert.equal(older.plan('shop/cart', 8080, plainReq, 0).kind, 'reply', 'a GRPCRoute takes gRPC requests only');
  const web = older.statuses().find((s) => s.route === 'HTTPRoute shop/web')!;
  const accepted = web.parents[0]!.conditions.find((c) => c.type === 'Accepted')!;
  assert.equal(accepted.status, 'False');
  assert.equal(accepted.reason, 'Conflicted');
  assert.match(accepted.message, /shop\/cart:8080 is held by GRPCRoute shop\/rpc/);
  // The HTTPRoute is older: it keeps the port, gRPC requests included.
  const newer = table([http, grpc('2025-01-01T00:00:00Z')]);
  assert.equal(winner(newer.plan('shop/cart', 8080, grpcReq, 0)), 'HTTPRoute shop/web rule 0');
  assert.equal(newer.statuses().find((s) => s.route === 'GRPCRoute shop/rpc')!.parents[0]!.conditions[0]!.reason, 'Conflicted');
  // A conflict on some ports only: accepted, and the message names the port it lost.
  const partial = table([cartRoute([rule({ path: { type: 'PathPrefix', value: '/' } })], 'web', { creationTimestamp: '2024-01-01T00:00:00Z' }), grpc('2023-01-01T00:00:00Z', [{ ...CART_PARENT, port: 9090 }])]);
  const webPartial = partial.statuses().find((s) => s.route === 'HTTPRoute shop/web')!.parents[0]!.conditions[0]!;
  assert.equal(webPartial.status, 'True');
  assert.match(webPartial.message, /not on shop\/cart:9090 is held by GRPCRoute shop\/rpc/);
  assert.equal(winner(partial.plan('shop/cart', 8080, plainReq, 0)), 'HTTPRoute shop/web rule 0');
  assert.equal(winner(partial.plan('shop/cart', 9090, grpcReq, 0)), 'GRPCRoute shop/rpc rule 0');
});

test('GRPCRoute precedence: longer service, then longer method, then more headers', () => {
  const r = (matches: unknown[], to = 'cart-v1') => ({ matches, backendRefs: [backend(to)] });
  const route = grpcRoute('g', {
    parentRefs: [CART_PARENT],
    rules: [
      r([{ method: { type: 'RegularExpression', service: 'shop\\..*' } }]),
      r([{ method: { service: 'shop.Cart' } }]),
      r([{ method: { service: 'shop.Cart', method: 'Get' } }]),
      r([{ method: { service: 'shop.Cart', method: 'Get' }, headers: [{ name: 'x-a', value: '1' }] }]),
      r([{ method: { method: 'Get' } }]),
    ],
  });
  const t = table([route]);
  const g = (path: string, headers: Record<string, string> = {}) => winner(t.plan('shop/cart', 8080, request(path, { method: 'POST', headers: { 'content-type': 'application/grpc+proto', ...headers } }), 0));
  assert.equal(g('/shop.Cart/Get', { 'x-a': '1' }), 'GRPCRoute shop/g rule 3');
  assert.equal(g('/shop.Cart/Get'), 'GRPCRoute shop/g rule 2');
  assert.equal(g('/shop.Cart/Put'), 'GRPCRoute shop/g rule 1');
  assert.equal(g('/shop.Orders/Put'), 'GRPCRoute shop/g rule 0');
  assert.equal(g('/other.Svc/Get'), 'GRPCRoute shop/g rule 4');
  assert.equal(t.plan('shop/cart', 8080, request('/other.Svc/Put', { method: 'POST', headers: { 'content-type': 'application/grpc' } }), 0).kind, 'reply');
});
