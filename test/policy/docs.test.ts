import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { compilePolicies, evaluate } from '../../policy/engine.js';
import { formatFieldErrors } from '../../policy/errors.js';
import { validatePolicyObject } from '../../policy/validate.js';

// dist/test/policy/docs.test.js -> repository root
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

function docExamples(): unknown[] {
  const md = readFileSync(join(root, 'docs', 'policy.md'), 'utf8');
  const out: unknown[] = [];
  for (const m of md.matchAll(/```yaml\n([\s\S]*?)```/g)) {
    for (const d of parseAllDocuments(m[1]!)) out.push(d.toJS());
  }
  return out;
}

test('every policy example in docs/policy.md validates', () => {
  const examples = docExamples();
  assert.ok(examples.length >= 5, `found ${examples.length} examples`);
  for (const obj of examples) {
    const r = validatePolicyObject(obj);
    assert.ok(r.ok, r.ok ? '' : formatFieldErrors(r.errors));
  }
});

test('the docs examples behave as the text says', () => {
  const store = compilePolicies(docExamples());
  assert.equal(store.warnings.length, 0);
  const sa = (ns: string, name: string) => `spiffe://cluster.local/ns/${ns}/sa/${name}`;
  const payments = store.forWorkload({ namespace: 'payments', labels: { app: 'api' } });
  assert.equal(evaluate(payments, { sourceIp: '198.18.0.5', sourcePrincipal: sa('shop', 'checkout'), destinationIp: '198.18.0.9', destinationPort: 8443 }).allowed, true);
  assert.equal(evaluate(payments, { sourceIp: '198.18.0.5', sourcePrincipal: sa('shop', 'cart'), destinationIp: '198.18.0.9', destinationPort: 8443 }).allowed, false);
  const any = store.forWorkload({ namespace: 'other', labels: {} });
  assert.equal(evaluate(any, { sourceIp: '169.254.169.254', destinationIp: '198.18.0.9', destinationPort: 80 }).policy, 'weft-system/mesh-deny');
  assert.equal(evaluate(any, { sourceIp: '198.18.0.5', destinationIp: '198.18.0.9', destinationPort: 9901 }).allowed, false);
  assert.equal(evaluate(any, { sourceIp: '198.18.0.5', sourcePrincipal: sa('a', 'b'), destinationIp: '198.18.0.9', destinationPort: 9901 }).allowed, true);
  const legacy = store.forWorkload({ namespace: 'shop', labels: { app: 'legacy' } });
  assert.equal(evaluate(legacy, { sourceIp: '198.18.0.5', sourcePrincipal: sa('shop', 'frontend'), destinationIp: '198.18.0.9', destinationPort: 8080 }).reason, 'no-allow-match');
  assert.equal(store.mtlsModeFor({ namespace: 'data', labels: { app: 'db' } }, 5432), 'STRICT');
  assert.equal(store.mtlsModeFor({ namespace: 'data', labels: { app: 'db' } }, 9187), 'PERMISSIVE');
});
