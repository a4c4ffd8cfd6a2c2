import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { compilePolicies, evaluate, evaluateRequest, type HttpRequestInfo } from '../../policy/engine.js';
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

test('the waypoint examples in docs/policy.md behave as the text says', () => {
  const store = compilePolicies(docExamples());
  const at = (service: string) => store.forWaypointTarget({ namespace: 'bookinfo', name: 'waypoint', service });
  const req = (over: Partial<HttpRequestInfo>): HttpRequestInfo => ({
    sourceIp: '198.18.140.2',
    sourcePrincipal: 'spiffe://cluster.local/ns/bookinfo/sa/productpage',
    destinationIp: '10.96.0.20',
    destinationPort: 9080,
    method: 'GET',
    path: '/api/reviews/1',
    authority: 'reviews:9080',
    headers: {},
    ...over,
  });
  assert.equal(evaluateRequest(at('bookinfo/reviews'), req({})).policy, 'bookinfo/reviews-read');
  assert.equal(evaluateRequest(at('bookinfo/reviews'), req({ method: 'POST' })).allowed, false);
  assert.equal(evaluateRequest(at('bookinfo/reviews'), req({ method: 'POST', headers: { 'end-user': 'jason' } })).allowed, true);
  assert.equal(evaluateRequest(at('bookinfo/reviews'), req({ path: '/api/../admin' })).policy, 'bookinfo/no-admin');
  assert.equal(evaluateRequest(at('bookinfo/ratings'), req({ path: '/ratings', method: 'POST' })).allowed, true);
  assert.equal(evaluateRequest(at('bookinfo/ratings'), req({ path: '/admin/x', sourcePrincipal: 'spiffe://cluster.local/ns/ops/sa/admin' })).allowed, true);
  assert.equal(evaluateRequest(at('bookinfo/ratings'), req({ method: 'TRACE' })).policy, 'weft-system/no-trace');
  // Node agents do not enforce them.
  assert.deepEqual(store.forWorkload({ namespace: 'bookinfo', labels: { app: 'reviews' } }).authorizationPolicies, ['weft-system/mesh-deny']);
});
