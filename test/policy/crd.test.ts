import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { renderCrds, toStructural } from '../../policy/crd.js';
import { AuthorizationPolicySpec } from '../../policy/schema.js';

// dist/test/policy/crd.test.js -> repository root
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

test('committed CRDs equal what policy/gen-crds.ts generates (run: node dist/policy/gen-crds.js)', () => {
  for (const f of renderCrds()) {
    assert.equal(readFileSync(join(root, f.path), 'utf8'), f.content, `${f.path} is stale`);
  }
});

/** Walks a schema and reports constructs a structural CRD schema may not contain. */
function nonStructural(s: Record<string, unknown>, at: string, out: string[]): void {
  for (const k of ['anyOf', 'oneOf', 'allOf', 'patternProperties', 'const', '$id', 'errorMessage']) if (k in s) out.push(`${at}: ${k}`);
  if (typeof s['format'] === 'string' && s['format'].startsWith('weft-')) out.push(`${at}: format ${s['format']}`);
  if (s['properties'] !== undefined && s['additionalProperties'] !== undefined) out.push(`${at}: properties with additionalProperties`);
  if (typeof s['type'] !== 'string') out.push(`${at}: no type`);
  for (const [name, sub] of Object.entries((s['properties'] ?? {}) as Record<string, Record<string, unknown>>)) nonStructural(sub, `${at}.${name}`, out);
  if (typeof s['additionalProperties'] === 'object') nonStructural(s['additionalProperties'] as Record<string, unknown>, `${at}{}`, out);
  if (s['items'] !== undefined) nonStructural(s['items'] as Record<string, unknown>, `${at}[]`, out);
}

test('generated CRDs are structural apiextensions.k8s.io/v1 objects for weft.dev/v1alpha1', () => {
  const files = renderCrds();
  const crds = files.filter((f) => !f.path.endsWith('kustomization.yaml')).map((f) => parse(f.content) as Record<string, any>); // any: parsed YAML, its shape is what the asserts check
  assert.deepEqual(crds.map((c) => c['spec'].names.kind).sort(), ['AuthorizationPolicy', 'HTTPFault', 'LocalRateLimitPolicy', 'PeerAuthentication']);
  for (const c of crds) {
    assert.equal(c['apiVersion'], 'apiextensions.k8s.io/v1');
    assert.equal(c['spec'].group, 'weft.dev');
    assert.equal(c['metadata'].name, `${c['spec'].names.plural}.weft.dev`);
    const v = c['spec'].versions[0];
    assert.equal(v.name, 'v1alpha1');
    const problems: string[] = [];
    nonStructural(v.schema.openAPIV3Schema, 'openAPIV3Schema', problems);
    assert.deepEqual(problems, []);
  }
  const ap = crds.find((c) => c['spec'].names.kind === 'AuthorizationPolicy')!;
  const spec = ap['spec'].versions[0].schema.openAPIV3Schema.properties.spec;
  assert.deepEqual(spec.properties.action.enum, ['ALLOW', 'DENY', 'AUDIT']);
  assert.deepEqual(spec.properties.selector.properties.matchLabels.additionalProperties, { type: 'string' });
  assert.equal(spec.properties.rules.items.properties.to.items.properties.operation.properties.ports.items.pattern, '^[0-9]+$');
  const kustomization = parse(files.find((f) => f.path.endsWith('kustomization.yaml'))!.content) as { resources: string[] };
  assert.deepEqual(kustomization.resources.sort(), ['weft.dev_authorizationpolicies.yaml', 'weft.dev_httpfaults.yaml', 'weft.dev_localratelimitpolicies.yaml', 'weft.dev_peerauthentications.yaml']);
});

test('toStructural derives the spec from the same TypeBox schema the validator uses', () => {
  const s = toStructural(AuthorizationPolicySpec as unknown as Record<string, unknown>) as { properties: Record<string, unknown> };
  assert.deepEqual(Object.keys(s.properties).sort(), Object.keys(AuthorizationPolicySpec.properties).sort());
});
