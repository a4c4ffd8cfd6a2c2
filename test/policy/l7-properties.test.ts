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

// --- against a reference model ---------------------------------------------------------------
// Istio's semantics written out plainly (no compilation, no shared helpers), over random
// policies and requests drawn from small vocabularies so that matches and misses both happen.

const METHODS = ['GET', 'POST', 'DELETE'];
const PATHS = ['/', '/api/v1', '/api/v2/x', '/admin', '/a.html'];
const HOSTS = ['svc.foo:8000', 'svc.foo', 'API.example.com'];
const NAMESPACES = ['foo', 'bar', 'ops'];
const VALUES: Record<string, string[]> = {
  methods: ['GET', 'POST', 'G*', '*T', '*'],
  paths: ['/', '/api/*', '*.html', '/admin', '*'],
  hosts: ['svc.foo', 'svc.foo:*', '*.example.com', 'api.EXAMPLE.com'],
  ports: ['8000', '9000'],
  principals: ['cluster.local/ns/foo/sa/a', 'cluster.local/ns/bar/*', '*'],
  namespaces: ['foo', 'b*', 'ops'],
  header: ['v1', 'v2*', '*'],
};
type RefRequest = { method: string; path: string; authority: string; port: number; ns: string | undefined; canary: string | undefined };
type RefField = { field: string; not: boolean; values: string[] };
type RefRule = { from: RefField[][] | undefined; to: RefField[][] | undefined; when: RefField[] };
type RefPolicy = { name: string; action: 'ALLOW' | 'DENY' | 'AUDIT'; rules: RefRule[] | undefined };

function refString(pattern: string, value: string, lower: boolean): boolean {
  const p = lower ? pattern.toLowerCase() : pattern;
  const v = lower ? value.toLowerCase() : value;
  if (p === '*') return v !== '';
  if (p.startsWith('*')) return v !== '' && v.endsWith(p.slice(1));
  if (p.endsWith('*')) return v !== '' && v.startsWith(p.slice(0, -1));
  return v === p;
}
function refValue(field: string, r: RefRequest): string {
  switch (field) {
    case 'methods':
      return r.method;
    case 'paths':
      return r.path;
    case 'hosts':
      return r.authority;
    case 'ports':
      return String(r.port);
    case 'principals':
      return r.ns === undefined ? '' : `cluster.local/ns/${r.ns}/sa/a`;
    case 'namespaces':
      return r.ns ?? '';
    default:
      return r.canary ?? '';
  }
}
function refField(f: RefField, r: RefRequest): boolean {
  const any = f.values.some((p) => (f.field === 'ports' ? p === String(r.port) : refString(p, refValue(f.field, r), f.field === 'hosts')));
  return f.not ? !any : any;
}
function refRule(rule: RefRule, r: RefRequest): boolean {
  const clause = (alts: RefField[][] | undefined) => alts === undefined || alts.some((fields) => fields.every((f) => refField(f, r)));
  return clause(rule.from) && clause(rule.to) && rule.when.every((f) => refField(f, r));
}
function refDecide(policies: RefPolicy[], r: RefRequest): { allowed: boolean; policy: string | undefined; audits: string[] } {
  const sorted = [...policies].sort((a, b) => (a.name < b.name ? -1 : 1));
  const matches = (p: RefPolicy) => (p.rules ?? []).some((rule) => refRule(rule, r));
  const audits = sorted.filter((p) => p.action === 'AUDIT' && matches(p)).map((p) => `foo/${p.name}`);
  const deny = sorted.find((p) => p.action === 'DENY' && matches(p));
  if (deny !== undefined) return { allowed: false, policy: `foo/${deny.name}`, audits };
  const allows = sorted.filter((p) => p.action === 'ALLOW');
  if (allows.length === 0) return { allowed: true, policy: undefined, audits };
  const allow = allows.find(matches);
  return { allowed: allow !== undefined, policy: allow === undefined ? undefined : `foo/${allow.name}`, audits };
}

const refField$ = (fields: string[]) =>
  fc.constantFrom(...fields).chain((field) => fc.record({ field: fc.constant(field), not: fc.boolean(), values: fc.uniqueArray(fc.constantFrom(...VALUES[field]!), { minLength: 1, maxLength: 2 }) }));
