import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicies, evaluate, type PolicyDecision } from '../../policy/engine.js';
import type { ConnectionInfo } from '../../policy/authz.js';

type Spec = Record<string, unknown>;
const ap = (name: string, namespace: string, spec: Spec | undefined) => ({ apiVersion: 'weft.dev/v1alpha1', kind: 'AuthorizationPolicy', metadata: { name, namespace }, spec });

const WEB = { namespace: 'default', labels: { app: 'web', version: 'v1' } };
const sa = (ns: string, name: string) => `spiffe://cluster.local/ns/${ns}/sa/${name}`;
/** An mTLS connection from default/client at 198.18.0.5 to port 8080. */
const base: ConnectionInfo = { sourceIp: '198.18.0.5', sourcePrincipal: sa('default', 'client'), destinationIp: '198.18.1.9', destinationPort: 8080 };
const c = (over: Partial<ConnectionInfo>): ConnectionInfo => ({ ...base, ...over });
const plaintext = c({ sourcePrincipal: undefined });

/** One ALLOW policy on WEB with a single rule; decides whether `conn` is allowed. */
function allowedByRule(rule: Spec, conn: ConnectionInfo): boolean {
  const store = compilePolicies([ap('p', 'default', { rules: [rule] })]);
  assert.equal(store.rejected.length, 0, JSON.stringify(store.rejected));
  return evaluate(store.forWorkload(WEB), conn).allowed;
}

