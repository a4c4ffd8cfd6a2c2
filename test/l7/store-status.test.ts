import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RouteStore, RouteValidationError } from '../../agent/l7/store.js';
import { kubernetesRouteStatus, routeStatusRows, ROUTE_CONTROLLER_NAME } from '../../agent/l7/status.js';
import { buildModel } from '../../agent/discovery/model.js';
import type { ManifestObject } from '../../agent/discovery/types.js';
import type { RouteStatus } from '../../agent/l7/types.js';
import { backend, cartRoute, CART_PARENT, httpRoute, model, request, SHOP } from './helpers.js';

const v1Route = (generation: number, to: string) => cartRoute([{ backendRefs: [backend(to)] }], 'cart', { generation });

function servedBackend(store: RouteStore): string | undefined {
  const p = store.table().plan('shop/cart', 8080, request('/'), 0);
  return p.kind === 'forward' ? p.backend.service : undefined;
}

test('an invalid route is refused by field and its last good version kept; a fixed one replaces it', () => {
  const store = new RouteStore();
  store.update(model(SHOP, [v1Route(1, 'cart-v1')]));
  assert.equal(servedBackend(store), 'shop/cart-v1');
  assert.deepEqual(store.rejected(), []);

  const bad = cartRoute([{ backendRefs: [{ name: 'cart-v2' }], matches: [{ method: 'FETCH' }] }], 'cart', { generation: 2 });
  store.update(model(SHOP, [bad]));
  assert.equal(servedBackend(store), 'shop/cart-v1', 'generation 1 still served');
  const [r] = store.rejected();
  assert.equal(store.rejected().length, 1);
  assert.equal(r!.kind, 'HTTPRoute');
  assert.equal(r!.route, 'shop/cart');
  assert.equal(r!.servingLastGood, true);
  assert.equal(r!.servingGeneration, 1);
  assert.deepEqual(r!.errors.map((e) => e.path).sort(), ['spec.rules[0].backendRefs[0].port', 'spec.rules[0].matches[0].method']);
  const err = new RouteValidationError(r!);
  assert.equal(err.code, 'WEFT_ERR_ROUTE_INVALID');
  assert.match(err.message, /^HTTPRoute shop\/cart is invalid: .*spec\.rules\[0\]\.backendRefs\[0\]\.port: is required/);
  // The status says so, for the refused generation.
  const [s] = store.statuses();
  const accepted = s!.parents[0]!.conditions.find((c) => c.type === 'Accepted')!;
  assert.equal(accepted.status, 'False');
  assert.equal(accepted.reason, 'UnsupportedValue');
  assert.equal(accepted.observedGeneration, 2);
  assert.match(accepted.message, /still served/);
  assert.equal(store.table().statuses(), store.statuses(), 'the table carries the store\'s statuses (the waypoint\'s /config_dump)');

  store.update(model(SHOP, [v1Route(3, 'cart-v2')]));
  assert.equal(servedBackend(store), 'shop/cart-v2');
  assert.deepEqual(store.rejected(), []);
  assert.equal(store.statuses()[0]!.parents[0]!.conditions[0]!.status, 'True');

  // Deleted: gone, nothing kept.
  store.update(model(SHOP, []));
  assert.equal(store.table().routed('shop/cart', 8080), false);
  assert.deepEqual(store.statuses(), []);
});

test('an invalid route without a good version takes no part, and its status names its parents', () => {
  const store = new RouteStore();
  store.update(model(SHOP, [httpRoute('new', { parentRefs: [CART_PARENT], rules: [{ matches: [{ path: { type: 'RegularExpression', value: '/(a)\\1' } }] }] })]));
  assert.equal(store.table().routed('shop/cart', 8080), false);
  assert.equal(store.rejected()[0]!.servingLastGood, false);
  const rows = routeStatusRows(store.statuses());
  assert.equal(rows.length, 1);
  assert.equal(rows[0]!.route, 'HTTPRoute shop/new');
  assert.equal(rows[0]!.parent, 'Service shop/cart');
  assert.equal(rows[0]!.accepted, 'False (UnsupportedValue)');
  assert.match(rows[0]!.message, /spec\.rules\[0\]\.matches\[0\]\.path\.value: backreferences are not supported/);
});

