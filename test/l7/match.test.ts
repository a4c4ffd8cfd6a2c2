import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backend, cartRoute, request, table } from './helpers.js';
import type { RequestView } from '../../agent/l7/types.js';

/** Whether a rule with `match` takes the request (forward) or nothing does (404). */
function matches(match: unknown, req: RequestView): boolean {
  const t = table([cartRoute([{ matches: [match], backendRefs: [backend('cart-v1')] }])]);
  const plan = t.plan('shop/cart', 8080, req, 0.5);
  if (plan.kind === 'reply') {
    assert.equal(plan.statusCode, 404);
    assert.equal(plan.responseFlag, 'NR');
    return false;
  }
  assert.equal(plan.kind, 'forward');
  return true;
}

const cases: { name: string; match: unknown; yes: RequestView[]; no: RequestView[] }[] = [
  {
    name: 'path Exact',
    match: { path: { type: 'Exact', value: '/foo' } },
    yes: [request('/foo'), request('/foo', { query: 'a=1' })],
    no: [request('/foo/'), request('/foo/bar'), request('/Foo'), request('/fo')],
  },
  {
    name: 'path PathPrefix is segment-wise',
    match: { path: { type: 'PathPrefix', value: '/foo' } },
    yes: [request('/foo'), request('/foo/'), request('/foo/bar'), request('/foo/bar/baz')],
    no: [request('/foobar'), request('/fo'), request('/'), request('/FOO/bar')],
  },
  {
    name: 'path PathPrefix with a trailing slash ignores it',
    match: { path: { type: 'PathPrefix', value: '/foo/' } },
    yes: [request('/foo'), request('/foo/'), request('/foo/bar')],
    no: [request('/foobar')],
  },
  {
    name: 'path PathPrefix / matches everything',
    match: { path: { type: 'PathPrefix', value: '/' } },
    yes: [request('/'), request('/anything/at/all')],
    no: [],
  },
  {
    name: 'no path: PathPrefix / (the default)',
    match: { method: 'GET' },
    yes: [request('/x')],
    no: [request('/x', { method: 'POST' })],
  },
  {
    name: 'path RegularExpression matches the whole path',
    match: { path: { type: 'RegularExpression', value: '/api/v[0-9]+/users' } },
    yes: [request('/api/v1/users'), request('/api/v12/users')],
    no: [request('/api/v1/users/7'), request('/x/api/v1/users'), request('/api/vx/users')],
  },
  {
    name: 'header Exact, names case-insensitive, values case-sensitive',
    match: { headers: [{ name: 'End-User', value: 'jason' }] },
    yes: [request('/', { headers: { 'end-user': 'jason' } })],
    no: [request('/', { headers: { 'end-user': 'Jason' } }), request('/'), request('/', { headers: { 'x-end-user': 'jason' } })],
  },
  {
    name: 'header RegularExpression (whole value)',
    match: { headers: [{ type: 'RegularExpression', name: 'x-version', value: 'v[12]' }] },
    yes: [request('/', { headers: { 'x-version': 'v1' } }), request('/', { headers: { 'x-version': 'v2' } })],
    no: [request('/', { headers: { 'x-version': 'v3' } }), request('/', { headers: { 'x-version': 'v1-beta' } })],
  },
  {
    name: 'a repeated request header is matched as its values joined with ","',
    match: { headers: [{ name: 'x-tag', value: 'a,b' }] },
    yes: [request('/', { headers: { 'x-tag': ['a', 'b'] } })],
    no: [request('/', { headers: { 'x-tag': ['a'] } })],
  },
  {
    name: 'of two header matches with the same name (any case) only the first counts',
    match: { headers: [{ name: 'x-a', value: '1' }, { name: 'X-A', value: '2' }] },
    yes: [request('/', { headers: { 'x-a': '1' } })],
    no: [request('/', { headers: { 'x-a': '2' } })],
  },
  {
    name: 'several header matches: all must hold',
    match: { headers: [{ name: 'x-a', value: '1' }, { name: 'x-b', value: '2' }] },
    yes: [request('/', { headers: { 'x-a': '1', 'x-b': '2' } })],
    no: [request('/', { headers: { 'x-a': '1' } }), request('/', { headers: { 'x-b': '2' } })],
  },
  {
    name: 'query param Exact: names case-sensitive, first value, percent-decoded',
    match: { queryParams: [{ name: 'animal', value: 'whale shark' }] },
    yes: [request('/', { query: 'animal=whale%20shark' }), request('/', { query: 'x=1&animal=whale%20shark&animal=dolphin' })],
    no: [request('/', { query: 'Animal=whale%20shark' }), request('/', { query: 'animal=dolphin&animal=whale%20shark' }), request('/')],
  },
  {
    name: 'query param RegularExpression',
    match: { queryParams: [{ type: 'RegularExpression', name: 'id', value: '[0-9]{1,4}' }] },
    yes: [request('/', { query: 'id=42' })],
    no: [request('/', { query: 'id=12345' }), request('/', { query: 'id=' }), request('/', { query: 'id' })],
  },
  {
    name: 'method',
    match: { method: 'POST' },
    yes: [request('/', { method: 'POST' })],
    no: [request('/', { method: 'GET' }), request('/', { method: 'PUT' })],
  },
  {
    name: 'path, method, header and query together (AND)',
    match: { path: { type: 'PathPrefix', value: '/cart' }, method: 'PUT', headers: [{ name: 'x-a', value: '1' }], queryParams: [{ name: 'q', value: '1' }] },
    yes: [request('/cart/7', { method: 'PUT', headers: { 'x-a': '1' }, query: 'q=1' })],
    no: [
      request('/cart/7', { method: 'GET', headers: { 'x-a': '1' }, query: 'q=1' }),
      request('/cart/7', { method: 'PUT', query: 'q=1' }),
      request('/cart/7', { method: 'PUT', headers: { 'x-a': '1' } }),
      request('/carts', { method: 'PUT', headers: { 'x-a': '1' }, query: 'q=1' }),
    ],
  },
];

