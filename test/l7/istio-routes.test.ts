/** VirtualService and DestinationRule: matches, actions, refusals by field with the last good kept, conflicts with HTTPRoute. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RouteStore } from '../../agent/l7/store.js';
import { validateIstioObject } from '../../agent/l7/istio/validate.js';
import { serviceKeyOf } from '../../agent/l7/istio/compile.js';
import { request } from './helpers.js';
import { bookinfo, fixture, outcome } from './istio-helpers.js';

function vs(name: string, spec: Record<string, unknown>, metadata: Record<string, unknown> = {}, apiVersion = 'networking.istio.io/v1'): Record<string, unknown> {
  return { apiVersion, kind: 'VirtualService', metadata: { name, ...metadata }, spec };
}
const DR_ALL = fixture('destination-rule-all.yaml');

function storeOf(objects: unknown[], extra: Record<string, number[]> = {}): RouteStore {
  const s = new RouteStore();
  s.update(bookinfo([...DR_ALL, ...objects], extra));
  return s;
}
const reviews = (path: string, init: Parameters<typeof request>[1] = {}) => request(path, { authority: 'reviews:9080', ...init });

test('hosts: a short name is in the VirtualService namespace; name.ns.svc[.cluster.local] is ns; other names are no Service', () => {
  assert.equal(serviceKeyOf('reviews', 'default'), 'default/reviews');
  assert.equal(serviceKeyOf('reviews.prod.svc.cluster.local', 'default'), 'prod/reviews');
  assert.equal(serviceKeyOf('reviews.prod.svc', 'default'), 'prod/reviews');
  assert.equal(serviceKeyOf('reviews.prod', 'default'), undefined);
  assert.equal(serviceKeyOf('example.com', 'default'), undefined);
  const s = storeOf([vs('r', { hosts: ['reviews.default.svc.cluster.local'], http: [{ route: [{ destination: { host: 'reviews.default.svc.cluster.local', subset: 'v2' } }] }] })]);
  assert.equal(outcome(s.table().plan('default/reviews', 9080, reviews('/'), 0.1)), 'default/reviews@v2');
});

test('every api version of networking.istio.io is read; another is refused by field', () => {
  for (const v of ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3']) assert.ok(validateIstioObject(vs('r', { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' } }] }] }, {}, v)).ok, v);
  const r = validateIstioObject(vs('r', { hosts: ['reviews'] }, {}, 'networking.istio.io/v2'));
  assert.ok(!r.ok && r.errors[0]!.path === 'apiVersion');
});

test('uri prefix is character-wise, exact is exact, regex is whole-string; first match wins in written order', () => {
  const s = storeOf([
    vs('r', {
      hosts: ['reviews'],
      http: [
        { match: [{ uri: { prefix: '/api' } }], route: [{ destination: { host: 'reviews', subset: 'v1' } }] },
        // Longer, but after: never reached for /api/... (Istio's order, not Gateway API precedence).
        { match: [{ uri: { prefix: '/api/v2' } }], route: [{ destination: { host: 'reviews', subset: 'v2' } }] },
        { match: [{ uri: { exact: '/x' } }, { uri: { regex: '/r[0-9]+' } }], route: [{ destination: { host: 'reviews', subset: 'v3' } }] },
      ],
    }),
  ]);
  const t = s.table();
  assert.equal(outcome(t.plan('default/reviews', 9080, reviews('/apix'), 0)), 'default/reviews@v1');
  assert.equal(outcome(t.plan('default/reviews', 9080, reviews('/api/v2/z'), 0)), 'default/reviews@v1');
  assert.equal(outcome(t.plan('default/reviews', 9080, reviews('/x'), 0)), 'default/reviews@v3');
  assert.equal(outcome(t.plan('default/reviews', 9080, reviews('/x/'), 0)), 'reply 404');
  assert.equal(outcome(t.plan('default/reviews', 9080, reviews('/r12'), 0)), 'default/reviews@v3');
  assert.equal(outcome(t.plan('default/reviews', 9080, reviews('/r12a'), 0)), 'reply 404');
});

test('headers (exact, prefix, regex), queryParams, method, ignoreUriCase', () => {
  const s = storeOf([
    vs('r', {
      hosts: ['reviews'],
      http: [
        { match: [{ headers: { 'X-Team': { prefix: 'blue' } }, method: { exact: 'POST' } }], route: [{ destination: { host: 'reviews', subset: 'v2' } }] },
        { match: [{ queryParams: { canary: { exact: 'yes' } } }], route: [{ destination: { host: 'reviews', subset: 'v3' } }] },
        { match: [{ uri: { exact: '/Home' }, ignoreUriCase: true }], route: [{ destination: { host: 'reviews', subset: 'v3' } }] },
        { route: [{ destination: { host: 'reviews', subset: 'v1' } }] },
      ],
    }),
  ]);
  const t = s.table();
  const at = (path: string, init: Parameters<typeof request>[1]) => outcome(t.plan('default/reviews', 9080, reviews(path, init), 0));
  assert.equal(at('/', { method: 'POST', headers: { 'x-team': 'blue-42' } }), 'default/reviews@v2');
  assert.equal(at('/', { method: 'GET', headers: { 'x-team': 'blue-42' } }), 'default/reviews@v1');
  assert.equal(at('/', { query: 'canary=yes' }), 'default/reviews@v3');
  assert.equal(at('/hOmE', {}), 'default/reviews@v3');
  assert.equal(at('/homes', {}), 'default/reviews@v1');
});

test('rewrite after a prefix replaces the matched characters; headers set/add/remove on request and response; timeout; retries', () => {
  const s = storeOf([
    vs('r', {
      hosts: ['reviews'],
      http: [
        {
          match: [{ uri: { prefix: '/old' } }],
          rewrite: { uri: '/new', authority: 'reviews.internal' },
          headers: { request: { set: { 'X-A': '1' }, add: { 'x-b': '2' }, remove: ['x-c'] }, response: { set: { 'x-d': '4' } } },
          timeout: '0.5s',
          retries: { attempts: 3, perTryTimeout: '2s', retryOn: '5xx,connect-failure' },
          route: [{ destination: { host: 'reviews', subset: 'v1' } }],
        },
      ],
    }),
  ]);
  const p = s.table().plan('default/reviews', 9080, reviews('/oldies', { query: 'q=1' }), 0);
  assert.ok(p.kind === 'forward');
  assert.equal(p.pathAndQuery, '/newies?q=1');
  assert.equal(p.authority, 'reviews.internal');
  assert.deepEqual(p.requestHeaders, { set: [['x-a', '1']], add: [['x-b', '2']], remove: ['x-c'] });
  assert.deepEqual(p.responseHeaders, { set: [['x-d', '4']], add: [], remove: [] });
  assert.equal(p.timeouts.requestMs, 500);
  // Istio's retry.ConvertPolicy: retryOn given replaces the default's conditions and its 503.
  assert.deepEqual(p.rule?.retry, { attempts: 3, perTryTimeoutMs: 2000, retryOn: ['5xx', 'connect-failure'], statusCodes: [] });
});

test('redirect: uri, authority, redirectCode (default 301)', () => {
  const s = storeOf([vs('r', { hosts: ['reviews'], http: [{ match: [{ uri: { exact: '/a' } }], redirect: { uri: '/b', authority: 'elsewhere' } }, { redirect: { uri: '/c', redirectCode: 308 } }] })]);
  const a = s.table().plan('default/reviews', 9080, reviews('/a'), 0);
  assert.deepEqual(a.kind === 'redirect' && [a.statusCode, a.location], [301, 'http://elsewhere:9080/b']);
  const c = s.table().plan('default/reviews', 9080, reviews('/z'), 0);
  assert.deepEqual(c.kind === 'redirect' && [c.statusCode, c.location], [308, 'http://reviews:9080/c']);
});

test('an unknown subset leaves that destination unresolved: its share answers 500 NR, the status says why', () => {
  const s = storeOf([vs('r', { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' }, weight: 50 }, { destination: { host: 'reviews', subset: 'v9' }, weight: 50 }] }] })]);
  assert.deepEqual(s.rejected(), []);
  assert.equal(outcome(s.table().plan('default/reviews', 9080, reviews('/'), 0.2)), 'default/reviews@v1');
  const bad = s.table().plan('default/reviews', 9080, reviews('/'), 0.7);
  assert.ok(bad.kind === 'reply' && bad.statusCode === 500 && bad.responseFlag === 'NR');
  assert.match(bad.reason, /subset v9: DestinationRule default\/reviews has no subset v9/);
  const st = s.statuses().find((x) => x.route === 'VirtualService default/r')!;
  const rr = st.parents[0]!.conditions.find((c) => c.type === 'ResolvedRefs')!;
  assert.equal(rr.status, 'False');
  assert.equal(rr.reason, 'BackendNotFound');
});

test('invalid VirtualServices and DestinationRules are refused by field; the last good version is kept', () => {
  const good = vs('r', { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v2' } }] }] }, { generation: 1 });
  const s = new RouteStore();
  s.update(bookinfo([...DR_ALL, good]));
  assert.equal(outcome(s.table().plan('default/reviews', 9080, reviews('/'), 0)), 'default/reviews@v2');
  const cases: [Record<string, unknown>, string][] = [
    [{ hosts: ['reviews'], http: [{ match: [{ uri: { prefix: '/a', exact: '/a' } }], route: [{ destination: { host: 'reviews' } }] }] }, 'spec.http[0].match[0].uri'],
    [{ hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' }, weight: -1 }] }] }, 'spec.http[0].route[0].weight'],
    [{ hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' } }], timeout: 'soon' }] }, 'spec.http[0].timeout'],
    [{ hosts: ['reviews'], http: [{ match: [{ uri: { regex: '(a)\\1' } }], route: [{ destination: { host: 'reviews' } }] }] }, 'spec.http[0].match[0].uri.regex'],
    [{ hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' } }], corsPolicy: {} }] }, 'spec.http[0].corsPolicy'],
    [{ hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' } }, { destination: { host: 'ratings' } }] }] }, 'spec.http[0].route[0].weight'],
    [{ hosts: ['reviews'], http: [{ redirect: { uri: '/x' }, route: [{ destination: { host: 'reviews' } }] }] }, 'spec.http[0].redirect'],
    [{ hosts: ['*.example.com'], http: [] }, 'spec.hosts[0]'],
    [{ hosts: ['reviews'], tcp: [{}] }, 'spec.tcp'],
    [{ hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' } }], bogus: 1 }] }, 'spec.http[0].bogus'],
  ];
  for (const [spec, path] of cases) {
    s.update(bookinfo([...DR_ALL, vs('r', spec, { generation: 2 })]));
    const r = s.rejected();
    assert.equal(r.length, 1, JSON.stringify(spec));
    assert.ok(r[0]!.errors.some((e) => e.path === path), `${path} in ${JSON.stringify(r[0]!.errors)}`);
    assert.equal(r[0]!.servingLastGood, true);
    assert.equal(r[0]!.servingGeneration, 1);
    assert.equal(outcome(s.table().plan('default/reviews', 9080, reviews('/'), 0)), 'default/reviews@v2', path);
    const st = s.statuses().find((x) => x.route === 'VirtualService default/r')!;
    assert.match(st.parents[0]!.conditions[0]!.message, /refused: .*last good version \(generation 1\) is still served/);
  }
  // A DestinationRule refused keeps its subsets.
  const dr = { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'reviews', generation: 1 }, spec: { host: 'reviews', subsets: [{ name: 'v2', labels: { version: 'v2' } }] } };
  s.update(bookinfo([dr, good]));
  for (const [spec, path] of [
    [{ host: 'reviews', subsets: [{ name: 'v2', labels: { version: 'v2' } }, { name: 'v2' }] }, 'spec.subsets[1].name'],
    [{ host: 'reviews', trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } } }, 'spec.trafficPolicy.tls'],
    [{ host: 'reviews', trafficPolicy: { connectionPool: { tcp: { maxConnections: -1 } } } }, 'spec.trafficPolicy.connectionPool.tcp.maxConnections'],
    [{ host: 'reviews', trafficPolicy: { outlierDetection: { interval: '1 second' } } }, 'spec.trafficPolicy.outlierDetection.interval'],
    [{ host: 'reviews', trafficPolicy: { portLevelSettings: [{ port: { number: 9080 }, tls: { mode: 'SIMPLE' } }] } }, 'spec.trafficPolicy.portLevelSettings[0].tls'],
    [{ host: 'reviews', trafficPolicy: { portLevelSettings: [{ port: { number: 9080 } }, { port: { number: 9080 } }] } }, 'spec.trafficPolicy.portLevelSettings[1].port.number'],
    [{ host: 'reviews', trafficPolicy: { portLevelSettings: [{ loadBalancer: { simple: 'RANDOM' } }] } }, 'spec.trafficPolicy.portLevelSettings[0].port'],
    [{ host: 'reviews', subsets: [{ name: 'v2', trafficPolicy: { loadBalancer: { simple: 'RANDOM', consistentHash: { useSourceIp: true } } } }] }, 'spec.subsets[0].trafficPolicy.loadBalancer'],
    [{ host: 'reviews', trafficPolicy: { retryBudget: { percent: { value: 20 } } } }, 'spec.trafficPolicy.retryBudget'],
  ] as const) {
    s.update(bookinfo([{ ...dr, metadata: { name: 'reviews', generation: 2 }, spec }, good]));
    const r = s.rejected();
    assert.equal(r.length, 1);
    assert.ok(r[0]!.errors.some((e) => e.path === path), `${path} in ${JSON.stringify(r[0]!.errors)}`);
    assert.equal(outcome(s.table().plan('default/reviews', 9080, reviews('/'), 0)), 'default/reviews@v2', path);
  }
});

test('an HTTPRoute and a VirtualService on one Service port: the HTTPRoute routes, the VirtualService status names both', () => {
  const httpRoute = { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name: 'reviews-hr', namespace: 'default' }, spec: { parentRefs: [{ group: '', kind: 'Service', name: 'reviews', port: 9080 }], rules: [{ backendRefs: [{ name: 'reviews-v3', port: 9080 }] }] } };
  const s = storeOf([vs('reviews', { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' } }] }] }), httpRoute], { 'default/reviews-v3': [9080] });
  assert.equal(outcome(s.table().plan('default/reviews', 9080, reviews('/'), 0)), 'default/reviews-v3');
  const st = s.statuses().find((x) => x.route === 'VirtualService default/reviews')!;
  const c = st.parents[0]!.conditions[0]!;
  assert.equal(c.status, 'False');
  assert.equal(c.reason, 'Conflicted');
  assert.match(c.message, /default\/reviews:9080 is routed by HTTPRoute default\/reviews-hr/);
});

test('two VirtualServices for one host: the oldest keeps it, the other is Conflicted naming it', () => {
  const older = vs('a-new-name', { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v3' } }] }] }, { creationTimestamp: '2026-01-01T00:00:00Z' });
  const newer = vs('b', { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' } }] }] }, { creationTimestamp: '2026-02-01T00:00:00Z' });
  const s = storeOf([newer, older]);
  assert.equal(outcome(s.table().plan('default/reviews', 9080, reviews('/'), 0)), 'default/reviews@v3');
  const c = s.statuses().find((x) => x.route === 'VirtualService default/b')!.parents[0]!.conditions[0]!;
  assert.equal(c.reason, 'Conflicted');
  assert.match(c.message, /held by VirtualService default\/a-new-name/);
});

test('gateways other than mesh are kept for an ingress, not applied by the waypoint', () => {
  const s = storeOf([vs('r', { hosts: ['reviews'], gateways: ['bookinfo-gateway'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v3' } }] }] })]);
  assert.deepEqual(s.rejected(), []);
  const p = s.table().plan('default/reviews', 9080, reviews('/'), 0);
  assert.ok(p.kind === 'forward' && p.rule === undefined);
  const st = s.statuses().find((x) => x.route === 'VirtualService default/r')!;
  assert.deepEqual(st.parents.map((x) => [x.parent, x.mesh]), [['Gateway default/bookinfo-gateway', false]]);
  const both = storeOf([vs('r', { hosts: ['reviews'], gateways: ['mesh', 'bookinfo-gateway'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v3' } }] }] })]);
  assert.equal(outcome(both.table().plan('default/reviews', 9080, reviews('/'), 0)), 'default/reviews@v3');
});