test('every L4 field and its not-form', () => {
  const src = (source: Spec) => ({ from: [{ source }] });
  const op = (operation: Spec) => ({ to: [{ operation }] });
  const table: [string, Spec, ConnectionInfo, boolean][] = [
    ['principals exact', src({ principals: ['cluster.local/ns/default/sa/client'] }), base, true],
    ['principals exact, other sa', src({ principals: ['cluster.local/ns/default/sa/other'] }), base, false],
    ['principals without spiffe:// in conn', src({ principals: ['cluster.local/ns/default/sa/client'] }), c({ sourcePrincipal: 'cluster.local/ns/default/sa/client' }), true],
    ['principals plaintext', src({ principals: ['*'] }), plaintext, false],
    ['notPrincipals match', src({ notPrincipals: ['cluster.local/ns/default/sa/client'] }), base, false],
    ['notPrincipals other', src({ notPrincipals: ['cluster.local/ns/default/sa/other'] }), base, true],
    ['notPrincipals plaintext', src({ notPrincipals: ['cluster.local/ns/default/sa/client'] }), plaintext, true],
    ['notPrincipals * matches plaintext', src({ notPrincipals: ['*'] }), plaintext, true],
    ['notPrincipals * does not match mTLS', src({ notPrincipals: ['*'] }), base, false],
    ['namespaces', src({ namespaces: ['default'] }), base, true],
    ['namespaces other', src({ namespaces: ['prod'] }), base, false],
    ['namespaces plaintext', src({ namespaces: ['default'] }), plaintext, false],
    ['namespaces need mTLS even when sourceNamespace is given', src({ namespaces: ['default'] }), c({ sourcePrincipal: undefined, sourceNamespace: 'default' }), false],
    ['namespaces from sourceNamespace', src({ namespaces: ['prod'] }), c({ sourceNamespace: 'prod' }), true],
    // F6 (issue 10): a namespace of another trust domain is not this mesh's namespace.
    ['namespaces, same trust domain', src({ namespaces: ['default'] }), c({ trustDomain: 'cluster.local' }), true],
    ['namespaces, other trust domain', src({ namespaces: ['default'] }), c({ trustDomain: 'cluster.local', sourcePrincipal: 'spiffe://evil.example/ns/default/sa/client' }), false],
    ['namespaces, trust domain prefix only', src({ namespaces: ['default'] }), c({ trustDomain: 'cluster.local', sourcePrincipal: 'spiffe://cluster.local.evil/ns/default/sa/client' }), false],
    ['namespaces, other trust domain, sourceNamespace given', src({ namespaces: ['default'] }), c({ trustDomain: 'cluster.local', sourcePrincipal: 'spiffe://evil.example/ns/default/sa/client', sourceNamespace: 'default' }), false],
    ['notNamespaces', src({ notNamespaces: ['default'] }), base, false],
    ['notNamespaces other', src({ notNamespaces: ['prod'] }), base, true],
    ['ipBlocks v4 cidr', src({ ipBlocks: ['198.18.0.0/24'] }), base, true],
    ['ipBlocks v4 single', src({ ipBlocks: ['198.18.0.6'] }), base, false],
    ['ipBlocks v4 via mapped v6', src({ ipBlocks: ['198.18.0.0/24'] }), c({ sourceIp: '::ffff:198.18.0.5' }), true],
    ['ipBlocks v6', src({ ipBlocks: ['2001:db8::/64'] }), c({ sourceIp: '2001:db8::5' }), true],
    ['ipBlocks v6 outside', src({ ipBlocks: ['2001:db8::/64'] }), c({ sourceIp: '2001:db8:1::5' }), false],
    ['ipBlocks v4 block, v6 peer', src({ ipBlocks: ['0.0.0.0/0'] }), c({ sourceIp: '2001:db8::5' }), false],
    ['notIpBlocks', src({ notIpBlocks: ['198.18.0.0/15'] }), base, false],
    ['notIpBlocks outside', src({ notIpBlocks: ['10.0.0.0/8'] }), base, true],
    ['notIpBlocks v6', src({ notIpBlocks: ['2001:db8::/32'] }), c({ sourceIp: '2001:db8::5' }), false],
    ['ports', op({ ports: ['8080'] }), base, true],
    ['ports other', op({ ports: ['80', '443'] }), base, false],
    ['notPorts', op({ notPorts: ['8080'] }), base, false],
    ['notPorts other', op({ notPorts: ['80'] }), base, true],
    ['ports and notPorts', op({ ports: ['8080', '9090'], notPorts: ['9090'] }), c({ destinationPort: 9090 }), false],
    ['when source.ip', { when: [{ key: 'source.ip', values: ['198.18.0.5'] }] }, base, true],
    ['when source.ip notValues', { when: [{ key: 'source.ip', notValues: ['198.18.0.0/16'] }] }, base, false],
    ['when source.namespace', { when: [{ key: 'source.namespace', values: ['def*'] }] }, base, true],
    ['when source.namespace notValues', { when: [{ key: 'source.namespace', notValues: ['default'] }] }, base, false],
    ['when source.principal', { when: [{ key: 'source.principal', values: ['*/sa/client'] }] }, base, true],
    ['when source.principal notValues', { when: [{ key: 'source.principal', notValues: ['*'] }] }, base, false],
    ['when destination.port', { when: [{ key: 'destination.port', values: ['8080'] }] }, base, true],
    ['when destination.port notValues', { when: [{ key: 'destination.port', notValues: ['8080'] }] }, base, false],
    ['when destination.ip', { when: [{ key: 'destination.ip', values: ['198.18.1.0/24'] }] }, base, true],
    ['when destination.ip notValues', { when: [{ key: 'destination.ip', notValues: ['198.18.1.9'] }] }, base, false],
    ['when values and notValues', { when: [{ key: 'destination.port', values: ['8080'], notValues: ['8080'] }] }, base, false],
  ];
  for (const [name, rule, conn, expected] of table) assert.equal(allowedByRule(rule, conn), expected, name);
});

