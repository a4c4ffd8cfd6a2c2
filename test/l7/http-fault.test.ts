/** Weft's HTTPFault, named by an ExtensionRef filter of an HTTPRoute or GRPCRoute rule -> RouteRule.fault. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RouteStore } from '../../agent/l7/store.js';
import { validateWeftTrafficObject } from '../../agent/l7/weft/validate.js';
import { backend, cartRoute, CART_PARENT, grpcRoute, model, request, SHOP } from './helpers.js';

export function httpFault(name: string, spec: Record<string, unknown>, metadata: Record<string, unknown> = {}): Record<string, unknown> {
  return { apiVersion: 'weft.dev/v1alpha1', kind: 'HTTPFault', metadata: { name, namespace: 'shop', ...metadata }, spec };
}
const faultRef = (name: string) => ({ type: 'ExtensionRef', extensionRef: { group: 'weft.dev', kind: 'HTTPFault', name } });
const routeWithFault = (name = 'slow') => cartRoute([{ filters: [faultRef(name)], backendRefs: [backend('cart-v1')] }]);

function planOf(store: RouteStore, init: Parameters<typeof request>[1] = {}) {
  return store.table().plan('shop/cart', 8080, request('/', init), 0);
}

test('an HTTPFault named by a rule compiles into RouteRule.fault: delay and abort with their percentages', () => {
  const store = new RouteStore();
  store.update(model(SHOP, [routeWithFault(), httpFault('slow', { delay: { fixedDelay: '7s', percentage: { value: 100 } }, abort: { httpStatus: 503, percentage: { value: 12.5 } } })]));
  assert.deepEqual(store.rejected(), []);
  const p = planOf(store);
  assert.equal(p.kind, 'forward');
  assert.deepEqual(p.rule!.fault, { delay: { ms: 7000, percent: 100 }, abort: { statusCode: 503, percent: 12.5 }, source: 'HTTPFault shop/slow' });
  const st = store.statuses().find((s) => s.route === 'HTTPRoute shop/cart')!;
  assert.equal(st.parents[0]!.conditions.find((c) => c.type === 'ResolvedRefs')!.status, 'True');
});

test('an ExtensionRef to a missing HTTPFault: ResolvedRefs False (FilterNotFound) and the rule answers 500, never skipping the filter', () => {
  const store = new RouteStore();
  store.update(model(SHOP, [routeWithFault('nowhere')]));
  const p = planOf(store);
  assert.ok(p.kind === 'reply', JSON.stringify(p));
  assert.equal(p.statusCode, 500);
  assert.equal(p.responseFlag, 'NR');
  assert.match(p.reason, /HTTPFault shop\/nowhere: not found/);
  const rr = store.statuses().find((s) => s.route === 'HTTPRoute shop/cart')!.parents[0]!.conditions.find((c) => c.type === 'ResolvedRefs')!;
  assert.equal(rr.status, 'False');
  assert.equal(rr.reason, 'FilterNotFound');
  // It appears: the rule forwards, with the fault.
  store.update(model(SHOP, [routeWithFault('nowhere'), httpFault('nowhere', { abort: { httpStatus: 418, percentage: { value: 100 } } })]));
  const q = planOf(store);
  assert.ok(q.kind === 'forward');
  assert.equal(q.rule!.fault!.abort!.statusCode, 418);
});

test('an HTTPFault in another namespace does not resolve (an ExtensionRef is a local reference)', () => {
  const store = new RouteStore();
  store.update(model(SHOP, [routeWithFault(), httpFault('slow', { abort: { httpStatus: 500, percentage: { value: 100 } } }, { namespace: 'other' })]));
  assert.equal(planOf(store).kind, 'reply');
});

test('a GRPCRoute rule: the abort answers as gRPC, its grpcStatus or its httpStatus mapped (503 -> UNAVAILABLE)', () => {
  const route = grpcRoute('g', { parentRefs: [{ ...CART_PARENT, port: 9090 }], rules: [{ filters: [faultRef('f')], backendRefs: [backend('cart-v1')] }] });
  const grpcReq = request('/shop.Cart/Get', { method: 'POST', headers: { 'content-type': 'application/grpc' } });
  for (const [abort, want] of [
    [{ httpStatus: 503, percentage: { value: 100 } }, 14],
    [{ grpcStatus: 'RESOURCE_EXHAUSTED', percentage: { value: 100 } }, 8],
    [{ httpStatus: 404, grpcStatus: 'INTERNAL', percentage: { value: 100 } }, 13],
  ] as const) {
    const store = new RouteStore();
    store.update(model(SHOP, [route, httpFault('f', { abort })]));
    const p = store.table().plan('shop/cart', 9090, grpcReq, 0);
    assert.ok(p.kind === 'forward', JSON.stringify(p));
    assert.deepEqual(p.rule!.fault!.abort, { statusCode: 200, percent: 100, grpcStatus: want });
  }
  // An HTTPRoute rule with only a grpcStatus answers gRPC-style too; with both, HTTP.
  const store = new RouteStore();
  store.update(model(SHOP, [routeWithFault('f'), httpFault('f', { abort: { httpStatus: 500, grpcStatus: 'INTERNAL', percentage: { value: 100 } } })]));
  assert.deepEqual(planOf(store).kind === 'forward' && (planOf(store) as { rule: { fault: unknown } }).rule.fault, { abort: { statusCode: 500, percent: 100 }, source: 'HTTPFault shop/f' });
});

const refusals: [string, Record<string, unknown>, string, RegExp][] = [
  ['neither delay nor abort', {}, 'spec', /delay or abort/],
  ['a delay without percentage', { delay: { fixedDelay: '1s' } }, 'spec.delay.percentage', /is required/],
  ['an abort without status', { abort: { percentage: { value: 1 } } }, 'spec.abort', /httpStatus or grpcStatus/],
  ['a percentage over 100', { abort: { httpStatus: 500, percentage: { value: 101 } } }, 'spec.abort.percentage.value', /0-100/],
  ['an HTTP status', { abort: { httpStatus: 99, percentage: { value: 1 } } }, 'spec.abort.httpStatus', /200-599/],
  ['a gRPC status', { abort: { grpcStatus: 'SLOW', percentage: { value: 1 } } }, 'spec.abort.grpcStatus', /gRPC status name/],
  ['a delay duration', { delay: { fixedDelay: 'soon', percentage: { value: 1 } } }, 'spec.delay.fixedDelay', /duration/],
  ['exponentialDelay (Istio has it, Weft does not)', { delay: { exponentialDelay: '1s', fixedDelay: '1s', percentage: { value: 1 } } }, 'spec.delay.exponentialDelay', /unknown field/],
];
for (const [name, spec, path, message] of refusals) {
  test(`HTTPFault refused by field: ${name}`, () => {
    const v = validateWeftTrafficObject(httpFault('f', spec));
    assert.equal(v.ok, false);
    const e = v.ok ? undefined : v.errors.find((x) => x.path === path);
    assert.ok(e !== undefined, JSON.stringify(v));
    assert.match(e.message, message);
  });
}

test('an HTTPFault that turns invalid is refused with its last good version kept; one that never was leaves the rule answering 500', () => {
  const store = new RouteStore();
  store.update(model(SHOP, [routeWithFault(), httpFault('slow', { delay: { fixedDelay: '2s', percentage: { value: 50 } } }, { generation: 1 })]));
  store.update(model(SHOP, [routeWithFault(), httpFault('slow', { delay: { fixedDelay: '2s' } }, { generation: 2 })]));
  const [r] = store.rejected();
  assert.equal(r!.kind, 'HTTPFault');
  assert.equal(r!.servingLastGood, true);
  assert.deepEqual(r!.errors.map((e) => e.path), ['spec.delay.percentage']);
  const p = planOf(store);
  assert.ok(p.kind === 'forward');
  assert.deepEqual(p.rule!.fault!.delay, { ms: 2000, percent: 50 });
  const st = store.statuses().find((s) => s.route === 'HTTPFault shop/slow')!;
  assert.equal(st.parents[0]!.mesh, false);
  assert.match(st.parents[0]!.conditions[0]!.message, /still served/);

  const fresh = new RouteStore();
  fresh.update(model(SHOP, [routeWithFault(), httpFault('slow', { delay: { fixedDelay: '2s' } })]));
  assert.equal(planOf(fresh).kind, 'reply');
});
