import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backend, cartRoute, request, seededRandom, table } from './helpers.js';
import { applyHeaderModifier, composeHeaderModifiers, replacePrefix } from '../../agent/l7/paths.js';
import { parseDuration } from '../../agent/l7/duration.js';
import type { RequestPlan } from '../../agent/l7/types.js';

function forward(plan: RequestPlan): Extract<RequestPlan, { kind: 'forward' }> {
  assert.equal(plan.kind, 'forward', JSON.stringify(plan));
  return plan as Extract<RequestPlan, { kind: 'forward' }>;
}

test('RequestHeaderModifier and ResponseHeaderModifier: names lower-cased, set/add/remove as the spec says', () => {
  const t = table([
    cartRoute([
      {
        filters: [
          { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'X-Set', value: 's' }], add: [{ name: 'My-Header', value: 'bar' }], remove: ['X-Drop'] } },
          { type: 'ResponseHeaderModifier', responseHeaderModifier: { add: [{ name: 'X-Resp', value: 'r' }] } },
        ],
        backendRefs: [backend('cart-v1')],
      },
    ]),
  ]);
  const p = forward(t.plan('shop/cart', 8080, request('/'), 0));
  assert.deepEqual(p.requestHeaders, { set: [['x-set', 's']], add: [['my-header', 'bar']], remove: ['x-drop'] });
  assert.deepEqual(p.responseHeaders, { set: [], add: [['x-resp', 'r']], remove: [] });
  // The spec's example: `my-header: foo` + add `my-header: bar` -> `my-header: foo,bar`.
  assert.deepEqual(applyHeaderModifier({ 'my-header': 'foo', 'x-set': 'old', 'x-drop': 'x', keep: ['1', '2'] }, p.requestHeaders), {
    'my-header': 'foo,bar',
    'x-set': 's',
    keep: ['1', '2'],
  });
});

test('per-backendRef filters apply after the rule\'s, only for that backend', () => {
  const t = table([
    cartRoute([
      {
        filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'x-a', value: 'rule' }], add: [{ name: 'x-b', value: 'rule' }] } }],
        backendRefs: [
          backend('cart-v1', 8080, { filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'x-a', value: 'v1' }], remove: ['x-b'] } }] }),
          backend('cart-v2', 8080, { filters: [{ type: 'URLRewrite', urlRewrite: { path: { type: 'ReplaceFullPath', replaceFullPath: '/v2' } } }] }),
        ],
      },
    ]),
  ]);
  const v1 = forward(t.plan('shop/cart', 8080, request('/x'), 0.1));
  assert.equal(v1.backend.service, 'shop/cart-v1');
  assert.deepEqual(applyHeaderModifier({ 'x-b': 'orig' }, v1.requestHeaders), { 'x-a': 'v1' });
  assert.equal(v1.pathAndQuery, '/x');
  const v2 = forward(t.plan('shop/cart', 8080, request('/x'), 0.9));
  assert.equal(v2.backend.service, 'shop/cart-v2');
  assert.deepEqual(applyHeaderModifier({ 'x-b': 'orig' }, v2.requestHeaders), { 'x-a': 'rule', 'x-b': 'orig,rule' });
  assert.equal(v2.pathAndQuery, '/v2');
});

test('composed header modifiers equal applying one after the other', () => {
  const mods = [
    { set: [['a', '1']], add: [['b', '1']], remove: ['c'] },
    { set: [['b', '2']], add: [['a', '2'], ['c', '2']], remove: ['a'] },
    { set: [], add: [['a', '3']], remove: ['b'] },
  ] as const;
  const headers = { a: '0', b: '0', c: '0', d: '0' };
  for (const first of mods) {
    for (const second of mods) {
      const stepwise = applyHeaderModifier(applyHeaderModifier(headers, first), second);
      assert.deepEqual(applyHeaderModifier(headers, composeHeaderModifiers(first, second)), stepwise);
    }
  }
});

