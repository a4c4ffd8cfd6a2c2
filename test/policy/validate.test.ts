import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatFieldErrors, PolicyValidationError } from '../../policy/errors.js';
import { validatePolicyObject } from '../../policy/validate.js';
import { isWeftError } from '../../agent/errors.js';

const ap = (spec: unknown, metadata: unknown = { name: 'p', namespace: 'default' }) => ({ apiVersion: 'weft.dev/v1alpha1', kind: 'AuthorizationPolicy', metadata, spec });
const pa = (spec: unknown) => ({ apiVersion: 'weft.dev/v1alpha1', kind: 'PeerAuthentication', metadata: { name: 'p', namespace: 'default' }, spec });

test('valid policies pass and come back as the same object', () => {
  const ok = [
    ap(undefined),
    ap({}),
    ap({ rules: [{}] }),
    ap({
      selector: { matchLabels: { app: 'web', 'app.kubernetes.io/version': 'v1' } },
      action: 'DENY',
      rules: [
        {
          from: [{ source: { principals: ['cluster.local/ns/a/sa/b', 'cluster.local/ns/c/*', '*/sa/x', '*'], notNamespaces: ['kube-*'], ipBlocks: ['198.18.0.0/15', '2001:db8::/32', '10.0.0.1'] } }],
          to: [{ operation: { ports: ['8080'], notPorts: ['1', '65535'], methods: ['GET'] } }],
          when: [
            { key: 'source.ip', values: ['10.0.0.0/8'] },
            { key: 'destination.port', notValues: ['9090'] },
            { key: 'request.headers[x-user]', values: ['a'] },
          ],
        },
      ],
    }),
    pa({ mtls: { mode: 'STRICT' } }),
    pa({ selector: { matchLabels: { app: 'db' } }, mtls: { mode: 'UNSET' }, portLevelMtls: { '5432': { mode: 'PERMISSIVE' } } }),
  ];
  for (const obj of ok) {
    const r = validatePolicyObject(obj);
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.value, obj);
  }
});

