import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { prefixMatches, replacePrefix } from '../../agent/l7/paths.js';
import { anchoredRegex, regexProblem } from '../../agent/l7/regex.js';
import { RouteStore } from '../../agent/l7/store.js';
import { routeStatusRows } from '../../agent/l7/status.js';
import { backend, cartRoute, CART_PARENT, grpcRoute, model, table } from './helpers.js';
import type { RequestView } from '../../agent/l7/types.js';

const t = table([
  cartRoute([
    { matches: [{ path: { type: 'Exact', value: '/a' } }], backendRefs: [backend('cart-v1', 8080, { weight: 0 }), backend('missing', 8080, { weight: 3 })] },
    { matches: [{ path: { type: 'PathPrefix', value: '/p' }, headers: [{ type: 'RegularExpression', name: 'x-a', value: '[a-z]+' }] }], filters: [{ type: 'URLRewrite', urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/' } } }], backendRefs: [backend('cart-v1')] },
    { matches: [{ queryParams: [{ name: 'q', value: '%' }] }, { path: { type: 'RegularExpression', value: '/r/.*' } }], filters: [{ type: 'RequestMirror', requestMirror: { backendRef: backend('mirror'), percent: 50 } }], backendRefs: [backend('cart-v1'), backend('cart-v2')] },
    { matches: [{ path: { type: 'PathPrefix', value: '/redirect' } }], filters: [{ type: 'RequestRedirect', requestRedirect: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/x' } } }] },
    // Header names that are also Object.prototype's: a request without them must not see the prototype's.
    { matches: [{ headers: [{ name: 'constructor', value: 'x' }] }, { headers: [{ type: 'RegularExpression', name: '__proto__', value: '.*' }] }], backendRefs: [backend('cart-v2')] },
  ]),
  grpcRoute('g', { parentRefs: [CART_PARENT], rules: [{ matches: [{ method: { service: 'a.B' } }], backendRefs: [backend('cart-v2')] }] }),
]);

const headerValue = fc.oneof(fc.string(), fc.array(fc.string(), { maxLength: 3 }));
const requestView: fc.Arbitrary<RequestView> = fc.record({
  method: fc.constantFrom('GET', 'POST', 'PUT', 'X', ''),
  path: fc.oneof(fc.string(), fc.constantFrom('/a', '/p', '/p/x', '/r/z', '/redirect/q', '/a.B/C', '/')),
  query: fc.oneof(fc.string(), fc.constantFrom('q=%', 'q=%25', 'q', '&&=', '%zz=1')),
  authority: fc.oneof(fc.string(), fc.constantFrom('cart:8080', '[::1]:1', '[', ':')),
  headers: fc.dictionary(fc.constantFrom('x-a', 'content-type', 'end-user', '__proto__', 'constructor'), headerValue),
});

test('plan() never throws and always returns a well-formed plan, whatever the request and the draw', () => {
  fc.assert(
    fc.property(requestView, fc.oneof(fc.double(), fc.constantFrom(0, 0.5, 0.9999999999999999, 1, -0, Number.NaN, Infinity)), fc.constantFrom(8080, 9090, 1), (req, random, port) => {
      const p = t.plan('shop/cart', port, req, random);
      if (p.kind === 'forward') {
        assert.ok(p.backend.service.length > 0);
        // Unrouted (port 1): the request unchanged; routed: the rule's rewrite keeps the query.
        if (p.rule === undefined) assert.equal(p.pathAndQuery, req.query === '' ? req.path : `${req.path}?${req.query}`);
        else assert.ok(req.query === '' || p.pathAndQuery.endsWith(`?${req.query}`));
        assert.ok(p.mirrors.every((m) => m.backend.service === 'shop/mirror'));
      } else if (p.kind === 'reply') assert.ok(p.statusCode === 404 || p.statusCode === 500);
      else assert.ok(p.location.startsWith('http://'));
    }),
    { numRuns: 2000 },
  );
});

test('PathPrefix matching is segment-wise: p matches p, p/ and p/anything, never p + another character', () => {
  const segment = fc.stringMatching(/^[a-z0-9._~-]{1,8}$/);
  fc.assert(
    fc.property(fc.array(segment, { minLength: 1, maxLength: 4 }), segment, fc.constantFrom('', '/', '/x'), (segs, extra, tail) => {
      const p = `/${segs.join('/')}`;
      assert.ok(prefixMatches(p, p + tail));
      assert.ok(!prefixMatches(p, p + extra));
      const replaced = replacePrefix(p + tail, p, '/new');
      assert.equal(replaced, `/new${tail}`);
    }),
  );
});

test('regexProblem never throws; every accepted pattern compiles', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 40, unit: fc.constantFrom('a', '(', ')', '*', '+', '?', '|', '\\', '[', ']', '{', '}', '1', ',', '.', '<', '=', '!', ':') }), (p) => {
      if (regexProblem(p) === undefined) assert.doesNotThrow(() => anchoredRegex(p));
    }),
    { numRuns: 3000 },
  );
});

test('validation and the store never throw, whatever the objects (a bad object is refused, never a crash)', () => {
  const value = fc.anything({ maxDepth: 4, withNullPrototype: true });
  const piece = fc.oneof(
    value,
    fc.constantFrom(
      { path: { type: 'RegularExpression', value: '(' } },
      { name: 'cart', port: 8080, weight: 1 },
      { type: 'URLRewrite', urlRewrite: { path: { type: 'ReplacePrefixMatch' } } },
      { type: 'RequestMirror', requestMirror: { backendRef: { name: 'x' } } },
      { kind: 'Service', name: 'cart' },
    ),
  );
  const route = fc.record({
    apiVersion: fc.constantFrom('gateway.networking.k8s.io/v1', 'x'),
    kind: fc.constantFrom('HTTPRoute', 'GRPCRoute'),
    metadata: fc.oneof(fc.constant({ name: 'r', namespace: 'shop' }), value),
    spec: fc.oneof(
      value,
      fc.record({ parentRefs: fc.oneof(fc.constant([CART_PARENT]), fc.array(piece)), rules: fc.array(fc.record({ matches: fc.array(piece), filters: fc.array(piece), backendRefs: fc.array(piece) }, { requiredKeys: [] })) }, { requiredKeys: [] }),
    ),
  });
  const store = new RouteStore();
  fc.assert(
    fc.property(fc.array(fc.oneof(route, value), { maxLength: 4 }), (objects) => {
      store.update(model({ 'shop/cart': [8080] }, objects));
      store.table().plan('shop/cart', 8080, { method: 'GET', path: '/', query: '', authority: 'cart', headers: {} }, 0.5);
      routeStatusRows(store.statuses());
    }),
    { numRuns: 1000 },
  );
});