test('principals and namespaces support Istio * forms', () => {
  const table: [string, string | undefined, boolean][] = [
    ['*', sa('a', 'b'), true],
    ['*', undefined, false],
    ['cluster.local/ns/a/*', sa('a', 'b'), true],
    ['cluster.local/ns/a/*', sa('ab', 'b'), false],
    ['*/sa/b', sa('x', 'b'), true],
    ['*/sa/b', sa('x', 'bb'), false],
    ['*/sa/b', 'spiffe://other.domain/ns/x/sa/b', true],
    ['cluster.local/ns/a/sa/b', 'spiffe://other.domain/ns/a/sa/b', false],
  ];
  for (const [pattern, principal, expected] of table) {
    assert.equal(allowedByRule({ from: [{ source: { principals: [pattern] } }] }, c({ sourcePrincipal: principal })), expected, `${pattern} vs ${principal}`);
  }
  const ns: [string, string, boolean][] = [
    ['prod-*', 'prod-eu', true],
    ['prod-*', 'staging', false],
    ['*-eu', 'prod-eu', true],
    ['*', 'anything', true],
  ];
  for (const [pattern, namespace, expected] of ns) {
    assert.equal(allowedByRule({ from: [{ source: { namespaces: [pattern] } }] }, c({ sourcePrincipal: sa(namespace, 'x') })), expected, `${pattern} vs ${namespace}`);
  }
});

test('fields of a rule are ANDed, list entries and sources ORed, rules ORed', () => {
  const fromA = { source: { principals: ['cluster.local/ns/default/sa/a'] } };
  const fromNs = { source: { namespaces: ['prod'] } };
  const both = { from: [{ source: { principals: ['cluster.local/ns/default/sa/a'], ipBlocks: ['10.0.0.0/8'] } }] };
  const rule = { from: [fromA, fromNs], to: [{ operation: { ports: ['80'] } }, { operation: { ports: ['443'] } }] };
  const table: [string, Spec, ConnectionInfo, boolean][] = [
    ['AND inside a source: principal ok, ip not', both, c({ sourcePrincipal: sa('default', 'a') }), false],
    ['AND inside a source: both ok', both, c({ sourcePrincipal: sa('default', 'a'), sourceIp: '10.1.1.1' }), true],
    ['first source, first port', rule, c({ sourcePrincipal: sa('default', 'a'), destinationPort: 80 }), true],
    ['second source, second port', rule, c({ sourcePrincipal: sa('prod', 'z'), destinationPort: 443 }), true],
    ['source ok, port not', rule, c({ sourcePrincipal: sa('prod', 'z'), destinationPort: 8080 }), false],
    ['port ok, source not', rule, c({ sourcePrincipal: sa('dev', 'z'), destinationPort: 80 }), false],
    ['from and when both required', { from: [fromNs], when: [{ key: 'source.ip', values: ['10.0.0.0/8'] }] }, c({ sourcePrincipal: sa('prod', 'z') }), false],
    ['empty rule matches anything', {}, plaintext, true],
  ];
  for (const [name, r, conn, expected] of table) assert.equal(allowedByRule(r, conn), expected, name);

  const twoRules = compilePolicies([ap('p', 'default', { rules: [{ from: [fromA] }, { to: [{ operation: { ports: ['9090'] } }] }] })]).forWorkload(WEB);
  assert.equal(evaluate(twoRules, c({ sourcePrincipal: sa('default', 'a') })).allowed, true);
  assert.equal(evaluate(twoRules, c({ destinationPort: 9090 })).allowed, true);
  assert.equal(evaluate(twoRules, base).allowed, false);
});

