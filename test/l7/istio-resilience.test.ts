/**
 * Istio's VirtualService resilience fields and DestinationRule policies as Istio compiles them
 * (retry.ConvertPolicy, the fault filter, mirrors, MergeSubsetTrafficPolicy), and where a
 * DestinationRule applies besides VirtualService destinations (HTTPRoute backends, no route at all).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RouteStore } from '../../agent/l7/store.js';
import { ISTIO_DEFAULT_RETRY } from '../../agent/l7/istio/compile.js';
import type { RequestPlan } from '../../agent/l7/types.js';
import { request } from './helpers.js';
import { bookinfo, fixture } from './istio-helpers.js';

const vs = (name: string, spec: Record<string, unknown>, metadata: Record<string, unknown> = {}) => ({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name, ...metadata }, spec });
const dr = (name: string, spec: Record<string, unknown>) => ({ apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name }, spec });

function forward(store: RouteStore, service = 'default/reviews', port = 9080, path = '/'): RequestPlan & { kind: 'forward' } {
  const p = store.table().plan(service, port, request(path, { authority: `${service.split('/')[1]}:${port}` }), 0);
  assert.ok(p.kind === 'forward', JSON.stringify(p));
  return p;
}
function storeOf(objects: unknown[], extra: Record<string, number[]> = {}, log?: ConstructorParameters<typeof RouteStore>[0]): RouteStore {
  const s = new RouteStore(log);
  s.update(bookinfo(objects, extra));
  assert.deepEqual(s.rejected(), []);
  return s;
}
const route = (extra: Record<string, unknown>) => vs('r', { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' } }], ...extra }] });

test('retries as istiod converts them: none given -> Istio\'s default policy; attempts 0 or unset -> no retries; numeric retryOn -> status codes', () => {
  assert.deepEqual(forward(storeOf([route({})])).rule!.retry, ISTIO_DEFAULT_RETRY);
  assert.deepEqual(ISTIO_DEFAULT_RETRY, { attempts: 2, perTryTimeoutMs: undefined, retryOn: ['connect-failure', 'refused-stream', 'unavailable', 'cancelled', 'retriable-status-codes'], statusCodes: [503] });
  assert.equal(forward(storeOf([route({ retries: { attempts: 0 } })])).rule!.retry, undefined);
  assert.equal(forward(storeOf([route({ retries: { perTryTimeout: '1s' } })])).rule!.retry, undefined, 'proto3: attempts unset is 0');
  assert.deepEqual(forward(storeOf([route({ retries: { attempts: 4, retryOn: 'gateway-error, 409,reset', backoff: '50ms' } })])).rule!.retry, {
    attempts: 4,
    perTryTimeoutMs: undefined,
    retryOn: ['gateway-error', 'reset', 'retriable-status-codes'],
    statusCodes: [409],
    backoffBaseMs: 50,
  });
  // Only attempts: the default's conditions and its 503.
  assert.deepEqual(forward(storeOf([route({ retries: { attempts: 1 } })])).rule!.retry, { ...ISTIO_DEFAULT_RETRY, attempts: 1 });
});

test('fault: delay and abort (httpStatus or grpcStatus), percentage, and the legacy percent; unset percentage is 0 % as in Istio', () => {
  const f = (fault: unknown) => forward(storeOf([route({ fault })])).rule!.fault;
  assert.deepEqual(f({ delay: { fixedDelay: '7s', percentage: { value: 100 } } }), { delay: { ms: 7000, percent: 100 } });
  assert.deepEqual(f({ abort: { httpStatus: 500, percent: 30 } }), { abort: { statusCode: 500, percent: 30 } });
  assert.deepEqual(f({ abort: { grpcStatus: 'UNAVAILABLE', percentage: { value: 50 } } }), { abort: { statusCode: 200, percent: 50, grpcStatus: 14 } });
  assert.deepEqual(f({ delay: { fixedDelay: '0.5s' } }), { delay: { ms: 500, percent: 0 } });
});

test('mirror with mirrorPercentage, and mirrors (several, each with its percentage)', () => {
  const one = forward(storeOf([route({ mirror: { host: 'ratings' }, mirrorPercentage: { value: 100 } })]));
  assert.deepEqual(one.mirrors.map((m) => m.backend.service), ['default/ratings']);
  const many = storeOf([route({ mirrors: [{ destination: { host: 'ratings' }, percentage: { value: 100 } }, { destination: { host: 'details' } }] })]);
  assert.deepEqual(forward(many).mirrors.map((m) => m.backend.service), ['default/ratings', 'default/details']);
  assert.deepEqual(
    forward(many).rule!.filters.filter((x) => x.type === 'RequestMirror').map((x) => (x.type === 'RequestMirror' ? x.percent : -1)),
    [100, 100],
  );
});

test('redirect derivePort FROM_REQUEST_PORT keeps the addressed port even with a scheme', () => {
  const s = storeOf([vs('r', { hosts: ['reviews'], http: [{ redirect: { scheme: 'https', derivePort: 'FROM_REQUEST_PORT', uri: '/x' } }] })]);
  const p = s.table().plan('default/reviews', 9080, request('/', { authority: 'reviews:9080' }), 0);
  assert.deepEqual(p.kind === 'redirect' && p.location, 'https://reviews:9080/x');
});

const POLICY_DR = dr('reviews', {
  host: 'reviews',
  trafficPolicy: {
    loadBalancer: { simple: 'LEAST_REQUEST' },
    connectionPool: { tcp: { maxConnections: 10 } },
    outlierDetection: { consecutive5xxErrors: 5 },
    portLevelSettings: [{ port: { number: 9081 }, connectionPool: { http: { http1MaxPendingRequests: 2 } } }],
  },
  subsets: [
    { name: 'v1', labels: { version: 'v1' } },
    { name: 'v2', labels: { version: 'v2' }, trafficPolicy: { connectionPool: { tcp: { maxConnections: 1 } } } },
    { name: 'v3', labels: { version: 'v3' }, trafficPolicy: { portLevelSettings: [{ port: { number: 9080 }, loadBalancer: { simple: 'RANDOM' } }] } },
  ],
});
const to = (subset: string, port = 9080) => vs('r', { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset, port: { number: port } } }] }] });

test('a subset\'s trafficPolicy replaces the host\'s fields it sets; port-level settings replace a level\'s fields without inheriting', () => {
  const extra = { 'default/reviews': [9080, 9081] };
  const v1 = forward(storeOf([POLICY_DR, to('v1')], extra)).backend.policy!;
  assert.deepEqual(v1.loadBalancer, { simple: 'LEAST_REQUEST' });
  assert.equal(v1.connectionPool!.maxConnections, 10);
  assert.equal(v1.outlierDetection!.consecutive5xxErrors, 5);
  const v2 = forward(storeOf([POLICY_DR, to('v2')], extra)).backend.policy!;
  assert.equal(v2.connectionPool!.maxConnections, 1, 'the subset\'s connectionPool');
  assert.deepEqual(v2.loadBalancer, { simple: 'LEAST_REQUEST' }, 'the host\'s loadBalancer');
  // v3 on 9080: its port-level entry replaces all fields: RANDOM, and no connectionPool or outlierDetection.
  const v3 = forward(storeOf([POLICY_DR, to('v3')], extra)).backend.policy!;
  assert.deepEqual(v3, { loadBalancer: { simple: 'RANDOM' } });
  // Port 9081: the host's port-level entry, not the host's top level (no loadBalancer, no outlierDetection).
  const p9081 = forward(storeOf([POLICY_DR, to('v1', 9081)], extra), 'default/reviews', 9081).backend.policy!;
  assert.equal(p9081.loadBalancer, undefined);
  assert.equal(p9081.outlierDetection, undefined);
  assert.equal(p9081.connectionPool!.http1MaxPendingRequests, 2);
});

test('a DestinationRule applies without any route (Istio\'s circuit-breaking task) and to HTTPRoute backends', () => {
  const s = storeOf(fixture('httpbin-circuit-breaker-destination-rule.yaml'));
  const p = forward(s, 'default/httpbin', 8000, '/get');
  assert.equal(p.rule, undefined);
  assert.deepEqual(p.backend.policy!.connectionPool, { maxConnections: 1, connectTimeoutMs: undefined, http1MaxPendingRequests: 1, http2MaxRequests: undefined, maxRequestsPerConnection: 1, maxRetries: undefined, idleTimeoutMs: undefined });
  assert.equal(p.backend.policy!.outlierDetection!.baseEjectionTimeMs, 180_000);
  assert.equal(s.table().routed('default/httpbin', 8000), false);
  const hr = { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name: 'h', namespace: 'default' }, spec: { parentRefs: [{ group: '', kind: 'Service', name: 'productpage' }], rules: [{ backendRefs: [{ name: 'httpbin', port: 8000 }] }] } };
  const t = storeOf([...fixture('httpbin-circuit-breaker-destination-rule.yaml'), hr]);
  assert.equal(forward(t, 'default/productpage', 9080).backend.policy!.connectionPool!.maxConnections, 1);
});

test('a Gateway API route and a VirtualService on one port: reported on both sides and logged once with WEFT_ERR_ROUTE_CONFLICT, not merged', () => {
  const logged: { obj: Record<string, unknown>; msg: string }[] = [];
  const log = { warn: (obj: Record<string, unknown>, msg: string) => logged.push({ obj, msg }) } as unknown as NonNullable<ConstructorParameters<typeof RouteStore>[0]>['log'];
  const hr = { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name: 'reviews-hr', namespace: 'default' }, spec: { parentRefs: [{ group: '', kind: 'Service', name: 'reviews', port: 9080 }], rules: [{ backendRefs: [{ name: 'reviews', port: 9080 }] }] } };
  const objects = [vs('reviews', { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' } }] }] }), hr];
  const s = new RouteStore({ log });
  s.update(bookinfo(objects));
  s.update(bookinfo(objects));
  assert.deepEqual(s.conflicts(), [{ frontend: 'default/reviews:9080', winner: 'HTTPRoute default/reviews-hr', loser: 'VirtualService default/reviews' }]);
  assert.equal(logged.length, 1, 'once per change of the set');
  assert.equal(logged[0]!.obj['code'], 'WEFT_ERR_ROUTE_CONFLICT');
  assert.match(logged[0]!.msg, /HTTPRoute default\/reviews-hr routes it, VirtualService default\/reviews is left out/);
  assert.equal(forward(s).rule!.name, 'HTTPRoute default/reviews-hr rule 0');
  const hrStatus = s.statuses().find((x) => x.route === 'HTTPRoute default/reviews-hr')!.parents[0]!.conditions[0]!;
  assert.equal(hrStatus.status, 'True');
  assert.match(hrStatus.message, /not merged with VirtualService default\/reviews \(default\/reviews:9080\)/);
  assert.equal(s.statuses().find((x) => x.route === 'VirtualService default/reviews')!.parents[0]!.conditions[0]!.reason, 'Conflicted');
});

test('one policy object per Service port (and subset) in a table: the engine keys its circuit-breaker state on it', () => {
  const hr = { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name: 'h', namespace: 'default' }, spec: { parentRefs: [{ group: '', kind: 'Service', name: 'productpage' }], rules: [{ backendRefs: [{ name: 'httpbin', port: 8000 }] }] } };
  const s = storeOf([...fixture('httpbin-circuit-breaker-destination-rule.yaml'), hr]);
  assert.equal(forward(s, 'default/productpage', 9080).backend.policy, forward(s, 'default/httpbin', 8000).backend.policy);
  const two = storeOf([POLICY_DR, vs('r', { hosts: ['reviews'], http: [{ match: [{ uri: { prefix: '/a' } }], route: [{ destination: { host: 'reviews', subset: 'v2', port: { number: 9080 } } }] }, { route: [{ destination: { host: 'reviews', subset: 'v2', port: { number: 9080 } } }] }] })], { 'default/reviews': [9080, 9081] });
  assert.equal(forward(two, 'default/reviews', 9080, '/a').backend.policy, forward(two, 'default/reviews', 9080, '/b').backend.policy);
});

test('rewrite.uriRegexRewrite replaces every match in the path (RE2\'s \\1 groups), the query kept; refused with uri or with an unsafe pattern', () => {
  const s = storeOf([vs('r', { hosts: ['reviews'], http: [{ rewrite: { uriRegexRewrite: { match: '^/service/([^/]+)(/.*)$', rewrite: '\\2/instance/\\1' } }, route: [{ destination: { host: 'reviews' } }] }] })]);
  const p = s.table().plan('default/reviews', 9080, request('/service/foo/v1/api', { query: 'a=1', authority: 'reviews:9080' }), 0);
  assert.ok(p.kind === 'forward');
  assert.equal(p.pathAndQuery, '/v1/api/instance/foo?a=1');
  const all = storeOf([vs('r', { hosts: ['reviews'], http: [{ rewrite: { uriRegexRewrite: { match: 'a', rewrite: '$b' } }, route: [{ destination: { host: 'reviews' } }] }] })]);
  const q = all.table().plan('default/reviews', 9080, request('/banana', { authority: 'reviews:9080' }), 0);
  assert.equal(q.kind === 'forward' && q.pathAndQuery, '/b$bn$bn$b', 'every match; a $ in the substitution is literal');
  const refuse = (rewrite: unknown, path: string) => {
    const st = new RouteStore();
    st.update(bookinfo([vs('r', { hosts: ['reviews'], http: [{ rewrite, route: [{ destination: { host: 'reviews' } }] }] })]));
    assert.ok(st.rejected()[0]?.errors.some((e) => e.path === path), JSON.stringify(st.rejected()));
  };
  refuse({ uri: '/x', uriRegexRewrite: { match: 'a', rewrite: 'b' } }, 'spec.http[0].rewrite.uriRegexRewrite');
  refuse({ uriRegexRewrite: { match: '(a)\\1', rewrite: 'b' } }, 'spec.http[0].rewrite.uriRegexRewrite.match');
});
