/**
 * What a waypoint policy may say, refused by field when it says something Weft cannot enforce
 * (JWT, SNI, external authorization, targets it does not know), and the last good version kept.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validatePolicyObject } from '../../policy/validate.js';
import { compilePolicies, evaluateRequest } from '../../policy/engine.js';
import { PolicyState } from '../../agent/proxy/authorization.js';
import { silentLogger } from '../../agent/log.js';
import type { OtherObject } from '../../agent/discovery/types.js';

const ap = (spec: unknown, namespace = 'foo', name = 'p') => ({ apiVersion: 'weft.dev/v1alpha1', kind: 'AuthorizationPolicy', metadata: { name, namespace }, spec });
const GATEWAY = { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'waypoint' };
const SERVICE = { group: '', kind: 'Service', name: 'httpbin' };
const at = (rules: unknown[], extra: Record<string, unknown> = {}) => ap({ targetRefs: [SERVICE], rules, ...extra });

function errorsOf(obj: unknown): [string, string][] {
  const r = validatePolicyObject(obj);
  assert.equal(r.ok, false, `accepted: ${JSON.stringify(obj)}`);
  return r.ok ? [] : r.errors.map((e) => [e.path, e.message]);
}

test('waypoint policies that validate', () => {
  const ok = [
    ap({ targetRefs: [SERVICE] }),
    ap({ targetRefs: [{ kind: 'Service', name: 'httpbin' }] }),
    ap({ targetRefs: [{ ...SERVICE, namespace: 'foo' }, GATEWAY] }),
    ap({ targetRef: GATEWAY, action: 'DENY', rules: [{}] }),
    ap({ targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'GatewayClass', name: 'weft-waypoint' }], action: 'DENY', rules: [{}] }, 'weft-system'),
    at([
      {
        from: [{ source: { principals: ['cluster.local/ns/foo/*'], remoteIpBlocks: ['203.0.113.0/24'], notRemoteIpBlocks: ['203.0.113.7'] } }],
        to: [{ operation: { methods: ['GET', 'HEAD'], notPaths: ['/admin*'], paths: ['*.html', '/api/*', '*'], hosts: ['*.example.com', 'Example.com:*'], ports: ['8000'] } }],
        when: [
          { key: 'request.headers[User-Agent]', values: ['Mozilla/*'] },
          { key: 'request.headers[:authority]', notValues: ['evil*'] },
          { key: 'remote.ip', values: ['10.0.0.0/8'] },
          { key: 'source.principal', values: ['*'] },
          { key: 'destination.port', values: ['8000'] },
        ],
      },
    ]),
  ];
  for (const obj of ok) {
    const r = validatePolicyObject(obj);
    assert.ok(r.ok, JSON.stringify(r));
  }
});

test('refused by field, each with the reason', () => {
  const table: [string, unknown, [string, RegExp][]][] = [
    ['selector and targetRef', ap({ selector: { matchLabels: { app: 'x' } }, targetRef: GATEWAY }), [['spec.targetRef', /selector and targetRef are mutually exclusive/]]],
    ['targetRef and targetRefs', ap({ targetRef: GATEWAY, targetRefs: [SERVICE] }), [['spec.targetRef', /targetRef \(deprecated\) and targetRefs are mutually exclusive/]]],
    ['Gateway without its group', ap({ targetRefs: [{ kind: 'Gateway', name: 'waypoint' }] }), [['spec.targetRefs[0].kind', /unsupported target Gateway \(a Gateway target needs group gateway.networking.k8s.io\)/]]],
    ['Service in another group', ap({ targetRefs: [{ group: 'x.io', kind: 'Service', name: 's' }] }), [['spec.targetRefs[0].kind', /unsupported target x.io\/Service \(a Service target needs group '' or no group\)/]]],
    ['ServiceEntry', ap({ targetRefs: [{ group: 'networking.istio.io', kind: 'ServiceEntry', name: 's' }] }), [['spec.targetRefs[0].kind', /Weft has no ServiceEntry/]]],
    ['another kind', ap({ targetRefs: [SERVICE, { group: 'apps', kind: 'Deployment', name: 'd' }] }), [['spec.targetRefs[1].kind', /unsupported target apps\/Deployment/]]],
    ['cross-namespace target', ap({ targetRefs: [{ ...SERVICE, namespace: 'bar' }] }), [['spec.targetRefs[0].namespace', /cross-namespace targets are not supported: must be the policy's namespace foo or absent \(got "bar"\)/]]],
    ['singular cross-namespace target', ap({ targetRef: { ...GATEWAY, namespace: 'bar' } }), [['spec.targetRef.namespace', /cross-namespace/]]],
    ['GatewayClass outside the root namespace', ap({ targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'GatewayClass', name: 'weft-waypoint' }] }), [['spec.targetRefs[0].kind', /only allowed in the root namespace weft-system/]]],
    ['GatewayClass with a namespace', ap({ targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'GatewayClass', name: 'weft-waypoint', namespace: 'weft-system' }] }, 'weft-system'), [['spec.targetRefs[0].namespace', /cluster-scoped/]]],
    ['more than 16 targets', ap({ targetRefs: Array.from({ length: 17 }, (_, i) => ({ kind: 'Service', name: `s${i}` })) }), [['spec.targetRefs', /.+/]]],
    ['requestPrincipals (JWT)', at([{ from: [{ source: { requestPrincipals: ['iss/sub'] } }] }]), [['spec.rules[0].from[0].source.requestPrincipals', /JWT request authentication is not supported by Weft/]]],
    ['notRequestPrincipals (JWT)', at([{ from: [{ source: { namespaces: ['a'], notRequestPrincipals: ['*'] } }] }]), [['spec.rules[0].from[0].source.notRequestPrincipals', /JWT/]]],
    ['request.auth.claims (JWT)', at([{ when: [{ key: 'request.auth.claims[iss]', values: ['https://accounts.google.com'] }] }]), [['spec.rules[0].when[0].key', /key "request.auth.claims\[iss\]": JWT request authentication is not supported/]]],
    ['request.auth.principal (JWT)', at([{ when: [{ key: 'request.auth.principal', values: ['a/b'] }] }]), [['spec.rules[0].when[0].key', /"request.auth.principal": JWT/]]],
    ['connection.sni', at([{ when: [{ key: 'connection.sni', values: ['x.example.com'] }] }]), [['spec.rules[0].when[0].key', /"connection.sni" is not supported at a waypoint: requests arrive inside HBONE/]]],
    ['experimental.envoy.filters', at([{ when: [{ key: 'experimental.envoy.filters.network.mysql_proxy[db.table]', values: ['[update]'] }] }]), [['spec.rules[0].when[0].key', /is not supported at a waypoint \(supported: source.ip, .*remote.ip, request.headers\[NAME\]\)/]]],
    ['a header name that is not one', at([{ when: [{ key: 'request.headers[x y]', values: ['a'] }] }]), [['spec.rules[0].when[0].key', /request.headers\[NAME\] with NAME an HTTP field name/]]],
    ['a header key without its bracket', at([{ when: [{ key: 'request.headers[x', values: ['a'] }] }]), [['spec.rules[0].when[0].key', /request.headers\[NAME\]/]]],
    ['a header value with * inside', at([{ when: [{ key: 'request.headers[x-a]', values: ['ok', 'a*b'] }] }]), [['spec.rules[0].when[0].values[1]', /'\*' only alone, as a prefix/]]],
    ['a remote.ip that is no address', at([{ when: [{ key: 'remote.ip', notValues: ['nope'] }] }]), [['spec.rules[0].when[0].notValues[0]', /not a CIDR or IP address/]]],
    ['a remoteIpBlock that is no address', at([{ from: [{ source: { remoteIpBlocks: ['10.0.0.0/33'] } }] }]), [['spec.rules[0].from[0].source.remoteIpBlocks[0]', /not a CIDR or IP address/]]],
    ['a path with * inside', at([{ to: [{ operation: { paths: ['/a/*/b'] } }] }]), [['spec.rules[0].to[0].operation.paths[0]', /'\*' only alone/]]],
    ['a path template', at([{ to: [{ operation: { paths: ['/foo/{*}/bar', '/ok*'], notPaths: ['/x/{**}'] } }] }]), [['spec.rules[0].to[0].operation.paths[0]', /path templates \(\{\*\}, \{\*\*\}\) are not supported; use prefix\* or \*suffix \(got "\/foo\/\{\*\}\/bar"\)/], ['spec.rules[0].to[0].operation.notPaths[0]', /path templates/]]],
    ['an empty method', at([{ to: [{ operation: { methods: [''] } }] }]), [['spec.rules[0].to[0].operation.methods[0]', /must be non-empty/]]],
    ['CUSTOM', ap({ targetRefs: [GATEWAY], action: 'CUSTOM', provider: { name: 'ext-authz' } }), [['spec.action', /must be one of ALLOW, DENY, AUDIT \(got "CUSTOM"\): CUSTOM \(an external authorizer\) is not supported/], ['spec.provider', /unknown field/]]],
  ];
  for (const [name, obj, expected] of table) {
    const errors = errorsOf(obj);
    for (const [path, message] of expected) {
      const e = errors.find(([p]) => p === path);
      assert.ok(e !== undefined, `${name}: no error at ${path} in ${JSON.stringify(errors)}`);
      assert.match(e[1], message, name);
    }
  }
});