const refAlternative = (fields: string[]) => fc.uniqueArray(refField$(fields), { minLength: 1, maxLength: 2, selector: (f) => `${f.field}${f.not}` });
const refRule$: fc.Arbitrary<RefRule> = fc.record({
  from: fc.option(fc.array(refAlternative(['principals', 'namespaces']), { minLength: 1, maxLength: 2 }), { nil: undefined }),
  to: fc.option(fc.array(refAlternative(['methods', 'paths', 'hosts', 'ports']), { minLength: 1, maxLength: 2 }), { nil: undefined }),
  when: fc.array(refField$(['header']), { maxLength: 1 }),
});
const refPolicies = fc.uniqueArray(
  fc.record({ name: fc.constantFrom('a', 'b', 'c', 'd'), action: fc.constantFrom<RefPolicy['action']>('ALLOW', 'DENY', 'AUDIT'), rules: fc.option(fc.array(refRule$, { maxLength: 2 }), { nil: undefined }) }),
  { minLength: 1, maxLength: 4, selector: (p) => p.name },
);
const refRequest: fc.Arbitrary<RefRequest> = fc.record({
  method: fc.constantFrom(...METHODS),
  path: fc.constantFrom(...PATHS),
  authority: fc.constantFrom(...HOSTS),
  port: fc.constantFrom(8000, 9000),
  ns: fc.option(fc.constantFrom(...NAMESPACES), { nil: undefined }),
  canary: fc.option(fc.constantFrom('v1', 'v2-beta', ''), { nil: undefined }),
});

function toObject(p: RefPolicy): unknown {
  const fields = (alt: RefField[]) => Object.fromEntries(alt.map((f) => [f.not ? `not${f.field[0]!.toUpperCase()}${f.field.slice(1)}` : f.field, f.values]));
  const rules = p.rules?.map((rule) => ({
    ...(rule.from === undefined ? {} : { from: rule.from.map((alt) => ({ source: fields(alt) })) }),
    ...(rule.to === undefined ? {} : { to: rule.to.map((alt) => ({ operation: fields(alt) })) }),
    ...(rule.when.length === 0 ? {} : { when: rule.when.map((f) => ({ key: 'request.headers[X-Canary]', [f.not ? 'notValues' : 'values']: f.values })) }),
  }));
  return ap(p.name, { targetRefs: [GATEWAY], action: p.action, ...(rules === undefined ? {} : { rules }) });
}

test('evaluateRequest agrees with a plain reading of the semantics on random policies and requests', () => {
  let denied = 0;
  let allowedByPolicy = 0;
  fc.assert(
    fc.property(refPolicies, fc.array(refRequest, { minLength: 1, maxLength: 8 }), (policies, requests) => {
      const s = compilePolicies(policies.map(toObject));
      assert.deepEqual(s.rejected, []);
      const view = s.forWaypointTarget({ namespace: 'foo', name: 'waypoint' });
      for (const q of requests) {
        const req: HttpRequestInfo = {
          sourceIp: '198.18.140.9',
          sourcePrincipal: q.ns === undefined ? undefined : `spiffe://cluster.local/ns/${q.ns}/sa/a`,
          destinationIp: '10.96.0.1',
          destinationPort: q.port,
          method: q.method,
          path: q.path,
          authority: q.authority,
          headers: q.canary === undefined ? {} : { 'x-canary': q.canary },
        };
        const want = refDecide(policies, q);
        const got = evaluateRequest(view, req);
        const context = JSON.stringify({ policies: policies.map(toObject), q });
        assert.equal(got.allowed, want.allowed, context);
        assert.equal(got.policy, want.policy, context);
        assert.deepEqual(got.auditPolicies ?? [], want.audits, context);
        if (!got.allowed) denied++;
        if (got.reason === 'allowed-by-policy') allowedByPolicy++;
      }
    }),
    { numRuns: 1500, seed: SEED },
  );
  // Both outcomes were exercised (the comparison is not between two constants).
  assert.ok(denied > 100 && allowedByPolicy > 100, `denied ${denied}, allowed by a policy ${allowedByPolicy}`);
});