test('every problem is reported with the path of its field', () => {
  const table: { name: string; obj: unknown; errors: [string, RegExp][] }[] = [
    { name: 'not an object', obj: 'x', errors: [['', /must be an object/]] },
    { name: 'other kind', obj: { apiVersion: 'weft.dev/v1alpha1', kind: 'Pod' }, errors: [['kind', /must be AuthorizationPolicy or PeerAuthentication/]] },
    { name: 'an apiVersion neither Weft nor Istio serves', obj: { ...ap({}), apiVersion: 'security.istio.io/v1alpha1' }, errors: [['apiVersion', /must be weft\.dev\/v1alpha1, security\.istio\.io\/v1, security\.istio\.io\/v1beta1/]] },
    { name: 'no name', obj: ap({}, { namespace: 'x' }), errors: [['metadata.name', /is required/]] },
    { name: 'bad CIDR', obj: ap({ rules: [{ from: [{ source: { ipBlocks: ['10.0.0.0/8', '10.0.0.0/33'] } }] }] }), errors: [['spec.rules[0].from[0].source.ipBlocks[1]', /^not a CIDR/]] },
    { name: 'bad notIpBlocks', obj: ap({ rules: [{ from: [{ source: { notIpBlocks: ['fe80::x'] } }] }] }), errors: [['spec.rules[0].from[0].source.notIpBlocks[0]', /^not a CIDR/]] },
    { name: 'numeric port', obj: ap({ rules: [{ to: [{ operation: { ports: [8080] } }] }] }), errors: [['spec.rules[0].to[0].operation.ports[0]', /not a port number .*got 8080/]] },
    { name: 'port 0', obj: ap({ rules: [{ to: [{ operation: { notPorts: ['0'] } }] }] }), errors: [['spec.rules[0].to[0].operation.notPorts[0]', /not a port number/]] },
    { name: 'port too big', obj: ap({ rules: [{ to: [{ operation: { ports: ['65536'] } }] }] }), errors: [['spec.rules[0].to[0].operation.ports[0]', /not a port number/]] },
    { name: 'star in the middle', obj: ap({ rules: [{ from: [{ source: { principals: ['cluster.local/*/sa/x'] } }] }] }), errors: [['spec.rules[0].from[0].source.principals[0]', /'\*' only alone/]] },
    { name: 'empty namespace', obj: ap({ rules: [{ from: [{ source: { namespaces: [''] } }] }] }), errors: [['spec.rules[0].from[0].source.namespaces[0]', /non-empty/]] },
    { name: 'unknown action', obj: ap({ action: 'CUSTOM' }), errors: [['spec.action', /must be one of ALLOW, DENY, AUDIT \(got "CUSTOM"\)/]] },
    { name: 'typo field', obj: ap({ rules: [{ from: [{ source: { principal: ['x'] } }] }] }), errors: [['spec.rules[0].from[0].source.principal', /unknown field/]] },
    { name: 'rules not a list', obj: ap({ rules: { from: [] } }), errors: [['spec.rules', /must be a list/]] },
    { name: 'empty from', obj: ap({ rules: [{ from: [] }] }), errors: [['spec.rules[0].from', /must not be empty/]] },
    { name: 'empty to', obj: ap({ rules: [{ to: [] }] }), errors: [['spec.rules[0].to', /must not be empty/]] },
    { name: 'empty source', obj: ap({ rules: [{ from: [{ source: { principals: [] } }] }] }), errors: [['spec.rules[0].from[0].source', /at least one field/]] },
    { name: 'empty operation', obj: ap({ rules: [{ to: [{ operation: {} }] }] }), errors: [['spec.rules[0].to[0].operation', /at least one field/]] },
    { name: 'missing source', obj: ap({ rules: [{ from: [{}] }] }), errors: [['spec.rules[0].from[0].source', /is required/]] },
    { name: 'unknown when key', obj: ap({ rules: [{ when: [{ key: 'source.pod', values: ['x'] }] }] }), errors: [['spec.rules[0].when[0].key', /unknown key "source.pod"/]] },
    { name: 'when without values', obj: ap({ rules: [{ when: [{ key: 'source.ip' }] }] }), errors: [['spec.rules[0].when[0]', /at least one of values or notValues/]] },
    { name: 'when bad ip', obj: ap({ rules: [{ when: [{ key: 'source.ip', values: ['1.2.3.4', 'nope'] }] }] }), errors: [['spec.rules[0].when[0].values[1]', /^not a CIDR/]] },
    { name: 'when bad port', obj: ap({ rules: [{ when: [{ key: 'destination.port', notValues: ['http'] }] }] }), errors: [['spec.rules[0].when[0].notValues[0]', /not a port number/]] },
    { name: 'selector and targetRefs', obj: ap({ selector: { matchLabels: { a: 'b' } }, targetRefs: [{ kind: 'Service', name: 's' }] }), errors: [['spec.targetRefs', /mutually exclusive/]] },
    { name: 'label value not a string', obj: ap({ selector: { matchLabels: { app: 1 } } }), errors: [['spec.selector.matchLabels.app', /label values must be strings/]] },
    { name: 'odd label key in path', obj: ap({ selector: { matchLabels: { 'app.kubernetes.io/name': true } } }), errors: [['spec.selector.matchLabels["app.kubernetes.io/name"]', /must be strings/]] },
    { name: 'mtls mode', obj: pa({ mtls: { mode: 'strict' } }), errors: [['spec.mtls.mode', /must be one of UNSET, DISABLE, PERMISSIVE, STRICT/]] },
    { name: 'port-level without selector', obj: pa({ portLevelMtls: { '80': { mode: 'DISABLE' } } }), errors: [['spec.portLevelMtls', /needs a selector/]] },
    { name: 'port-level bad key', obj: pa({ selector: { matchLabels: { a: 'b' } }, portLevelMtls: { http: { mode: 'DISABLE' } } }), errors: [['spec.portLevelMtls.http', /not a port number/]] },
    {
      name: 'several at once',
      obj: ap({ action: 'NOPE', rules: [{ from: [{ source: { ipBlocks: ['x'] } }], when: [{ key: 'bogus', values: ['1'] }] }] }),
      errors: [
        ['spec.action', /must be one of/],
        ['spec.rules[0].from[0].source.ipBlocks[0]', /^not a CIDR/],
        ['spec.rules[0].when[0].key', /unknown key/],
      ],
    },
  ];
  for (const c of table) {
    const r = validatePolicyObject(c.obj);
    assert.equal(r.ok, false, `${c.name}: expected invalid`);
    if (r.ok) continue;
    assert.deepEqual(
      r.errors.map((e) => e.path),
      c.errors.map((e) => e[0]),
      `${c.name}: ${formatFieldErrors(r.errors)}`,
    );
    c.errors.forEach(([, re], i) => assert.match(r.errors[i]!.message, re, c.name));
  }
});

test('formatFieldErrors and PolicyValidationError give one readable line with a stable code', () => {
  const r = validatePolicyObject(ap({ rules: [{ from: [{ source: { ipBlocks: ['10.0.0.0/8', '300.0.0.0/8'] } }] }] }));
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.equal(formatFieldErrors(r.errors), 'spec.rules[0].from[0].source.ipBlocks[1]: not a CIDR or IP address (got "300.0.0.0/8")');
  const err = new PolicyValidationError('AuthorizationPolicy default/p', r.errors);
  assert.ok(isWeftError(err, 'WEFT_ERR_POLICY_INVALID'));
  assert.match(err.message, /^AuthorizationPolicy default\/p is invalid: spec\.rules\[0\]/);
});
