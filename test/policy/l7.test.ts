/**
 * L7 authorization at the waypoint (issue 11 point 4): policies with targetRefs, decided per
 * HTTP request by evaluateRequest with Istio's semantics. The examples are Istio's own (the
 * AuthorizationPolicy reference, its conditions page and the ambient waypoint guides).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicies, evaluate, evaluateRequest, evaluateWaypointConnection, RBAC_DENIED_BODY, type HttpRequestInfo } from '../../policy/engine.js';

type Spec = Record<string, unknown>;
const ap = (name: string, namespace: string, spec: Spec | undefined) => ({ apiVersion: 'weft.dev/v1alpha1', kind: 'AuthorizationPolicy', metadata: { name, namespace }, spec });
const GATEWAY = { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'waypoint' };
const service = (name: string) => ({ group: '', kind: 'Service', name });
const sa = (ns: string, name: string) => `spiffe://cluster.local/ns/${ns}/sa/${name}`;

/** GET /info from foo/curl (198.18.140.2) to the httpbin service VIP, port 8000. */
const base: HttpRequestInfo = {
  sourceIp: '198.18.140.2',
  sourcePrincipal: sa('foo', 'curl'),
  trustDomain: 'cluster.local',
  destinationIp: '10.96.140.10',
  destinationPort: 8000,
  method: 'GET',
  path: '/info',
  authority: 'httpbin.foo:8000',
  headers: { 'user-agent': 'curl/8.5.0', accept: '*/*' },
};
const r = (over: Partial<HttpRequestInfo>): HttpRequestInfo => ({ ...base, ...over });
const AT = { namespace: 'foo', name: 'waypoint', service: 'foo/httpbin' };

/** One ALLOW policy attached to the httpbin Service with a single rule: is `req` allowed? */
function allowedByRule(rule: Spec, req: HttpRequestInfo): boolean {
  const store = compilePolicies([ap('p', 'foo', { targetRefs: [service('httpbin')], rules: [rule] })]);
  assert.deepEqual(store.rejected, []);
  return evaluateRequest(store.forWaypointTarget(AT), req).allowed;
}