test('the store reads routes and ReferenceGrants from a discovery MeshModel', () => {
  const objects: ManifestObject[] = [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } },
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'cart', namespace: 'shop' }, spec: { selector: { app: 'cart' }, ports: [{ port: 8080 }] } },
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'cart-v1', namespace: 'shop' }, spec: { selector: { app: 'cart' }, ports: [{ port: 8080 }] } },
    v1Route(1, 'cart-v1') as unknown as ManifestObject,
  ];
  const store = new RouteStore();
  store.update(buildModel(objects));
  assert.equal(servedBackend(store), 'shop/cart-v1');
  // Discovery knows the Service has no waypoint: accepted, and the message says why nothing applies it yet.
  assert.match(store.statuses()[0]!.parents[0]!.conditions[0]!.message, /attached to every port \(8080\) of Service shop\/cart; the Service has no waypoint/);
});

function conditions(s: RouteStatus, parent = 0): Record<string, string> {
  return Object.fromEntries(s.parents[parent]!.conditions.map((c) => [c.type, `${c.status} ${c.reason}`]));
}

function statusOf(route: unknown, others: unknown[] = []): RouteStatus {
  const store = new RouteStore();
  store.update(model(SHOP, [route, ...others]));
  assert.deepEqual(store.rejected(), []);
  return store.statuses()[0]!;
}

test('status: Accepted and ResolvedRefs with the spec\'s reasons', () => {
  const route = (parentRefs: unknown[], backendRefs: unknown[] = [backend('cart-v1')]) => httpRoute('r', { parentRefs, rules: [{ backendRefs }] });
  assert.deepEqual(conditions(statusOf(route([CART_PARENT]))), { Accepted: 'True Accepted', ResolvedRefs: 'True ResolvedRefs' });
  assert.deepEqual(conditions(statusOf(route([{ kind: 'Service', name: 'cart', port: 9090 }]))), { Accepted: 'True Accepted', ResolvedRefs: 'True ResolvedRefs' });
  assert.deepEqual(conditions(statusOf(route([{ ...CART_PARENT, name: 'nope' }]))), { Accepted: 'False NoMatchingParent', ResolvedRefs: 'True ResolvedRefs' });
  assert.deepEqual(conditions(statusOf(route([{ ...CART_PARENT, port: 1234 }]))), { Accepted: 'False NoMatchingParent', ResolvedRefs: 'True ResolvedRefs' });
  assert.deepEqual(conditions(statusOf(route([{ ...CART_PARENT, namespace: 'other' }]))), { Accepted: 'False UnsupportedValue', ResolvedRefs: 'True ResolvedRefs' });
  assert.deepEqual(conditions(statusOf(route([{ ...CART_PARENT, sectionName: 'http' }]))), { Accepted: 'False UnsupportedValue', ResolvedRefs: 'True ResolvedRefs' });
  const gw = statusOf(route([{ name: 'ingress' }]));
  assert.equal(gw.parents[0]!.mesh, false);
  assert.equal(gw.parents[0]!.parent, 'Gateway shop/ingress');
  assert.deepEqual(conditions(gw), { Accepted: 'False NoMatchingParent' });
  assert.deepEqual(conditions(statusOf(route([CART_PARENT], [backend('missing')]))), { Accepted: 'True Accepted', ResolvedRefs: 'False BackendNotFound' });
  assert.deepEqual(conditions(statusOf(route([CART_PARENT], [backend('cart-v1', 1234)]))), { Accepted: 'True Accepted', ResolvedRefs: 'False BackendNotFound' });
  assert.deepEqual(conditions(statusOf(route([CART_PARENT], [{ group: 'example.com', kind: 'Bucket', name: 'b' }]))), { Accepted: 'True Accepted', ResolvedRefs: 'False InvalidKind' });
  assert.deepEqual(conditions(statusOf(route([CART_PARENT], [{ name: 'db', namespace: 'other', port: 5432 }]))), { Accepted: 'True Accepted', ResolvedRefs: 'False RefNotPermitted' });
  const mirrorToNowhere = httpRoute('r', { parentRefs: [CART_PARENT], rules: [{ filters: [{ type: 'RequestMirror', requestMirror: { backendRef: backend('gone') } }], backendRefs: [backend('cart-v1')] }] });
  assert.deepEqual(conditions(statusOf(mirrorToNowhere)), { Accepted: 'True Accepted', ResolvedRefs: 'False BackendNotFound' });
});