test('decision order: DENY beats ALLOW, AUDIT never decides, defaults', () => {
  const deny = ap('deny-ip', 'default', { action: 'DENY', rules: [{ from: [{ source: { ipBlocks: ['198.18.0.66'] } }] }] });
  const allow = ap('allow-all', 'default', { rules: [{}] });
  const allowClient = ap('allow-client', 'default', { rules: [{ from: [{ source: { principals: ['cluster.local/ns/default/sa/client'] } }] }] });
  const audit = ap('audit-8080', 'default', { action: 'AUDIT', rules: [{ to: [{ operation: { ports: ['8080'] } }] }] });
  const bad = c({ sourceIp: '198.18.0.66' });
  const table: [string, unknown[], ConnectionInfo, PolicyDecision][] = [
    ['no policy: allow', [], base, { allowed: true, action: 'ALLOW', reason: 'no-allow-policy' }],
    ['only DENY, no match: allow', [deny], base, { allowed: true, action: 'ALLOW', reason: 'no-allow-policy' }],
    ['only DENY, match: deny', [deny], bad, { allowed: false, action: 'DENY', policy: 'default/deny-ip', reason: 'denied-by-policy' }],
    ['DENY beats a matching ALLOW', [deny, allow], bad, { allowed: false, action: 'DENY', policy: 'default/deny-ip', reason: 'denied-by-policy' }],
    ['ALLOW matches', [deny, allow], base, { allowed: true, action: 'ALLOW', policy: 'default/allow-all', reason: 'allowed-by-policy' }],
    ['ALLOW present, no match: deny', [allowClient], plaintext, { allowed: false, action: 'DENY', reason: 'no-allow-match' }],
    ['allow-nothing (empty spec) denies everything', [ap('allow-nothing', 'default', {})], base, { allowed: false, action: 'DENY', reason: 'no-allow-match' }],
    ['allow-nothing (no spec) denies everything', [ap('allow-nothing', 'default', undefined)], base, { allowed: false, action: 'DENY', reason: 'no-allow-match' }],
    ['DENY with no rules denies nothing', [ap('deny-nothing', 'default', { action: 'DENY' })], base, { allowed: true, action: 'ALLOW', reason: 'no-allow-policy' }],
    ['DENY with an empty rule denies everything', [ap('deny-all', 'default', { action: 'DENY', rules: [{}] })], base, { allowed: false, action: 'DENY', policy: 'default/deny-all', reason: 'denied-by-policy' }],
    ['AUDIT alone does not decide', [audit], base, { allowed: true, action: 'ALLOW', reason: 'no-allow-policy', auditPolicies: ['default/audit-8080'] }],
    ['AUDIT does not count as ALLOW', [audit, allowClient], plaintext, { allowed: false, action: 'DENY', reason: 'no-allow-match', auditPolicies: ['default/audit-8080'] }],
    ['AUDIT listed on deny', [audit, deny], bad, { allowed: false, action: 'DENY', policy: 'default/deny-ip', reason: 'denied-by-policy', auditPolicies: ['default/audit-8080'] }],
    ['AUDIT not matching is not listed', [audit], c({ destinationPort: 80 }), { allowed: true, action: 'ALLOW', reason: 'no-allow-policy' }],
    ['AUDIT with no rules matches nothing', [ap('audit-none', 'default', { action: 'AUDIT' })], base, { allowed: true, action: 'ALLOW', reason: 'no-allow-policy' }],
  ];
  for (const [name, objects, conn, expected] of table) {
    const d = evaluate(compilePolicies(objects).forWorkload(WEB), conn);
    assert.deepEqual({ ...d }, expected, name);
  }
});

test('the deciding policy is the first by namespace/name, whatever the input order', () => {
  const a = ap('a-deny', 'default', { action: 'DENY', rules: [{}] });
  const b = ap('b-deny', 'default', { action: 'DENY', rules: [{}] });
  const mesh = ap('mesh-deny', 'weft-system', { action: 'DENY', rules: [{}] });
  assert.equal(evaluate(compilePolicies([b, a]).forWorkload(WEB), base).policy, 'default/a-deny');
  assert.equal(evaluate(compilePolicies([mesh, b, a]).forWorkload(WEB), base).policy, 'default/a-deny');
});