test("every HTTP field, Istio's wildcards and not-forms", () => {
  const op = (operation: Spec) => ({ to: [{ operation }] });
  const src = (source: Spec) => ({ from: [{ source }] });
  const when = (key: string, values?: string[], notValues?: string[]) => ({ when: [{ key, ...(values ? { values } : {}), ...(notValues ? { notValues } : {}) }] });
  const table: [string, Spec, HttpRequestInfo, boolean][] = [
    // methods: exact and case-sensitive; gRPC is POST
    ['methods GET', op({ methods: ['GET'] }), base, true],
    ['methods GET, HEAD against POST', op({ methods: ['GET', 'HEAD'] }), r({ method: 'POST' }), false],
    ['methods are case-sensitive', op({ methods: ['get'] }), base, false],
    ['notMethods DELETE', op({ notMethods: ['DELETE'] }), base, true],
    ['notMethods DELETE against DELETE', op({ notMethods: ['DELETE'] }), r({ method: 'DELETE' }), false],
    // paths: exact, prefix*, *suffix, *
    ['paths exact', op({ paths: ['/info'] }), base, true],
    ['paths exact is not a prefix', op({ paths: ['/info'] }), r({ path: '/info/x' }), false],
    ['paths prefix /info*', op({ paths: ['/info*'] }), r({ path: '/information' }), true],
    ['paths prefix /user/profile/*', op({ paths: ['/user/profile/*'] }), r({ path: '/user/profile/42' }), true],
    ['paths prefix /user/profile/* not /user/profile', op({ paths: ['/user/profile/*'] }), r({ path: '/user/profile' }), false],
    ['paths suffix *.html', op({ paths: ['*.html'] }), r({ path: '/a/b/index.html' }), true],
    ['paths suffix *.html not .htm', op({ paths: ['*.html'] }), r({ path: '/index.htm' }), false],
    ['paths * matches any', op({ paths: ['*'] }), r({ path: '/' }), true],
    ['paths are matched without the query', op({ paths: ['/info'] }), r({ path: '/info?x=1' }), true],
    ['paths are case-sensitive', op({ paths: ['/info'] }), r({ path: '/INFO' }), false],
    ['paths match the normalized path (dot segments)', op({ paths: ['/admin'] }), r({ path: '/public/../admin' }), true],
    ['paths match the normalized path (encoded dots)', op({ paths: ['/admin'] }), r({ path: '/public/%2E%2e/admin' }), true],
    ['paths match the normalized path (unreserved escapes)', op({ paths: ['/admin'] }), r({ path: '/%61dmin' }), true],
    ['notPaths /admin*', op({ notPaths: ['/admin*'] }), base, true],
    ['notPaths /admin* against /./admin/x', op({ notPaths: ['/admin*'] }), r({ path: '/./admin/x' }), false],
    ['gRPC path', op({ methods: ['POST'], paths: ['/grpc.health.v1.Health/*'] }), r({ method: 'POST', path: '/grpc.health.v1.Health/Check' }), true],
    // hosts: case-insensitive, the authority as sent (port included)
    ['hosts exact with port', op({ hosts: ['httpbin.foo:8000'] }), base, true],
    ['hosts are case-insensitive', op({ hosts: ['HTTPBIN.foo:8000'] }), r({ authority: 'httpbin.FOO:8000' }), true],
    ['hosts without port do not match an authority with one', op({ hosts: ['httpbin.foo'] }), base, false],
    ['hosts without port match an authority without one', op({ hosts: ['httpbin.foo'] }), r({ authority: 'httpbin.foo' }), true],
    ["hosts 'name:*' for any port", op({ hosts: ['httpbin.foo', 'httpbin.foo:*'] }), base, true],
    ['hosts *.example.com', op({ hosts: ['*.example.com'] }), r({ authority: 'api.example.com' }), true],
    ['hosts *.example.com not example.org', op({ hosts: ['*.example.com'] }), r({ authority: 'api.example.org' }), false],
    ['notHosts', op({ notHosts: ['evil.example.com'] }), r({ authority: 'EVIL.example.com' }), false],
    // ports: the port the request was addressed to
    ['ports 8000', op({ ports: ['8000'] }), base, true],
    ['ports with methods (Istio example)', op({ methods: ['POST'], ports: ['8080'] }), r({ method: 'POST', destinationPort: 8080 }), true],
    ['notPorts 8000', op({ notPorts: ['8000'] }), base, false],
    // sources
    ['principals', src({ principals: ['cluster.local/ns/foo/sa/curl'] }), base, true],
    ['principals other', src({ principals: ['cluster.local/ns/default/sa/sleep'] }), base, false],
    ['principals prefix', src({ principals: ['cluster.local/ns/foo/*'] }), base, true],
    ['principals * needs mTLS', src({ principals: ['*'] }), r({ sourcePrincipal: undefined }), false],
    ['notPrincipals', src({ notPrincipals: ['cluster.local/ns/foo/sa/curl'] }), base, false],
    ['namespaces', src({ namespaces: ['foo'] }), base, true],
    ['namespaces other (Istio: namespaces test)', src({ namespaces: ['test'] }), base, false],
    ['notNamespaces dev', src({ notNamespaces: ['dev'] }), base, true],
    ['ipBlocks', src({ ipBlocks: ['198.18.140.0/24'] }), base, true],
    ['notIpBlocks', src({ notIpBlocks: ['198.18.140.2'] }), base, false],
    ['remoteIpBlocks: the forwarded client', src({ remoteIpBlocks: ['203.0.113.0/24'] }), r({ remoteIp: '203.0.113.7' }), true],
    ['remoteIpBlocks: without forwarded, the source', src({ remoteIpBlocks: ['198.18.140.2'] }), base, true],
    ['remoteIpBlocks: forwarded replaces the source', src({ remoteIpBlocks: ['198.18.140.2'] }), r({ remoteIp: '203.0.113.7' }), false],
    ['notRemoteIpBlocks', src({ notRemoteIpBlocks: ['203.0.113.7'] }), r({ remoteIp: '203.0.113.7' }), false],
    // when
    ['when request.headers[User-Agent] prefix (Istio example)', when('request.headers[User-Agent]', ['curl/*']), base, true],
    ['when request.headers: name case-insensitive, value not', when('request.headers[user-agent]', ['CURL/*']), base, false],
    ['when request.headers absent', when('request.headers[x-token]', ['*']), base, false],
    ['when request.headers notValues absent', when('request.headers[x-token]', undefined, ['secret']), base, true],
    ['when request.headers exact', when('request.headers[end-user]', ['jason']), r({ headers: { 'end-user': 'jason' } }), true],
    ['when request.headers repeated joined by ,', when('request.headers[x-a]', ['1,2']), r({ headers: { 'x-a': ['1', '2'] } }), true],
    ['when request.headers suffix', when('request.headers[x-a]', ['*-beta']), r({ headers: { 'x-a': 'v2-beta' } }), true],
    ['when request.headers presence', when('request.headers[x-a]', ['*']), r({ headers: { 'x-a': '' } }), false],
    ['when request.headers[:authority]', when('request.headers[:authority]', ['httpbin.foo*']), base, true],
    ['when source.principal', when('source.principal', ['cluster.local/ns/foo/sa/curl']), base, true],
    ['when source.namespace notValues', when('source.namespace', undefined, ['foo']), base, false],
    ['when source.ip', when('source.ip', ['198.18.140.0/24']), base, true],
    ['when remote.ip', when('remote.ip', ['203.0.113.7']), r({ remoteIp: '203.0.113.7' }), true],
    ['when destination.port', when('destination.port', ['8000']), base, true],
    ['when destination.ip (the VIP)', when('destination.ip', ['10.96.0.0/12']), base, true],
    // a rule: from AND to AND every when; alternatives inside from/to
    ['from OR from', { from: [{ source: { principals: ['cluster.local/ns/default/sa/sleep'] } }, { source: { namespaces: ['foo'] } }] }, base, true],
    ['to OR to', { to: [{ operation: { methods: ['POST'], paths: ['/data'] } }, { operation: { methods: ['GET'], paths: ['/info*'] } }] }, base, true],
    ['fields inside an operation are ANDed', op({ methods: ['GET'], paths: ['/data'] }), base, false],
    ['from AND to', { from: [{ source: { namespaces: ['foo'] } }], to: [{ operation: { methods: ['POST'] } }] }, base, false],
    ['when conditions are ANDed', { when: [{ key: 'source.namespace', values: ['foo'] }, { key: 'request.headers[x-a]', values: ['1'] }] }, base, false],
    ['empty rule matches everything', {}, base, true],
  ];
  for (const [name, rule, req, allowed] of table) assert.equal(allowedByRule(rule, req), allowed, name);
});