for (const c of cases) {
  test(`match: ${c.name}`, () => {
    for (const r of c.yes) assert.ok(matches(c.match, r), `should match ${JSON.stringify(r)}`);
    for (const r of c.no) assert.ok(!matches(c.match, r), `should not match ${JSON.stringify(r)}`);
  });
}

test('several matches in a rule are alternatives (OR)', () => {
  const t = table([cartRoute([{ matches: [{ path: { type: 'Exact', value: '/a' } }, { method: 'DELETE' }], backendRefs: [backend('cart-v1')] }])]);
  assert.equal(t.plan('shop/cart', 8080, request('/a'), 0).kind, 'forward');
  assert.equal(t.plan('shop/cart', 8080, request('/b', { method: 'DELETE' }), 0).kind, 'forward');
  assert.equal(t.plan('shop/cart', 8080, request('/b'), 0).kind, 'reply');
});

test('a rule without matches takes every request', () => {
  const t = table([cartRoute([{ backendRefs: [backend('cart-v1')] }])]);
  const plan = t.plan('shop/cart', 8080, request('/any/thing', { method: 'PATCH' }), 0);
  assert.equal(plan.kind, 'forward');
  assert.deepEqual(plan.rule?.matches, [{ path: { type: 'PathPrefix', value: '/' }, headers: [], queryParams: [], method: undefined }]);
});

test('a service without routes: forwarded unchanged to the addressed service', () => {
  const t = table([cartRoute([{ backendRefs: [backend('cart-v1')] }])]);
  const r = request('/x', { query: 'a=1', headers: { 'x-a': '1' }, method: 'POST', authority: 'db.other:5432' });
  assert.deepEqual(t.plan('other/db', 5432, r, 0.3), {
    kind: 'forward',
    rule: undefined,
    backend: { service: 'other/db', port: 5432 },
    method: 'POST',
    pathAndQuery: '/x?a=1',
    authority: 'db.other:5432',
    requestHeaders: undefined,
    responseHeaders: undefined,
    mirrors: [],
    timeouts: { requestMs: undefined, backendRequestMs: undefined },
  });
  assert.equal(t.routed('other/db', 5432), false);
  assert.equal(t.routed('shop/cart', 8080), true);
});

test('routes apply to the Service frontend only: a pod-IP destination or an unrouted port is not routed', () => {
  const t = table([cartRoute([{ matches: [{ path: { type: 'Exact', value: '/only' } }], backendRefs: [backend('cart-v1')] }])]);
  // The engine addresses plan() by Service key; a pod IP has no Service key and gets no route.
  const plan = t.plan('10.0.0.7', 8080, request('/nope'), 0);
  assert.equal(plan.kind, 'forward');
  assert.equal(plan.rule, undefined);
  assert.equal(t.plan('shop/cart', 8080, request('/nope'), 0).kind, 'reply');
});