// Location cases after the Gateway API conformance tests (httproute-request-redirect-*), for a
// request to http://cart.shop:8080 (Service port 8080) or to a Service on port 80.
const redirects: { name: string; filter: Record<string, unknown>; path?: string; query?: string; port?: number; authority?: string; status: number; location: string }[] = [
  { name: 'scheme https: port 443, left out', filter: { scheme: 'https' }, status: 302, location: 'https://cart.shop/hostname-redirect' },
  { name: 'scheme http: port 80, left out', filter: { scheme: 'http' }, status: 302, location: 'http://cart.shop/hostname-redirect' },
  { name: 'hostname only: the Service port is kept', filter: { hostname: 'example.org' }, status: 302, location: 'http://example.org:8080/hostname-redirect' },
  { name: 'hostname on a port-80 Service: no port', filter: { hostname: 'example.org' }, port: 80, authority: 'cart.shop', status: 302, location: 'http://example.org/hostname-redirect' },
  { name: 'port', filter: { port: 8083 }, status: 302, location: 'http://cart.shop:8083/hostname-redirect' },
  { name: 'scheme https and port 8443', filter: { scheme: 'https', port: 8443 }, status: 302, location: 'https://cart.shop:8443/hostname-redirect' },
  { name: 'scheme https and port 443', filter: { scheme: 'https', port: 443 }, status: 302, location: 'https://cart.shop/hostname-redirect' },
  { name: 'scheme http and port 443: kept', filter: { scheme: 'http', port: 443 }, status: 302, location: 'http://cart.shop:443/hostname-redirect' },
  { name: 'status 301', filter: { hostname: 'example.org', statusCode: 301 }, status: 301, location: 'http://example.org:8080/hostname-redirect' },
  { name: 'status 308 and query kept', filter: { statusCode: 308 }, query: 'a=1&b=2', status: 308, location: 'http://cart.shop:8080/hostname-redirect?a=1&b=2' },
  { name: 'ReplaceFullPath', filter: { path: { type: 'ReplaceFullPath', replaceFullPath: '/full-path-replacement' } }, path: '/full/path/original', status: 302, location: 'http://cart.shop:8080/full-path-replacement' },
  { name: 'ReplacePrefixMatch', filter: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/replacement-prefix' } }, path: '/original-prefix/lemon', status: 302, location: 'http://cart.shop:8080/replacement-prefix/lemon' },
  { name: 'ReplacePrefixMatch of the whole path', filter: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/replacement-prefix' } }, path: '/original-prefix', status: 302, location: 'http://cart.shop:8080/replacement-prefix' },
  { name: 'IPv6 authority', filter: { port: 9000 }, authority: '[fd00::1]:8080', status: 302, location: 'http://[fd00::1]:9000/hostname-redirect' },
];

for (const c of redirects) {
  test(`RequestRedirect Location: ${c.name}`, () => {
    const prefix = c.filter['path'] !== undefined && (c.filter['path'] as { type: string }).type === 'ReplacePrefixMatch' ? '/original-prefix' : '/';
    const port = c.port ?? 8080;
    const t = table([cartRoute([{ matches: [{ path: { type: 'PathPrefix', value: prefix } }], filters: [{ type: 'RequestRedirect', requestRedirect: c.filter }] }])], { 'shop/cart': [port] });
    const plan = t.plan('shop/cart', port, request(c.path ?? '/hostname-redirect', { query: c.query ?? '', authority: c.authority ?? 'cart.shop:8080' }), 0);
    assert.equal(plan.kind, 'redirect');
    assert.equal(plan.kind === 'redirect' && plan.statusCode, c.status);
    assert.equal(plan.kind === 'redirect' && plan.location, c.location);
  });
}

test('ReplacePrefixMatch follows the spec\'s table', () => {
  const table_: [string, string, string, string][] = [
    ['/foo/bar', '/foo', '/xyz', '/xyz/bar'],
    ['/foo/bar', '/foo', '/xyz/', '/xyz/bar'],
    ['/foo/bar', '/foo/', '/xyz', '/xyz/bar'],
    ['/foo/bar', '/foo/', '/xyz/', '/xyz/bar'],
    ['/foo', '/foo', '/xyz', '/xyz'],
    ['/foo/', '/foo', '/xyz', '/xyz/'],
    ['/foo/bar', '/foo', '', '/bar'],
    ['/foo/', '/foo', '', '/'],
    ['/foo', '/foo', '', '/'],
    ['/foo/', '/foo', '/', '/'],
    ['/foo', '/foo', '/', '/'],
    ['/any/path', '/', '/prefix', '/prefix/any/path'],
  ];
  for (const [path, prefix, replacement, expected] of table_) {
    const norm = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
    assert.equal(replacePrefix(path, norm, replacement), expected, `${path} ${prefix} -> ${replacement}`);
    // And through the table, as a URLRewrite.
    const t = table([cartRoute([{ matches: [{ path: { type: 'PathPrefix', value: prefix } }], filters: [{ type: 'URLRewrite', urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: replacement } } }], backendRefs: [backend('cart-v1')] }])]);
    assert.equal(forward(t.plan('shop/cart', 8080, request(path), 0)).pathAndQuery, expected);
  }
});