test("Istio's reference example: GET /info* or POST /data from sleep or namespace test", () => {
  const store = compilePolicies([
    ap('httpbin', 'foo', {
      targetRefs: [service('httpbin')],
      action: 'ALLOW',
      rules: [
        {
          from: [{ source: { principals: ['cluster.local/ns/default/sa/sleep'] } }, { source: { namespaces: ['test'] } }],
          to: [{ operation: { methods: ['GET'], paths: ['/info*'] } }, { operation: { methods: ['POST'], paths: ['/data'] } }],
        },
      ],
    }),
  ]);
  const wp = store.forWaypointTarget(AT);
  const sleep = sa('default', 'sleep');
  const table: [string, HttpRequestInfo, boolean][] = [
    ['sleep GET /info', r({ sourcePrincipal: sleep }), true],
    ['sleep GET /info/x', r({ sourcePrincipal: sleep, path: '/info/x' }), true],
    ['sleep POST /data', r({ sourcePrincipal: sleep, method: 'POST', path: '/data' }), true],
    ['sleep POST /info', r({ sourcePrincipal: sleep, method: 'POST' }), false],
    ['test namespace GET /info', r({ sourcePrincipal: sa('test', 'any') }), true],
    ['foo/curl GET /info', base, false],
    ['plaintext GET /info', r({ sourcePrincipal: undefined }), false],
  ];
  for (const [name, req, allowed] of table) {
    const d = evaluateRequest(wp, req);
    assert.equal(d.allowed, allowed, name);
    assert.equal(d.policy, allowed ? 'foo/httpbin' : undefined, name);
    assert.equal(d.reason, allowed ? 'allowed-by-policy' : 'no-allow-match', name);
  }
});