test('scope: namespace-wide, selector, root namespace (mesh-wide and mesh-wide selector)', () => {
  const denyAll = (name: string, ns: string, selector?: Record<string, string>) =>
    ap(name, ns, { action: 'DENY', rules: [{}], ...(selector === undefined ? {} : { selector: { matchLabels: selector } }) });
  const table: [string, unknown, { namespace: string; labels: Record<string, string> }, boolean][] = [
    ['namespace-wide applies in its namespace', denyAll('p', 'default'), WEB, false],
    ['namespace-wide not in another namespace', denyAll('p', 'prod'), WEB, true],
    ['selector matches', denyAll('p', 'default', { app: 'web' }), WEB, false],
    ['selector needs every label', denyAll('p', 'default', { app: 'web', version: 'v2' }), WEB, true],
    ['selector does not match other workloads', denyAll('p', 'default', { app: 'db' }), WEB, true],
    ['selector does not reach another namespace', denyAll('p', 'prod', { app: 'web' }), WEB, true],
    ['empty matchLabels is namespace-wide', denyAll('p', 'default', {}), { namespace: 'default', labels: {} }, false],
    ['root namespace without selector is mesh-wide', denyAll('p', 'weft-system'), WEB, false],
    ['root namespace selector matches in every namespace', denyAll('p', 'weft-system', { app: 'web' }), { namespace: 'prod', labels: { app: 'web' } }, false],
    ['root namespace selector still selects', denyAll('p', 'weft-system', { app: 'web' }), { namespace: 'prod', labels: { app: 'db' } }, true],
  ];
  for (const [name, obj, workload, allowed] of table) {
    assert.equal(evaluate(compilePolicies([obj]).forWorkload(workload), base).allowed, allowed, name);
  }
  // A custom root namespace moves mesh-wide scope with it.
  const custom = compilePolicies([denyAll('p', 'mesh-root'), denyAll('q', 'weft-system')], { rootNamespace: 'mesh-root' });
  assert.equal(evaluate(custom.forWorkload(WEB), base).policy, 'mesh-root/p');
  // Policies attached to a waypoint (targetRefs) are not L4 policies.
  const waypoint = ap('w', 'default', { targetRefs: [{ kind: 'Service', name: 'web' }], rules: [{ to: [{ operation: { methods: ['GET'] } }] }] });
  const s = compilePolicies([waypoint]);
  assert.equal(evaluate(s.forWorkload(WEB), base).reason, 'no-allow-policy');
  assert.equal(s.warnings.length, 0);
});

test('L7 fields fail closed with a warning naming the policy', () => {
  const table: [string, Spec, ConnectionInfo, boolean, string][] = [
    // ALLOW: the rule with L7 fields is dropped, so the policy (now matching nothing) denies.
    ['ALLOW methods', { rules: [{ to: [{ operation: { methods: ['GET'] } }] }] }, base, false, 'methods'],
    ['ALLOW paths next to a port', { rules: [{ to: [{ operation: { ports: ['8080'], paths: ['/x'] } }] }] }, base, false, 'paths'],
    ['ALLOW requestPrincipals', { rules: [{ from: [{ source: { requestPrincipals: ['iss/sub'] } }] }] }, base, false, 'requestPrincipals'],
    ['ALLOW remoteIpBlocks', { rules: [{ from: [{ source: { remoteIpBlocks: ['1.2.3.4'] } }] }] }, base, false, 'remoteIpBlocks'],
    ['ALLOW L7 when key', { rules: [{ when: [{ key: 'request.headers[x-a]', values: ['b'] }] }] }, base, false, 'request.headers[x-a]'],
    ['ALLOW: only the L7 rule is dropped', { rules: [{ to: [{ operation: { hosts: ['a'] } }] }, { from: [{ source: { namespaces: ['default'] } }] }] }, base, true, 'hosts'],
    // DENY: the L7 conditions are ignored, so it denies more.
    ['DENY methods only: denies everything', { action: 'DENY', rules: [{ to: [{ operation: { methods: ['DELETE'] } }] }] }, base, false, 'methods'],
    ['DENY notPaths with port: denies that port', { action: 'DENY', rules: [{ to: [{ operation: { ports: ['8080'], notPaths: ['/ok'] } }] }] }, base, false, 'notPaths'],
    ['DENY notPaths with port: other port fine', { action: 'DENY', rules: [{ to: [{ operation: { ports: ['9090'], notPaths: ['/ok'] } }] }] }, base, true, 'notPaths'],
    ['DENY L7 when: ignored', { action: 'DENY', rules: [{ from: [{ source: { namespaces: ['default'] } }], when: [{ key: 'request.auth.claims[iss]', values: ['x'] }] }] }, base, false, 'request.auth.claims[iss]'],
    ['DENY L7 when: L4 part still applies', { action: 'DENY', rules: [{ from: [{ source: { namespaces: ['prod'] } }], when: [{ key: 'connection.sni', values: ['x'] }] }] }, base, true, 'connection.sni'],
  ];
  for (const [name, spec, conn, allowed, field] of table) {
    const store = compilePolicies([ap('l7', 'default', spec)]);
    assert.equal(evaluate(store.forWorkload(WEB), conn).allowed, allowed, name);
    const w = store.warnings.filter((x) => x.code === 'l7-fields-at-l4');
    assert.equal(w.length, 1, name);
    assert.equal(w[0]!.policy, 'default/l7', name);
    assert.ok(w[0]!.message.includes('default/l7') && w[0]!.message.includes(field), `${name}: ${w[0]!.message}`);
    assert.match(w[0]!.message, spec['action'] === 'DENY' ? /DENY policy is enforced without the HTTP conditions/ : /rules using them are dropped/, name);
  }
  assert.equal(compilePolicies([ap('l4', 'default', { rules: [{ to: [{ operation: { ports: ['80'] } }] }] })]).warnings.length, 0);
});