test('node agents keep failing closed on the same fields without targetRefs (refusing them is for waypoints only)', () => {
  for (const spec of [
    { rules: [{ from: [{ source: { requestPrincipals: ['iss/sub'] } }] }] },
    { action: 'DENY', rules: [{ when: [{ key: 'connection.sni', values: ['x'] }] }] },
    { rules: [{ when: [{ key: 'request.headers[x-a]', values: ['a*b'] }] }] },
  ]) {
    assert.ok(validatePolicyObject(ap(spec)).ok, JSON.stringify(spec));
    assert.equal(compilePolicies([ap(spec)]).warnings[0]?.code, 'l7-fields-at-l4');
  }
});

test('a refused waypoint policy leaves its last good version in force (the agent-side mechanism)', () => {
  const state = new PolicyState(silentLogger);
  const good = ap({ targetRefs: [SERVICE], action: 'DENY', rules: [{ to: [{ operation: { methods: ['DELETE'] } }] }] }, 'foo', 'no-delete') as unknown as OtherObject;
  const bad = ap({ targetRefs: [SERVICE], action: 'DENY', rules: [{ to: [{ operation: { methods: ['POST'] } }], when: [{ key: 'request.auth.claims[iss]', values: ['x'] }] }] }, 'foo', 'no-delete') as unknown as OtherObject;
  const request = (method: string) => ({ sourceIp: '198.18.140.2', destinationIp: '10.96.0.1', destinationPort: 8000, method, path: '/', authority: 'httpbin', headers: {} });
  const target = { namespace: 'foo', name: 'waypoint', service: 'foo/httpbin' };
  assert.equal(state.update([good]), true);
  assert.equal(evaluateRequest(state.store.forWaypointTarget(target), request('DELETE')).policy, 'foo/no-delete');
  assert.equal(state.update([bad]), false);
  const [refusal] = state.refusals();
  assert.equal(refusal?.object, 'AuthorizationPolicy/foo/no-delete');
  assert.match(refusal?.reason ?? '', /spec.rules\[0\].when\[0\].key: key "request.auth.claims\[iss\]": JWT .*; the previous version stays in force/);
  assert.equal(evaluateRequest(state.store.forWaypointTarget(target), request('DELETE')).policy, 'foo/no-delete');
  assert.equal(evaluateRequest(state.store.forWaypointTarget(target), request('POST')).allowed, true);
});