test('precedence: DENY over ALLOW, ALLOW needed once one applies, AUDIT listed but never decides', () => {
  const store = compilePolicies([
    ap('allow-get', 'foo', { targetRefs: [service('httpbin')], rules: [{ to: [{ operation: { methods: ['GET', 'POST'] } }] }] }),
    ap('deny-dev-post', 'foo', { targetRefs: [service('httpbin')], action: 'DENY', rules: [{ from: [{ source: { namespaces: ['dev'] } }], to: [{ operation: { methods: ['POST'] } }] }] }),
    ap('audit-profile', 'foo', { targetRefs: [GATEWAY], action: 'AUDIT', rules: [{ to: [{ operation: { methods: ['GET'], paths: ['/user/profile/*'] } }] }] }),
  ]);
  const wp = store.forWaypointTarget(AT);
  assert.deepEqual(wp.authorizationPolicies, ['foo/allow-get', 'foo/audit-profile', 'foo/deny-dev-post']);
  const dev = sa('dev', 'x');
  assert.deepEqual(evaluateRequest(wp, r({ method: 'POST', sourcePrincipal: dev })), { allowed: false, action: 'DENY', policy: 'foo/deny-dev-post', reason: 'denied-by-policy' });
  assert.deepEqual(evaluateRequest(wp, r({ method: 'POST' })), { allowed: true, action: 'ALLOW', policy: 'foo/allow-get', reason: 'allowed-by-policy' });
  assert.deepEqual(evaluateRequest(wp, r({ method: 'DELETE' })), { allowed: false, action: 'DENY', reason: 'no-allow-match' });
  assert.deepEqual(evaluateRequest(wp, r({ path: '/user/profile/7' })), { allowed: true, action: 'ALLOW', policy: 'foo/allow-get', reason: 'allowed-by-policy', auditPolicies: ['foo/audit-profile'] });
  // AUDIT alone: never decides.
  const audit = compilePolicies([ap('a', 'foo', { targetRefs: [GATEWAY], action: 'AUDIT', rules: [{}] })]).forWaypointTarget(AT);
  assert.deepEqual(evaluateRequest(audit, base), { allowed: true, action: 'ALLOW', reason: 'no-allow-policy', auditPolicies: ['foo/a'] });
  // The deciding policy is the first by namespace/name when several match.
  const two = compilePolicies([
    ap('b-deny', 'foo', { targetRefs: [GATEWAY], action: 'DENY', rules: [{}] }),
    ap('a-deny', 'foo', { targetRefs: [service('httpbin')], action: 'DENY', rules: [{}] }),
  ]).forWaypointTarget(AT);
  assert.equal(evaluateRequest(two, base).policy, 'foo/a-deny');
  assert.equal(RBAC_DENIED_BODY, 'RBAC: access denied');
});