test('invalid objects are rejected and take no part; other kinds are ignored', () => {
  const store = compilePolicies([
    ap('bad', 'default', { action: 'DENY', rules: [{ from: [{ source: { ipBlocks: ['nope'] } }] }] }),
    { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' } },
    { apiVersion: 'security.istio.io/v1alpha1', kind: 'AuthorizationPolicy', metadata: { name: 'istio' }, spec: {} },
    null,
    ap('ok', 'default', { action: 'DENY', rules: [{ to: [{ operation: { ports: ['22'] } }] }] }),
  ]);
  assert.deepEqual(store.rejected.map((r) => [r.kind, r.policy, r.errors[0]!.path]), [['AuthorizationPolicy', 'default/bad', 'spec.rules[0].from[0].source.ipBlocks[0]']]);
  assert.deepEqual(store.authorizationPolicies.map((p) => p.key), ['default/ok']);
  assert.equal(evaluate(store.forWorkload(WEB), base).allowed, true);
  assert.equal(evaluate(store.forWorkload(WEB), c({ destinationPort: 22 })).allowed, false);
});

test('forWorkload is cached per namespace and label set, and duplicates keep the later object', () => {
  const store = compilePolicies([ap('p', 'default', { action: 'DENY', rules: [{}] }), ap('p', 'default', { rules: [{}] })]);
  const a = store.forWorkload({ namespace: 'default', labels: { app: 'web', version: 'v1' } });
  const b = store.forWorkload({ namespace: 'default', labels: { version: 'v1', app: 'web' } });
  assert.equal(a, b);
  assert.notEqual(a, store.forWorkload({ namespace: 'default', labels: { app: 'web' } }));
  assert.deepEqual(a.authorizationPolicies, ['default/p']);
  assert.equal(a.allow.length, 1);
  assert.ok(store.warnings.some((w) => w.code === 'duplicate-policy' && w.policy === 'default/p'));
  const small = compilePolicies([], { cacheSize: 2 });
  const first = small.forWorkload({ namespace: 'a', labels: {} });
  small.forWorkload({ namespace: 'b', labels: {} });
  small.forWorkload({ namespace: 'c', labels: {} });
  assert.notEqual(small.forWorkload({ namespace: 'a', labels: {} }), first, 'evicted entries are rebuilt');
});

test('an unparseable source address matches no ipBlocks', () => {
  assert.equal(allowedByRule({ from: [{ source: { ipBlocks: ['0.0.0.0/0', '::/0'] } }] }, c({ sourceIp: 'garbage' })), false);
});
