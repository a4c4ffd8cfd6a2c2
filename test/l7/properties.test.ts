import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { prefixMatches, replacePrefix } from '../../agent/l7/paths.js';
import { regexProblem } from '../../agent/l7/regex.js';
import { backend, cartRoute, CART_PARENT, grpcRoute, table } from './helpers.js';
import type { RequestView } from '../../agent/l7/types.js';

const t = table([
  cartRoute([
    { matches: [{ path: { type: 'Exact', value: '/a' } }], backendRefs: [backend('cart-v1', 8080, { weight: 0 }), backend('missing', 8080, { weight: 3 })] },
    { matches: [{ path: { type: 'PathPrefix', value: '/p' }, headers: [{ type: 'RegularExpression', name: 'x-a', value: '[a-z]+' }] }], filters: [{ type: 'URLRewrite', urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/' } } }], backendRefs: [backend('cart-v1')] },
    { matches: [{ queryParams: [{ name: 'q', value: '%' }] }, { path: { type: 'RegularExpression', value: '/r/.*' } }], filters: [{ type: 'RequestMirror', requestMirror: { backendRef: backend('mirror'), percent: 50 } }], backendRefs: [backend('cart-v1'), backend('cart-v2')] },
    { matches: [{ path: { type: 'PathPrefix', value: '/redirect' } }], filters: [{ type: 'RequestRedirect', requestRedirect: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/x' } } }] },
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
        assert.ok(p.pathAndQuery.startsWith(req.path.startsWith('/') || p.rule === undefined ? '' : ''));
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
      if (regexProblem(p) === undefined) assert.doesNotThrow(() => new RegExp(`^(?:${p})$`));
    }),
    { numRuns: 3000 },
  );
});