test("rules: ALLOW without rules allows nothing, a rule {} matches everything, DENY without rules denies nothing (Istio's allow-nothing, allow-all, deny-all)", () => {
  const decide = (spec: Spec) => evaluateRequest(compilePolicies([ap('p', 'foo', { targetRefs: [GATEWAY], ...spec })]).forWaypointTarget(AT), base);
  assert.deepEqual(decide({}), { allowed: false, action: 'DENY', reason: 'no-allow-match' });
  assert.deepEqual(decide({ rules: [] }), { allowed: false, action: 'DENY', reason: 'no-allow-match' });
  assert.deepEqual(decide({ rules: [{}] }), { allowed: true, action: 'ALLOW', policy: 'foo/p', reason: 'allowed-by-policy' });
  assert.deepEqual(decide({ action: 'DENY' }), { allowed: true, action: 'ALLOW', reason: 'no-allow-policy' });
  assert.deepEqual(decide({ action: 'DENY', rules: [{}] }), { allowed: false, action: 'DENY', policy: 'foo/p', reason: 'denied-by-policy' });
});

test('targetRefs: a Gateway target covers every request through that waypoint, a Service target requests to that Service', () => {
  const store = compilePolicies([
    ap('svc-reviews', 'foo', { targetRefs: [service('reviews')], action: 'DENY', rules: [{}] }),
    ap('svc-both', 'foo', { targetRefs: [service('ratings'), service('details')], action: 'DENY', rules: [{ to: [{ operation: { methods: ['DELETE'] } }] }] }),
    ap('gw', 'foo', { targetRefs: [GATEWAY], action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin*'] } }] }] }),
    ap('gw-singular', 'foo', { targetRef: { ...GATEWAY, name: 'other-waypoint' }, action: 'DENY', rules: [{}] }),
    ap('mesh', 'weft-system', { targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'GatewayClass', name: 'weft-waypoint' }], action: 'DENY', rules: [{ to: [{ operation: { methods: ['TRACE'] } }] }] }),
    ap('other-ns', 'bar', { targetRefs: [service('reviews')], action: 'DENY', rules: [{}] }),
  ]);
  assert.deepEqual(store.rejected, []);
  assert.deepEqual(store.warnings, []);
  const keys = (service?: string, name = 'waypoint') => store.forWaypointTarget({ namespace: 'foo', name, service }).authorizationPolicies;
  assert.deepEqual(keys('foo/reviews'), ['foo/gw', 'foo/svc-reviews', 'weft-system/mesh']);
  assert.deepEqual(keys('foo/ratings'), ['foo/gw', 'foo/svc-both', 'weft-system/mesh']);
  assert.deepEqual(keys('foo/details'), ['foo/gw', 'foo/svc-both', 'weft-system/mesh']);
  assert.deepEqual(keys('foo/productpage'), ['foo/gw', 'weft-system/mesh']);
  assert.deepEqual(keys(undefined), ['foo/gw', 'weft-system/mesh']);
  assert.deepEqual(keys('foo/reviews', 'other-waypoint'), ['foo/gw-singular', 'foo/svc-reviews', 'weft-system/mesh']);
  assert.deepEqual(store.forWaypointTarget({ namespace: 'bar', name: 'waypoint', service: 'bar/reviews' }).authorizationPolicies, ['bar/other-ns', 'weft-system/mesh']);
  // A waypoint of another class does not get the GatewayClass policy.
  assert.deepEqual(store.forWaypointTarget({ namespace: 'foo', name: 'waypoint', gatewayClass: 'other' }).authorizationPolicies, ['foo/gw']);
  const at = (service: string) => store.forWaypointTarget({ namespace: 'foo', name: 'waypoint', service });
  assert.equal(evaluateRequest(at('foo/reviews'), base).policy, 'foo/svc-reviews');
  assert.equal(evaluateRequest(at('foo/productpage'), base).allowed, true);
  assert.equal(evaluateRequest(at('foo/productpage'), r({ path: '/admin/users' })).policy, 'foo/gw');
  assert.equal(evaluateRequest(at('foo/productpage'), r({ method: 'TRACE' })).policy, 'weft-system/mesh');
  assert.equal(evaluateRequest(at('foo/ratings'), r({ method: 'DELETE' })).policy, 'foo/svc-both');
  assert.deepEqual(store.targetedServices(), ['bar/reviews', 'foo/details', 'foo/ratings', 'foo/reviews']);
  // The view is cached per waypoint and service.
  assert.equal(at('foo/reviews'), at('foo/reviews'));
});