test('URLRewrite: hostname replaces the authority; ReplaceFullPath keeps the query', () => {
  const t = table([
    cartRoute([
      {
        matches: [{ path: { type: 'PathPrefix', value: '/one' } }],
        filters: [{ type: 'URLRewrite', urlRewrite: { hostname: 'rewritten.example', path: { type: 'ReplaceFullPath', replaceFullPath: '/two' } } }],
        backendRefs: [backend('cart-v1')],
      },
      { matches: [{ path: { type: 'PathPrefix', value: '/host' } }], filters: [{ type: 'URLRewrite', urlRewrite: { hostname: 'only.host' } }], backendRefs: [backend('cart-v1')] },
    ]),
  ]);
  const p = forward(t.plan('shop/cart', 8080, request('/one/x', { query: 'q=1' }), 0));
  assert.equal(p.authority, 'rewritten.example');
  assert.equal(p.pathAndQuery, '/two?q=1');
  const h = forward(t.plan('shop/cart', 8080, request('/host/a'), 0));
  assert.equal(h.authority, 'only.host');
  assert.equal(h.pathAndQuery, '/host/a');
});

test('RequestMirror: listed when drawn; percent and fraction within ±3 points over 4000 seeded draws', () => {
  const mirror = (extra: Record<string, unknown>) => ({ type: 'RequestMirror', requestMirror: { backendRef: backend('mirror'), ...extra } });
  const count = (filter: unknown, draws = 4000): number => {
    const t = table([cartRoute([{ filters: [filter], backendRefs: [backend('cart-v1'), backend('cart-v2')] }])]);
    const random = seededRandom(7);
    const engineDraw = seededRandom(99);
    let n = 0;
    for (let i = 0; i < draws; i++) {
      const p = forward(t.plan('shop/cart', 8080, request('/'), random()));
      // Listed mirrors have fired: percent 100, so an engine that draws again still sends them.
      if (p.mirrors.length > 0 && engineDraw() * 100 < p.mirrors[0]!.percent) {
        assert.deepEqual(p.mirrors[0], { backend: { service: 'shop/mirror', port: 8080 }, percent: 100 });
        n++;
      }
    }
    return (n / draws) * 100;
  };
  assert.equal(count(mirror({})), 100);
  assert.equal(count(mirror({ percent: 0 })), 0);
  assert.ok(Math.abs(count(mirror({ percent: 30 })) - 30) < 3);
  assert.ok(Math.abs(count(mirror({ fraction: { numerator: 1, denominator: 4 } })) - 25) < 3);
  assert.ok(Math.abs(count(mirror({ fraction: { numerator: 1 } })) - 1) < 3);
});

test('RequestMirror draws are independent of the backend choice', () => {
  const t = table([cartRoute([{ filters: [{ type: 'RequestMirror', requestMirror: { backendRef: backend('mirror'), percent: 50 } }], backendRefs: [backend('cart-v1'), backend('cart-v2')] }])]);
  const random = seededRandom(11);
  const mirrored: Record<string, number> = { 'shop/cart-v1': 0, 'shop/cart-v2': 0 };
  const total: Record<string, number> = { 'shop/cart-v1': 0, 'shop/cart-v2': 0 };
  for (let i = 0; i < 4000; i++) {
    const p = forward(t.plan('shop/cart', 8080, request('/'), random()));
    total[p.backend.service]!++;
    if (p.mirrors.length > 0) mirrored[p.backend.service]!++;
  }
  for (const s of Object.keys(total)) assert.ok(Math.abs(mirrored[s]! / total[s]! - 0.5) < 0.05, `${s}: ${mirrored[s]}/${total[s]}`);
});

test('rule timeouts: Gateway API durations in ms; 0s means no timeout', () => {
  assert.equal(parseDuration('10s'), 10_000);
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('1m30s'), 90_000);
  assert.equal(parseDuration('1h'), 3_600_000);
  assert.equal(parseDuration('1h2m3s4ms'), 3_723_004);
  assert.equal(parseDuration('0s'), 0);
  for (const bad of ['', '10', '1.5s', '-1s', '1d', '123456s', '1h1h1h1h1h']) assert.equal(parseDuration(bad), undefined, bad);
  const t = table([
    cartRoute([
      { matches: [{ path: { type: 'Exact', value: '/a' } }], timeouts: { request: '10s', backendRequest: '500ms' }, backendRefs: [backend('cart-v1')] },
      { matches: [{ path: { type: 'Exact', value: '/b' } }], timeouts: { request: '0s' }, backendRefs: [backend('cart-v1')] },
    ]),
  ]);
  assert.deepEqual(forward(t.plan('shop/cart', 8080, request('/a'), 0)).timeouts, { requestMs: 10_000, backendRequestMs: 500 });
  assert.deepEqual(forward(t.plan('shop/cart', 8080, request('/b'), 0)).timeouts, { requestMs: undefined, backendRequestMs: undefined });
});
