/**
 * Properties of the waypoint's request decision: it never throws on any request, a decision made
 * from within another (a getter of the request evaluating another one) leaves both intact, and
 * the path it matches is normalized once and for all (idempotent, no dot segments left).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compilePolicies, evaluateRequest, type HttpRequestInfo, type PolicyDecision } from '../../policy/engine.js';
import { normalizeRequestPath } from '../../policy/http-path.js';

const SEED = 0x11a7;
const ap = (name: string, spec: Record<string, unknown>) => ({ apiVersion: 'weft.dev/v1alpha1', kind: 'AuthorizationPolicy', metadata: { name, namespace: 'foo' }, spec });
const GATEWAY = { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'waypoint' };

/** Every kind of HTTP condition, in ALLOW, DENY and AUDIT policies. */
const store = compilePolicies([
  ap('allow-read', {
    targetRefs: [GATEWAY],
    rules: [
      { from: [{ source: { namespaces: ['foo', 'bar*'] } }], to: [{ operation: { methods: ['GET', 'HEAD'], paths: ['/api/*', '*.html', '/'] } }] },
      { from: [{ source: { remoteIpBlocks: ['203.0.113.0/24', '2001:db8::/32'] } }], to: [{ operation: { hosts: ['*.example.com', 'httpbin:*'], notPorts: ['9999'] } }] },
      { when: [{ key: 'request.headers[x-role]', values: ['admin', 'ops-*'] }, { key: 'remote.ip', notValues: ['198.18.0.0/15'] }] },
    ],
  }),
  ap('deny-admin', { targetRefs: [GATEWAY], action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin*'], notMethods: ['OPTIONS'] } }] }, { when: [{ key: 'request.headers[:authority]', values: ['*.internal'] }] }] }),
  ap('audit', { targetRefs: [GATEWAY], action: 'AUDIT', rules: [{ to: [{ operation: { notHosts: ['*'] } }], from: [{ source: { notPrincipals: ['*'] } }] }] }),
]);
assert.deepEqual(store.rejected, []);
const wp = store.forWaypointTarget({ namespace: 'foo', name: 'waypoint', service: 'foo/httpbin' });

const headerValue = fc.oneof(fc.string(), fc.array(fc.string(), { maxLength: 3 }), fc.constant(undefined));
const anyRequest: fc.Arbitrary<HttpRequestInfo> = fc.record(
  {
    sourceIp: fc.oneof(fc.ipV4(), fc.ipV6(), fc.string()),
    sourcePrincipal: fc.option(fc.oneof(fc.string(), fc.constantFrom('spiffe://cluster.local/ns/foo/sa/x', 'cluster.local/ns/bar-1/sa/y')), { nil: undefined }),
    trustDomain: fc.option(fc.constantFrom('cluster.local', ''), { nil: undefined }),
    destinationIp: fc.oneof(fc.ipV4(), fc.string()),
    destinationPort: fc.oneof(fc.integer({ min: 0, max: 70000 }), fc.constant(Number.NaN)),
    method: fc.oneof(fc.constantFrom('GET', 'HEAD', 'POST', 'OPTIONS', 'DELETE'), fc.string()),
    path: fc.oneof(fc.webPath(), fc.string(), fc.constantFrom('/admin', '/./admin/x', '/%2e%2E/admin', '/api/../admin', '*', '')),
    authority: fc.oneof(fc.domain(), fc.string(), fc.constantFrom('db.internal', 'API.example.com', 'httpbin:8000')),
    headers: fc.dictionary(fc.oneof(fc.string(), fc.constantFrom('x-role', 'user-agent')), headerValue, { maxKeys: 4 }),
    remoteIp: fc.option(fc.oneof(fc.ipV4(), fc.ipV6(), fc.string()), { nil: undefined }),
  },
  { requiredKeys: ['sourceIp', 'destinationIp', 'destinationPort', 'method', 'path', 'authority', 'headers'] },
);

const REASONS = new Set(['denied-by-policy', 'allowed-by-policy', 'no-allow-match', 'no-allow-policy']);
function assertDecision(d: PolicyDecision): void {
  assert.equal(typeof d.allowed, 'boolean');
  assert.ok(REASONS.has(d.reason), d.reason);
  assert.equal(d.allowed, d.action === 'ALLOW');
  if (d.reason === 'denied-by-policy') assert.equal(d.policy, 'foo/deny-admin');
  if (d.reason === 'allowed-by-policy') assert.equal(d.policy, 'foo/allow-read');
}

test('never throws on arbitrary requests, and decides the same twice', () => {
  fc.assert(
    fc.property(anyRequest, (req) => {
      const d = evaluateRequest(wp, req);
      assertDecision(d);
      assert.deepEqual(evaluateRequest(wp, req), d);
    }),
    { numRuns: 2000, seed: SEED },
  );
});

/** The request with its header lookups, path and authority reading through getters that first run `nested`. */
function withNestedEvaluation(req: HttpRequestInfo, nested: () => void): HttpRequestInfo {
  const headers = new Proxy(req.headers, {
    get(target, name) {
      nested();
      return Reflect.get(target, name);
    },
  });
  return {
    ...req,
    headers,
    get path() {
      nested();
      return req.path;
    },
    get authority() {
      nested();
      return req.authority;
    },
  };
}

test('reentrant: a decision made during a match (from a getter of the request) changes neither result', () => {
  fc.assert(
    fc.property(anyRequest, anyRequest, (outer, inner) => {
      const expectedOuter = evaluateRequest(wp, outer);
      const expectedInner = evaluateRequest(wp, inner);
      const d = evaluateRequest(
        wp,
        withNestedEvaluation(outer, () => {
          assert.deepEqual(evaluateRequest(wp, inner), expectedInner);
        }),
      );
      assert.deepEqual(d, expectedOuter);
    }),
    { numRuns: 500, seed: SEED },
  );
  // The getters are really read during the match (the property above is not vacuous).
  let reads = 0;
  evaluateRequest(wp, withNestedEvaluation({ sourceIp: '198.18.0.1', destinationIp: '10.96.0.1', destinationPort: 80, method: 'GET', path: '/admin', authority: 'x', headers: {} }, () => reads++));
  assert.ok(reads > 0);
});

test('the normalized path is idempotent and has no dot segments left', () => {
  const pathChars = fc.constantFrom('/', '.', '%', '2', 'e', 'E', 'f', 'F', '4', '1', 'a', '\\', '?', '#', '~');
  const path = fc.array(pathChars, { maxLength: 24 }).map((cs) => `/${cs.join('')}`);
  fc.assert(
    fc.property(fc.oneof(path, fc.webPath(), fc.string()), (p) => {
      const n = normalizeRequestPath(p);
      assert.equal(normalizeRequestPath(n), n, `${JSON.stringify(p)} -> ${JSON.stringify(n)}`);
      if (n.startsWith('/')) {
        assert.ok(!n.split('/').some((s) => s === '.' || s === '..'), n);
        assert.ok(!/%(?:[46][1-9A-F]|[57][0-9A]|3[0-9]|2D|2E|5F|7E)/i.test(n), `an unreserved character stays escaped in ${n}`);
        assert.ok(!n.includes('\\') && !n.includes('?') && !n.includes('#'), n);
      }
    }),
    { numRuns: 3000, seed: SEED },
  );
  const table: [string, string][] = [
    ['/a/b/../c', '/a/c'],
    ['/a/./b', '/a/b'],
    ['/a/b/..', '/a/'],
    ['/..', '/'],
    ['/../../x', '/x'],
    ['/a//b', '/a//b'],
    ['/%2e%2E/admin', '/admin'],
    ['/%61%62c', '/abc'],
    ['/a%2fb', '/a%2Fb'],
    ['/a\\..\\admin', '/admin'],
    ['/%%32e%%32e/admin', '/%252e%252e/admin'],
    ['/x?y=/../z', '/x'],
    ['/x#/../z', '/x'],
    ['*', '*'],
    ['/plain/path', '/plain/path'],
  ];
  for (const [input, expected] of table) assert.equal(normalizeRequestPath(input), expected, input);
});