test('the split: node agents never enforce targetRefs policies, waypoints never enforce the others', () => {
  const store = compilePolicies([
    ap('waypoint-deny', 'foo', { targetRefs: [service('httpbin')], action: 'DENY', rules: [{ to: [{ operation: { methods: ['GET'] } }] }] }),
    ap('agent-deny', 'foo', { selector: { matchLabels: { app: 'httpbin' } }, action: 'DENY', rules: [{ to: [{ operation: { ports: ['9999'] } }] }] }),
    ap('agent-ns-wide', 'foo', { action: 'DENY', rules: [{ to: [{ operation: { ports: ['9998'] } }] }] }),
  ]);
  assert.deepEqual(store.authorizationPolicies.map((p) => p.key), ['foo/agent-deny', 'foo/agent-ns-wide']);
  assert.deepEqual(store.waypointPolicies.map((p) => p.key), ['foo/waypoint-deny']);
  // Only the L4 policies produce the L4 fail-closed warning; the waypoint's HTTP fields are checked, not warned about.
  assert.deepEqual(store.warnings, []);
  const pod = store.forWorkload({ namespace: 'foo', labels: { app: 'httpbin' } });
  assert.deepEqual(pod.authorizationPolicies, ['foo/agent-deny', 'foo/agent-ns-wide']);
  assert.equal(evaluate(pod, { sourceIp: '198.18.140.2', sourcePrincipal: sa('foo', 'curl'), destinationIp: '198.18.140.3', destinationPort: 8000 }).allowed, true);
  const wp = store.forWaypointTarget(AT);
  assert.deepEqual(wp.authorizationPolicies, ['foo/waypoint-deny']);
  assert.equal(evaluateRequest(wp, r({ destinationPort: 9999 , method: 'PUT' })).allowed, true);
  assert.equal(evaluateRequest(wp, base).policy, 'foo/waypoint-deny');
});

test('non-HTTP traffic through the waypoint: L4 rules, HTTP fields fail closed as at a node agent', () => {
  const store = compilePolicies([
    ap('allow-get', 'foo', { targetRefs: [GATEWAY], rules: [{ to: [{ operation: { methods: ['GET'] } }] }, { from: [{ source: { namespaces: ['ops'] } }] }] }),
    ap('deny-delete-8080', 'foo', { targetRefs: [GATEWAY], action: 'DENY', rules: [{ to: [{ operation: { ports: ['8080'], methods: ['DELETE'] } }] }] }),
  ]);
  const wp = store.forWaypointTarget(AT);
  const conn = { sourceIp: '198.18.140.2', sourcePrincipal: sa('foo', 'curl'), destinationIp: '10.96.140.10', destinationPort: 8000 };
  // The ALLOW rule on methods matches nothing over TCP; the namespaces rule still does.
  assert.equal(evaluateWaypointConnection(wp, conn).reason, 'no-allow-match');
  assert.equal(evaluateWaypointConnection(wp, { ...conn, sourcePrincipal: sa('ops', 'x') }).policy, 'foo/allow-get');
  // The DENY rule denies all of port 8080 over TCP (its method condition is ignored: denies more).
  assert.equal(evaluateWaypointConnection(wp, { ...conn, sourcePrincipal: sa('ops', 'x'), destinationPort: 8080 }).policy, 'foo/deny-delete-8080');
  // Over HTTP the same policies check the method.
  assert.equal(evaluateRequest(wp, r({ destinationPort: 8080 })).policy, 'foo/allow-get');
  assert.equal(evaluateRequest(wp, r({ destinationPort: 8080, method: 'DELETE', sourcePrincipal: sa('ops', 'x') })).policy, 'foo/deny-delete-8080');
});
