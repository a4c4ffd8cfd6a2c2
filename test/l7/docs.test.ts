import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { formatFieldErrors } from '../../policy/errors.js';
import { RouteStore } from '../../agent/l7/store.js';
import { validateRouteObject } from '../../agent/l7/validate.js';
import { model, request, seededRandom } from './helpers.js';

// dist/test/l7/docs.test.js -> repository root
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

test('the example of docs/gateway-api.md validates and routes as the text says', () => {
  const md = readFileSync(join(root, 'docs', 'gateway-api.md'), 'utf8');
  const examples: unknown[] = [];
  for (const m of md.matchAll(/```yaml\n([\s\S]*?)```/g)) for (const d of parseAllDocuments(m[1]!)) examples.push(d.toJS());
  assert.ok(examples.length >= 1);
  for (const obj of examples) {
    const r = validateRouteObject(obj);
    assert.ok(r.ok, r.ok ? '' : formatFieldErrors(r.errors));
  }
  const store = new RouteStore();
  const table = store.update(model({ 'bookinfo/reviews': [9080], 'bookinfo/reviews-v1': [9080], 'bookinfo/reviews-v2': [9080], 'bookinfo/reviews-v3': [9080] }, examples));
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