test('a ReferenceGrant permits a backendRef to another namespace (and only the one it names)', () => {
  const grant = (to: Record<string, unknown>, from: Record<string, unknown> = { group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespace: 'shop' }) => ({
    apiVersion: 'gateway.networking.k8s.io/v1beta1',
    kind: 'ReferenceGrant',
    metadata: { name: 'g', namespace: 'other' },
    spec: { from: [from], to: [to] },
  });
  const route = httpRoute('r', { parentRefs: [CART_PARENT], rules: [{ backendRefs: [{ name: 'db', namespace: 'other', port: 5432 }] }] });
  assert.deepEqual(conditions(statusOf(route, [grant({ group: '', kind: 'Service' })])), { Accepted: 'True Accepted', ResolvedRefs: 'True ResolvedRefs' });
  assert.deepEqual(conditions(statusOf(route, [grant({ group: '', kind: 'Service', name: 'db' })])), { Accepted: 'True Accepted', ResolvedRefs: 'True ResolvedRefs' });
  assert.deepEqual(conditions(statusOf(route, [grant({ group: '', kind: 'Service', name: 'cache' })])), { Accepted: 'True Accepted', ResolvedRefs: 'False RefNotPermitted' });
  assert.deepEqual(conditions(statusOf(route, [grant({ group: '', kind: 'Service' }, { group: 'gateway.networking.k8s.io', kind: 'GRPCRoute', namespace: 'shop' })])), {
    Accepted: 'True Accepted',
    ResolvedRefs: 'False RefNotPermitted',
  });
  const store = new RouteStore();
  store.update(model(SHOP, [route, grant({ group: '', kind: 'Service' })]));
  const p = store.table().plan('shop/cart', 8080, request('/'), 0);
  assert.equal(p.kind === 'forward' && p.backend.service, 'other/db');
});

test('Kubernetes status: Weft\'s mesh parents only, other controllers kept, lastTransitionTime kept while unchanged', () => {
  const s = statusOf(httpRoute('r', { parentRefs: [CART_PARENT, { name: 'ingress' }], rules: [{ backendRefs: [backend('cart-v1')] }] }, { generation: 4 }));
  const foreign = { parentRef: { name: 'ingress' }, controllerName: 'example.com/gateway', conditions: [] };
  const first = kubernetesRouteStatus(s, { parents: [foreign] }, '2026-01-01T00:00:00Z');
  assert.equal(first.parents.length, 2);
  assert.deepEqual(first.parents[0], foreign);
  const ours = first.parents[1] as { parentRef: unknown; controllerName: string; conditions: { type: string; status: string; observedGeneration?: number; lastTransitionTime: string }[] };
  assert.equal(ours.controllerName, ROUTE_CONTROLLER_NAME);
  assert.deepEqual(ours.parentRef, { group: '', kind: 'Service', namespace: 'shop', name: 'cart' });
  assert.deepEqual(ours.conditions.map((c) => [c.type, c.status, c.observedGeneration, c.lastTransitionTime]), [
    ['Accepted', 'True', 4, '2026-01-01T00:00:00Z'],
    ['ResolvedRefs', 'True', 4, '2026-01-01T00:00:00Z'],
  ]);
  const again = kubernetesRouteStatus(s, first, '2026-02-02T00:00:00Z');
  assert.equal((again.parents[1] as typeof ours).conditions[0]!.lastTransitionTime, '2026-01-01T00:00:00Z');
  const broken = statusOf(httpRoute('r', { parentRefs: [CART_PARENT], rules: [{ backendRefs: [backend('missing')] }] }));
  const changed = kubernetesRouteStatus(broken, first, '2026-03-03T00:00:00Z');
  const conds = (changed.parents[1] as typeof ours).conditions;
  assert.equal(conds.find((c) => c.type === 'Accepted')!.lastTransitionTime, '2026-01-01T00:00:00Z');
  assert.equal(conds.find((c) => c.type === 'ResolvedRefs')!.lastTransitionTime, '2026-03-03T00:00:00Z');
});

test('status rows for `weft status routes`', () => {
  const store = new RouteStore();
  store.update(model(SHOP, [httpRoute('r', { parentRefs: [CART_PARENT, { ...CART_PARENT, port: 1 }], rules: [{ backendRefs: [backend('missing')] }] }), httpRoute('lonely', {})]));
  assert.deepEqual(
    routeStatusRows(store.statuses()).map((r) => [r.route, r.parent, r.accepted, r.resolvedRefs]),
    [
      ['HTTPRoute shop/lonely', '(no parentRefs)', '-', '-'],
      ['HTTPRoute shop/r', 'Service shop/cart', 'True', 'False (BackendNotFound)'],
      ['HTTPRoute shop/r', 'Service shop/cart:1', 'False (NoMatchingParent)', 'False (BackendNotFound)'],
    ],
  );
});
