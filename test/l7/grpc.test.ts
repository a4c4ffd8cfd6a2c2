import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyHeaderModifier } from '../../agent/l7/paths.js';
import { backend, CART_PARENT, grpcRoute, request, seededRandom, table } from './helpers.js';
import type { RequestView } from '../../agent/l7/types.js';

const grpc = (path: string, headers: Record<string, string> = {}): RequestView => request(path, { method: 'POST', headers: { 'content-type': 'application/grpc', te: 'trailers', ...headers } });

test('GRPCRoute method matches compile to path matches on /<service>/<method>', () => {
  const t = table([
    grpcRoute('g', {
      parentRefs: [{ ...CART_PARENT, port: 9090 }],
      rules: [
        { matches: [{ method: { service: 'shop.Cart', method: 'Get' } }], backendRefs: [backend('cart-v1')] },
        { matches: [{ method: { service: 'shop.Orders' } }], backendRefs: [backend('cart-v2')] },
        { matches: [{ method: { method: 'Ping' } }], backendRefs: [backend('mirror')] },
        { matches: [{ method: { type: 'RegularExpression', service: 'grpc\\.health\\.v1\\..*', method: 'Check|Watch' } }], backendRefs: [backend('cart', 9090)] },
      ],
    }),
  ]);
  const to = (r: RequestView) => {
    const p = t.plan('shop/cart', 9090, r, 0);
    return p.kind === 'forward' ? `${p.backend.service}:${p.backend.port}` : `${p.kind}`;
  };
  assert.equal(to(grpc('/shop.Cart/Get')), 'shop/cart-v1:8080');
  assert.equal(to(grpc('/shop.Cart/Put')), 'reply');
  assert.equal(to(grpc('/shop.Orders/List')), 'shop/cart-v2:8080');
  assert.equal(to(grpc('/shop.OrdersX/List')), 'reply');
  assert.equal(to(grpc('/any.Service/Ping')), 'shop/mirror:8080');
  assert.equal(to(grpc('/grpc.health.v1.Health/Check')), 'shop/cart:9090');
  assert.equal(to(grpc('/grpc.health.v1.Health/List')), 'reply');
  // gRPC-Web and +proto content types are gRPC; anything else is not.
  assert.equal(to(grpc('/shop.Cart/Get', { 'content-type': 'application/grpc+proto' })), 'shop/cart-v1:8080');
  assert.equal(to(grpc('/shop.Cart/Get', { 'content-type': 'application/grpc-web' })), 'shop/cart-v1:8080');
  assert.equal(to(request('/shop.Cart/Get', { method: 'POST' })), 'reply');
  // The route is on port 9090 only.
  assert.equal(t.plan('shop/cart', 8080, grpc('/shop.Cart/Get'), 0).kind, 'forward');
  assert.equal(t.routed('shop/cart', 8080), false);
  assert.deepEqual(
    t.rulesFor('shop/cart', 9090).map((r) => r.matches[0]!.path),
    [
      // GRPCRoute precedence: characters of the service (a regex counts its pattern's), then of the method.
      { type: 'RegularExpression', value: '/(?:grpc\\.health\\.v1\\..*)/(?:Check|Watch)' },
      { type: 'PathPrefix', value: '/shop.Orders/' },
      { type: 'Exact', value: '/shop.Cart/Get' },
      { type: 'RegularExpression', value: '/[^/]+/Ping' },
    ],
  );
});

test('GRPCRoute header matches, header modifiers, mirrors and weights', () => {
  const t = table([
    grpcRoute('g', {
      parentRefs: [CART_PARENT],
      rules: [
        {
          matches: [{ headers: [{ name: 'End-User', value: 'jason' }] }],
          filters: [
            { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'x-route', value: 'jason' }] } },
            { type: 'ResponseHeaderModifier', responseHeaderModifier: { add: [{ name: 'x-served-by', value: 'v2' }] } },
            { type: 'RequestMirror', requestMirror: { backendRef: backend('mirror') } },
          ],
          backendRefs: [backend('cart-v2')],
        },
        { backendRefs: [backend('cart-v1', 8080, { weight: 9 }), backend('cart-v2', 8080, { weight: 1 })] },
      ],
    }),
  ]);
  const p = t.plan('shop/cart', 8080, grpc('/shop.Cart/Get', { 'end-user': 'jason' }), 0.5);
  assert.equal(p.kind, 'forward');
  if (p.kind !== 'forward') return;
  assert.equal(p.backend.service, 'shop/cart-v2');
  assert.deepEqual(applyHeaderModifier({}, p.requestHeaders), { 'x-route': 'jason' });
  assert.deepEqual(p.responseHeaders?.add, [['x-served-by', 'v2']]);
  assert.deepEqual(p.mirrors, [{ backend: { service: 'shop/mirror', port: 8080 }, percent: 100 }]);
  assert.equal(p.pathAndQuery, '/shop.Cart/Get');
  assert.deepEqual(p.timeouts, { requestMs: undefined, backendRequestMs: undefined });
  const random = seededRandom(5);
  let v2 = 0;
  const draws = 10_000;
  for (let i = 0; i < draws; i++) {
    const q = t.plan('shop/cart', 8080, grpc('/shop.Cart/Get'), random());
    if (q.kind === 'forward' && q.backend.service === 'shop/cart-v2') v2++;
  }
  // 10% within ±1.5 points (five standard deviations over 10 000 draws).
  assert.ok(Math.abs(v2 / draws - 0.1) <= 0.015, String(v2));
});

test('GRPCRoute: no backend, all weights 0 or an unresolved backendRef answer gRPC UNAVAILABLE (14), not a bare 500', () => {
  const t = table([
    grpcRoute('g', {
      parentRefs: [CART_PARENT],
      rules: [
        { matches: [{ method: { service: 'a.None' } }] },
        { matches: [{ method: { service: 'a.Zero' } }], backendRefs: [backend('cart-v1', 8080, { weight: 0 })] },
        { matches: [{ method: { service: 'a.Gone' } }], backendRefs: [backend('gone')] },
      ],
    }),
  ]);
  for (const svc of ['a.None', 'a.Zero', 'a.Gone']) {
    const p = t.plan('shop/cart', 8080, grpc(`/${svc}/M`), 0.5);
    assert.equal(p.kind, 'reply');
    if (p.kind === 'reply') {
      assert.equal(p.grpcStatus, 14, svc);
      assert.equal(p.responseFlag, 'NR');
    }
  }
  // Nothing matched: 404, which gRPC clients read as UNIMPLEMENTED.
  const miss = t.plan('shop/cart', 8080, grpc('/a.Other/M'), 0.5);
  assert.equal(miss.kind === 'reply' && miss.statusCode, 404);
  assert.equal(miss.kind === 'reply' && miss.grpcStatus, undefined);
});
