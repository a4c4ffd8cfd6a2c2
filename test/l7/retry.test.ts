import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateRouteObject } from '../../agent/l7/validate.js';
import { RouteStore } from '../../agent/l7/store.js';
import { backend, cartRoute, model, request, SHOP, table } from './helpers.js';

function ruleOf(t: ReturnType<typeof table>) {
  const p = t.plan('shop/cart', 8080, request('/'), 0);
  assert.equal(p.kind, 'forward');
  return p.rule!;
}

test('GEP-1731 retry: codes, attempts and backoff compile into RouteRule.retry, per try bounded by backendRequest', () => {
  const t = table([cartRoute([{ backendRefs: [backend('cart-v1')], retry: { codes: [503, 500, 503], attempts: 3, backoff: '100ms' }, timeouts: { request: '10s', backendRequest: '2s' } }])]);
  assert.deepEqual(ruleOf(t).retry, {
    attempts: 3,
    perTryTimeoutMs: 2000,
    retryOn: ['connect-failure', 'refused-stream', 'reset', 'retriable-status-codes'],
    statusCodes: [500, 503],
    backoffBaseMs: 100,
  });
});

test('GEP-1731 retry without codes retries connection errors only; attempts default to 2; no retry stanza, no retries', () => {
  const t = table([cartRoute([{ backendRefs: [backend('cart-v1')], retry: {} }])]);
  assert.deepEqual(ruleOf(t).retry, { attempts: 2, perTryTimeoutMs: undefined, retryOn: ['connect-failure', 'refused-stream', 'reset'], statusCodes: [] });
  assert.equal(ruleOf(table([cartRoute([{ backendRefs: [backend('cart-v1')] }])])).retry, undefined);
  assert.equal(ruleOf(table([cartRoute([{ backendRefs: [backend('cart-v1')], retry: { attempts: 0 } }])])).retry!.attempts, 0);
});

const refusals: [string, unknown, string, RegExp][] = [
  ['a code below 400', { codes: [302] }, 'spec.rules[0].retry.codes[0]', /400-599/],
  ['a code above 599', { codes: [600] }, 'spec.rules[0].retry.codes[0]', /400-599/],
  ['negative attempts', { attempts: -1 }, 'spec.rules[0].retry.attempts', /0-100/],
  ['a backoff that is not a Gateway API duration', { backoff: '0.1s' }, 'spec.rules[0].retry.backoff', /Gateway API duration/],
  ['an unknown field', { perTryTimeout: '1s' }, 'spec.rules[0].retry.perTryTimeout', /unknown field/],
];
for (const [name, retry, path, message] of refusals) {
  test(`GEP-1731 retry refused by field: ${name}`, () => {
    const v = validateRouteObject(cartRoute([{ backendRefs: [backend('cart-v1')], retry }]));
    assert.equal(v.ok, false);
    const e = v.ok ? undefined : v.errors.find((x) => x.path === path);
    assert.ok(e !== undefined, JSON.stringify(v));
    assert.match(e.message, message);
  });
}

test('a route whose retry turns invalid keeps its last good retry', () => {
  const store = new RouteStore();
  const good = cartRoute([{ backendRefs: [backend('cart-v1')], retry: { codes: [503], attempts: 1 } }], 'cart', { generation: 1 });
  store.update(model(SHOP, [good]));
  const bad = cartRoute([{ backendRefs: [backend('cart-v1')], retry: { codes: [200], attempts: 5 } }], 'cart', { generation: 2 });
  store.update(model(SHOP, [bad]));
  assert.equal(store.rejected()[0]!.errors[0]!.path, 'spec.rules[0].retry.codes[0]');
  const p = store.table().plan('shop/cart', 8080, request('/'), 0);
  assert.equal(p.kind === 'forward' ? p.rule!.retry!.attempts : -1, 1);
});
