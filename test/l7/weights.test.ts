import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backend, cartRoute, request, seededRandom, table } from './helpers.js';

const DRAWS = 10_000;
/** ±1.5 points: five standard deviations of a 10% share over 10 000 draws (sqrt(.1*.9/1e4) = 0.3 points). */
const TOLERANCE = 0.015;

function shares(backendRefs: unknown[], seed = 1): Map<string, number> {
  const t = table([cartRoute([{ backendRefs }])]);
  const random = seededRandom(seed);
  const counts = new Map<string, number>();
  for (let i = 0; i < DRAWS; i++) {
    const p = t.plan('shop/cart', 8080, request('/'), random());
    const k = p.kind === 'forward' ? p.backend.service : p.kind === 'reply' ? `${p.statusCode} ${p.responseFlag}` : p.kind;
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return new Map([...counts].map(([k, n]) => [k, n / DRAWS]));
}

function near(actual: number | undefined, expected: number, what: string): void {
  assert.ok(actual !== undefined && Math.abs(actual - expected) <= TOLERANCE, `${what}: ${actual} not within ${TOLERANCE} of ${expected}`);
}

test(`weights 90/10 split within ±${TOLERANCE * 100} points over ${DRAWS} seeded draws`, () => {
  for (const seed of [1, 2, 3]) {
    const s = shares([backend('cart-v1', 8080, { weight: 90 }), backend('cart-v2', 8080, { weight: 10 })], seed);
    near(s.get('shop/cart-v1'), 0.9, 'v1');
    near(s.get('shop/cart-v2'), 0.1, 'v2');
  }
});

test('weights 1:2:1 across three backends; default weight is 1', () => {
  const s = shares([backend('cart-v1'), backend('cart-v2', 8080, { weight: 2 }), backend('mirror')]);
  near(s.get('shop/cart-v1'), 0.25, 'v1');
  near(s.get('shop/cart-v2'), 0.5, 'v2');
  near(s.get('shop/mirror'), 0.25, 'mirror');
});

test('weight 0 never receives traffic; the edges of [0, 1) stay in range', () => {
  const s = shares([backend('cart-v1', 8080, { weight: 0 }), backend('cart-v2', 8080, { weight: 5 })]);
  assert.equal(s.get('shop/cart-v1'), undefined);
  assert.equal(s.get('shop/cart-v2'), 1);
  const t = table([cartRoute([{ backendRefs: [backend('cart-v1', 8080, { weight: 1 }), backend('cart-v2', 8080, { weight: 0 })] }])]);
  for (const r of [0, 0.5, 0.9999999999999999, 1, -1, Number.NaN]) {
    const p = t.plan('shop/cart', 8080, request('/'), r);
    assert.equal(p.kind === 'forward' && p.backend.service, 'shop/cart-v1', String(r));
  }
});

test('all weights 0 -> 500; no backendRefs -> 500', () => {
  const zero = table([cartRoute([{ backendRefs: [backend('cart-v1', 8080, { weight: 0 }), backend('cart-v2', 8080, { weight: 0 })] }])]);
  const p = zero.plan('shop/cart', 8080, request('/'), 0.5);
  assert.equal(p.kind, 'reply');
  assert.equal(p.kind === 'reply' && p.statusCode, 500);
  const none = table([cartRoute([{ matches: [{ path: { type: 'PathPrefix', value: '/' } }] }])]);
  const q = none.plan('shop/cart', 8080, request('/'), 0.5);
  assert.equal(q.kind === 'reply' && q.statusCode, 500);
  assert.equal(q.kind === 'reply' && q.responseFlag, 'NR');
});

test('an unresolved backendRef keeps its share of traffic, answered 500 NR (the spec)', () => {
  const s = shares([backend('cart-v1', 8080, { weight: 3 }), backend('missing', 8080, { weight: 1 })]);
  near(s.get('shop/cart-v1'), 0.75, 'v1');
  near(s.get('500 NR'), 0.25, 'unresolved');
  const t = table([cartRoute([{ backendRefs: [backend('missing')] }])]);
  const p = t.plan('shop/cart', 8080, request('/'), 0.2);
  assert.equal(p.kind, 'reply');
  if (p.kind === 'reply') {
    assert.equal(p.statusCode, 500);
    assert.equal(p.responseFlag, 'NR');
    assert.match(p.reason, /shop\/missing: Service not found/);
  }
});
