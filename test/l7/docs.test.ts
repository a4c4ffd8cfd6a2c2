import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { formatFieldErrors } from '../../policy/errors.js';
import { RouteStore } from '../../agent/l7/store.js';
import { validateRouteObject } from '../../agent/l7/validate.js';
import { isWeftTrafficKind, validateWeftTrafficObject } from '../../agent/l7/weft/validate.js';
import { model, request, seededRandom } from './helpers.js';

// dist/test/l7/docs.test.js -> repository root
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

test('the examples of docs/gateway-api.md validate and route as the text says', () => {
  const md = readFileSync(join(root, 'docs', 'gateway-api.md'), 'utf8');
  const examples: unknown[] = [];
  for (const m of md.matchAll(/```yaml\n([\s\S]*?)```/g)) for (const d of parseAllDocuments(m[1]!)) examples.push(d.toJS());
  assert.ok(examples.length >= 1);
  for (const obj of examples) {
    const weft = isWeftTrafficKind((obj as { kind?: unknown }).kind, (obj as { apiVersion?: unknown }).apiVersion);
    const r = weft ? validateWeftTrafficObject(obj) : validateRouteObject(obj);
    assert.ok(r.ok, r.ok ? '' : formatFieldErrors(r.errors));
  }
  const store = new RouteStore();
  const table = store.update(model({ 'bookinfo/reviews': [9080], 'bookinfo/reviews-v1': [9080], 'bookinfo/reviews-v2': [9080], 'bookinfo/reviews-v3': [9080], 'bookinfo/ratings': [9080] }, examples));
  assert.deepEqual(store.rejected(), []);
  // The HTTPFault example: jason's requests to ratings are delayed 7 s (and 10 % aborted), others not.
  const ratings = (headers: Record<string, string>) => table.plan('bookinfo/ratings', 9080, request('/ratings/0', { headers }), 0);
  const jason = ratings({ 'end-user': 'jason' });
  assert.ok(jason.kind === 'forward');
  assert.deepEqual(jason.rule!.fault, { delay: { ms: 7000, percent: 100 }, abort: { statusCode: 500, percent: 10 }, source: 'HTTPFault bookinfo/ratings-delay' });
  const other = ratings({});
  assert.ok(other.kind === 'forward' && other.rule!.fault === undefined);
  // The LocalRateLimitPolicy example: every rule of the reviews route, one bucket each.
  const limited = table.plan('bookinfo/reviews', 9080, request('/', { headers: { 'end-user': 'jason' } }), 0);
  assert.ok(limited.kind === 'forward');
  assert.deepEqual(limited.rule!.rateLimit, { policy: 'LocalRateLimitPolicy bookinfo/reviews', maxTokens: 100, tokensPerFill: 10, fillIntervalMs: 1000 });
  const to = (headers: Record<string, string>, r: number) => {
    const p = table.plan('bookinfo/reviews', 9080, request('/reviews/0', { headers }), r);
    return p.kind === 'forward' ? p.backend.service : p.kind;
  };
  assert.equal(to({ 'end-user': 'jason' }, 0.99), 'bookinfo/reviews-v2');
  const random = seededRandom(3);
  let v3 = 0;
  for (let i = 0; i < 10_000; i++) if (to({}, random()) === 'bookinfo/reviews-v3') v3++;
  assert.ok(Math.abs(v3 / 10_000 - 0.1) <= 0.015, String(v3));
});
