import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateRouteObject } from '../../agent/l7/validate.js';
import { anchoredRegex, LINEAR_ENGINE, regexEngine, regexProblem } from '../../agent/l7/regex.js';
import { backend, cartRoute, grpcRoute, CART_PARENT, httpRoute } from './helpers.js';

function errorsOf(obj: unknown): { path: string; message: string }[] {
  const v = validateRouteObject(obj);
  assert.equal(v.ok, false, 'expected the route to be refused');
  return v.ok ? [] : [...v.errors];
}

function refusedAt(obj: unknown, path: string, message: RegExp): void {
  const errors = errorsOf(obj);
  const e = errors.find((x) => x.path === path);
  assert.ok(e !== undefined, `no error at ${path}; got ${JSON.stringify(errors)}`);
  assert.match(e.message, message);
}

const rule1 = (rule: Record<string, unknown>) => cartRoute([rule]);

test('a complete valid HTTPRoute and GRPCRoute pass and come back as the same object', () => {
  const ok = [
    cartRoute([
      {
        name: 'canary',
        matches: [
          { path: { type: 'PathPrefix', value: '/api' }, method: 'GET', headers: [{ name: 'end-user', value: 'jason' }, { type: 'RegularExpression', name: 'x-v', value: 'v[0-9]+' }], queryParams: [{ name: 'q', value: '1' }] },
        ],
        filters: [
          { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'x-a', value: '1' }], add: [{ name: 'x-b', value: '2' }], remove: ['x-c'] } },
          { type: 'ResponseHeaderModifier', responseHeaderModifier: { set: [{ name: 'x-d', value: '' }] } },
          { type: 'URLRewrite', urlRewrite: { hostname: 'cart.internal', path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/v2' } } },
          { type: 'RequestMirror', requestMirror: { backendRef: backend('mirror'), fraction: { numerator: 1, denominator: 10 } } },
          { type: 'RequestMirror', requestMirror: { backendRef: backend('mirror'), percent: 5 } },
        ],
        backendRefs: [backend('cart-v1', 8080, { weight: 90 }), backend('cart-v2', 8080, { weight: 10, filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { add: [{ name: 'x-canary', value: '1' }] } }] })],
        timeouts: { request: '10s', backendRequest: '2s' },
      },
      { matches: [{ path: { type: 'Exact', value: '/old' } }], filters: [{ type: 'RequestRedirect', requestRedirect: { scheme: 'https', hostname: 'example.org', port: 8443, statusCode: 301, path: { type: 'ReplaceFullPath', replaceFullPath: '/new' } } }] },
    ]),
    httpRoute('bare', {}),
    grpcRoute('g', {
      parentRefs: [{ ...CART_PARENT, port: 9090 }],
      hostnames: ['cart.shop'],
      rules: [{ matches: [{ method: { service: 'shop.Cart', method: 'Get' }, headers: [{ name: 'x-a', value: '1' }] }, { method: { type: 'RegularExpression', method: 'Get.*' } }], backendRefs: [backend('cart-v1')] }],
    }),
  ];
  for (const obj of ok) {
    const r = validateRouteObject(obj);
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.value, obj);
  }
});

const refusals: { name: string; obj: unknown; path: string; message: RegExp }[] = [
  { name: 'apiVersion', obj: { ...cartRoute([]), apiVersion: 'gateway.networking.k8s.io/v1beta1' }, path: 'apiVersion', message: /must be gateway\.networking\.k8s\.io\/v1/ },
  { name: 'metadata.name', obj: { ...cartRoute([]), metadata: { namespace: 'shop' } }, path: 'metadata.name', message: /is required/ },
  { name: 'an unknown field', obj: rule1({ backendRefs: [], colour: 'red' }), path: 'spec.rules[0].colour', message: /unknown field/ },
  { name: 'a relative Exact path', obj: rule1({ matches: [{ path: { type: 'Exact', value: 'foo' } }] }), path: 'spec.rules[0].matches[0].path.value', message: /absolute path/ },
  { name: 'a path with //', obj: rule1({ matches: [{ path: { value: '/a//b' } }] }), path: 'spec.rules[0].matches[0].path.value', message: /must not contain \/\// },
  { name: 'a path with /../', obj: rule1({ matches: [{ path: { value: '/a/../b' } }] }), path: 'spec.rules[0].matches[0].path.value', message: /\/\.\.\// },
  { name: 'a path with %2F', obj: rule1({ matches: [{ path: { value: '/a%2Fb' } }] }), path: 'spec.rules[0].matches[0].path.value', message: /%2f/ },
  { name: 'a path type', obj: rule1({ matches: [{ path: { type: 'Glob', value: '/a' } }] }), path: 'spec.rules[0].matches[0].path.type', message: /must be Exact, PathPrefix or RegularExpression/ },
  { name: 'an invalid regex', obj: rule1({ matches: [{ path: { type: 'RegularExpression', value: '/a(' } }] }), path: 'spec.rules[0].matches[0].path.value', message: /not a valid regular expression/ },
  { name: 'a regex neither engine can bound', obj: rule1({ matches: [{ path: { type: 'RegularExpression', value: '/(a+)+x{1,1000}' } }] }), path: 'spec.rules[0].matches[0].path.value', message: /catastrophic backtracking|linear time/ },
  { name: 'a header regex with a backreference', obj: rule1({ matches: [{ headers: [{ type: 'RegularExpression', name: 'x', value: '(a)\\1' }] }] }), path: 'spec.rules[0].matches[0].headers[0].value', message: /backreferences/ },
  { name: 'a query regex with lookahead', obj: rule1({ matches: [{ queryParams: [{ type: 'RegularExpression', name: 'x', value: '(?=a)a' }] }] }), path: 'spec.rules[0].matches[0].queryParams[0].value', message: /lookahead/ },
  { name: 'a header name', obj: rule1({ matches: [{ headers: [{ name: 'bad header', value: '1' }] }] }), path: 'spec.rules[0].matches[0].headers[0].name', message: /HTTP header name/ },
  { name: 'an empty header value', obj: rule1({ matches: [{ headers: [{ name: 'x', value: '' }] }] }), path: 'spec.rules[0].matches[0].headers[0].value', message: /1-4096/ },
  { name: 'a method', obj: rule1({ matches: [{ method: 'FETCH' }] }), path: 'spec.rules[0].matches[0].method', message: /must be one of GET/ },
  { name: 'an ExtensionRef to a kind Weft does not have', obj: rule1({ filters: [{ type: 'ExtensionRef', extensionRef: { group: 'x', kind: 'y', name: 'z' } }] }), path: 'spec.rules[0].filters[0].extensionRef', message: /ExtensionRef to x\/y is not supported by Weft \(only weft\.dev\/HTTPFault\)/ },
  { name: 'an ExtensionRef without its reference', obj: rule1({ filters: [{ type: 'ExtensionRef' }] }), path: 'spec.rules[0].filters[0].extensionRef', message: /is required/ },
  { name: 'an HTTPFault in a backendRef\'s filters', obj: rule1({ backendRefs: [backend('cart-v1', 8080, { filters: [{ type: 'ExtensionRef', extensionRef: { group: 'weft.dev', kind: 'HTTPFault', name: 'f' } }] })] }), path: 'spec.rules[0].backendRefs[0].filters[0].type', message: /rule's filters only/ },
  { name: 'two HTTPFaults on one rule', obj: rule1({ filters: [{ type: 'ExtensionRef', extensionRef: { group: 'weft.dev', kind: 'HTTPFault', name: 'f' } }, { type: 'ExtensionRef', extensionRef: { group: 'weft.dev', kind: 'HTTPFault', name: 'g' } }] }), path: 'spec.rules[0].filters[1].extensionRef', message: /one HTTPFault/ },
  { name: 'CORS', obj: rule1({ filters: [{ type: 'CORS', cors: {} }] }), path: 'spec.rules[0].filters[0].type', message: /CORS is not supported/ },
  { name: 'a filter with another type\'s field', obj: rule1({ filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: {}, urlRewrite: {} }] }), path: 'spec.rules[0].filters[0].urlRewrite', message: /must not be set when type is RequestHeaderModifier/ },
  { name: 'a filter without its field', obj: rule1({ filters: [{ type: 'URLRewrite' }] }), path: 'spec.rules[0].filters[0].urlRewrite', message: /is required when type is URLRewrite/ },
  { name: 'a repeated filter', obj: rule1({ filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: {} }, { type: 'RequestHeaderModifier', requestHeaderModifier: {} }] }), path: 'spec.rules[0].filters[1].type', message: /only once/ },
  { name: 'a header set twice', obj: rule1({ filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'X-A', value: '1' }, { name: 'x-a', value: '2' }] } }] }), path: 'spec.rules[0].filters[0].requestHeaderModifier.set[1].name', message: /appears twice/ },
  { name: 'a header both set and removed', obj: rule1({ filters: [{ type: 'ResponseHeaderModifier', responseHeaderModifier: { set: [{ name: 'X-A', value: '1' }], remove: ['x-a'] } }] }), path: 'spec.rules[0].filters[0].responseHeaderModifier.remove[0]', message: /already in set \(one action per header name\)/ },
  { name: 'a rule name used twice', obj: cartRoute([{ name: 'a' }, { name: 'a' }]), path: 'spec.rules[1].name', message: /used twice/ },
  { name: 'a redirect with backendRefs', obj: rule1({ filters: [{ type: 'RequestRedirect', requestRedirect: {} }], backendRefs: [backend('cart-v1')] }), path: 'spec.rules[0].backendRefs', message: /must be empty/ },
  { name: 'a redirect and a rewrite', obj: rule1({ filters: [{ type: 'RequestRedirect', requestRedirect: {} }, { type: 'URLRewrite', urlRewrite: {} }] }), path: 'spec.rules[0].filters', message: /mutually exclusive/ },
  { name: 'a redirect status', obj: rule1({ filters: [{ type: 'RequestRedirect', requestRedirect: { statusCode: 304 } }] }), path: 'spec.rules[0].filters[0].requestRedirect.statusCode', message: /301, 302, 303, 307, 308/ },
  { name: 'a redirect scheme', obj: rule1({ filters: [{ type: 'RequestRedirect', requestRedirect: { scheme: 'ftp' } }] }), path: 'spec.rules[0].filters[0].requestRedirect.scheme', message: /http or https/ },
  { name: 'a redirect hostname', obj: rule1({ filters: [{ type: 'RequestRedirect', requestRedirect: { hostname: 'Bad_Host' } }] }), path: 'spec.rules[0].filters[0].requestRedirect.hostname', message: /RFC 1123/ },
  { name: 'ReplacePrefixMatch without a PathPrefix match', obj: rule1({ matches: [{ path: { type: 'Exact', value: '/a' } }], filters: [{ type: 'URLRewrite', urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/b' } } }] }), path: 'spec.rules[0].filters[0].urlRewrite.path.type', message: /exactly one match, of type PathPrefix/ },
  { name: 'ReplaceFullPath without its value', obj: rule1({ filters: [{ type: 'URLRewrite', urlRewrite: { path: { type: 'ReplaceFullPath' } } }] }), path: 'spec.rules[0].filters[0].urlRewrite.path.replaceFullPath', message: /is required/ },
  { name: 'a Service backendRef without port', obj: rule1({ backendRefs: [{ name: 'cart-v1' }] }), path: 'spec.rules[0].backendRefs[0].port', message: /required for a Service/ },
  { name: 'a weight', obj: rule1({ backendRefs: [backend('cart-v1', 8080, { weight: 1000001 })] }), path: 'spec.rules[0].backendRefs[0].weight', message: /0-1000000/ },
  { name: 'a redirect in a backendRef\'s filters', obj: rule1({ backendRefs: [backend('cart-v1', 8080, { filters: [{ type: 'RequestRedirect', requestRedirect: {} }] })] }), path: 'spec.rules[0].backendRefs[0].filters[0].type', message: /not supported in a backendRef/ },
  { name: 'mirror percent and fraction', obj: rule1({ filters: [{ type: 'RequestMirror', requestMirror: { backendRef: backend('mirror'), percent: 1, fraction: { numerator: 1 } } }] }), path: 'spec.rules[0].filters[0].requestMirror', message: /mutually exclusive/ },
  { name: 'a mirror fraction over 1', obj: rule1({ filters: [{ type: 'RequestMirror', requestMirror: { backendRef: backend('mirror'), fraction: { numerator: 3, denominator: 2 } } }] }), path: 'spec.rules[0].filters[0].requestMirror.fraction.numerator', message: /greater than denominator/ },
  { name: 'a mirror percent', obj: rule1({ filters: [{ type: 'RequestMirror', requestMirror: { backendRef: backend('mirror'), percent: 101 } }] }), path: 'spec.rules[0].filters[0].requestMirror.percent', message: /0-100/ },
  { name: 'a timeout format', obj: rule1({ timeouts: { request: '1.5s' } }), path: 'spec.rules[0].timeouts.request', message: /Gateway API duration/ },
  { name: 'backendRequest longer than request', obj: rule1({ timeouts: { request: '1s', backendRequest: '2s' } }), path: 'spec.rules[0].timeouts.backendRequest', message: /not be longer than request/ },
  { name: 'sessionPersistence', obj: rule1({ sessionPersistence: { type: 'Cookie' } }), path: 'spec.rules[0].sessionPersistence', message: /not supported by Weft/ },
  { name: 'a parentRef port', obj: httpRoute('r', { parentRefs: [{ ...CART_PARENT, port: 0 }] }), path: 'spec.parentRefs[0].port', message: /1-65535/ },
  { name: 'an empty rule list', obj: cartRoute([]), path: 'spec.rules', message: /greater or equal to 1/ },
  { name: 'more than 16 rules', obj: cartRoute(Array.from({ length: 17 }, () => ({}))), path: 'spec.rules', message: /less or equal to 16/ },
  {
    name: 'more than 128 matches in all',
    obj: cartRoute(Array.from({ length: 3 }, () => ({ matches: Array.from({ length: 60 }, () => ({ method: 'GET' })) }))),
    path: 'spec.rules',
    message: /at most 128 matches/,
  },
  { name: 'GRPCRoute: a method match naming nothing', obj: grpcRoute('g', { rules: [{ matches: [{ method: {} }] }] }), path: 'spec.rules[0].matches[0].method', message: /one or both of service and method/ },
  { name: 'GRPCRoute: an Exact service name', obj: grpcRoute('g', { rules: [{ matches: [{ method: { service: 'shop/Cart' } }] }] }), path: 'spec.rules[0].matches[0].method.service', message: /fully qualified gRPC service name/ },
  { name: 'GRPCRoute: an Exact method name', obj: grpcRoute('g', { rules: [{ matches: [{ method: { method: 'Get.*' } }] }] }), path: 'spec.rules[0].matches[0].method.method', message: /gRPC method name/ },
  { name: 'GRPCRoute: an unsafe method regex', obj: grpcRoute('g', { rules: [{ matches: [{ method: { type: 'RegularExpression', method: '(G+)*a{0,500}' } }] }] }), path: 'spec.rules[0].matches[0].method.method', message: /catastrophic|linear time/ },
  { name: 'GRPCRoute: RequestRedirect is not a GRPCRoute filter', obj: grpcRoute('g', { rules: [{ filters: [{ type: 'RequestRedirect', requestRedirect: {} }] }] }), path: 'spec.rules[0].filters[0].type', message: /must be one of RequestHeaderModifier, ResponseHeaderModifier, RequestMirror, ExtensionRef/ },
  { name: 'GRPCRoute: timeouts are not a GRPCRoute field', obj: grpcRoute('g', { rules: [{ timeouts: { request: '1s' } }] }), path: 'spec.rules[0].timeouts', message: /unknown field/ },
];

for (const c of refusals) {
  test(`refused by field: ${c.name}`, () => refusedAt(c.obj, c.path, c.message));
}

test('every problem of a route is reported in one go', () => {
  const errors = errorsOf(rule1({ matches: [{ path: { type: 'Exact', value: 'x' }, method: 'FETCH' }], backendRefs: [{ name: 'a' }] }));
  assert.deepEqual(errors.map((e) => e.path).sort(), ['spec.rules[0].backendRefs[0].port', 'spec.rules[0].matches[0].method', 'spec.rules[0].matches[0].path.value']);
});

test('regex safety: what is accepted, on which engine, and what is refused', () => {
  // Cheap shapes stay on V8's backtracking engine (fast); anchored, their work is linear.
  for (const p of ['[a-z]{1,8}', 'a|b|c', '(?:ab)+', '(foo|bar)', '[a-z]{1,63}\\.[a-z]{1,63}', 'v[12]', 'a*?b', '\\(a+\\)', '(?<year>[0-9]{4})-x']) {
    assert.equal(regexEngine(p), 'backtracking', p);
  }
  // Several unbounded quantifiers or nested ones: the linear-time engine, or refused without it.
  for (const p of ['/api/v[0-9]+/.*', '.*foo.*', '.*a.*b', '(a+)+', '(a|ab)*', '(?:a|b)+', '\\d+-\\d+']) {
    assert.equal(regexEngine(p), LINEAR_ENGINE ? 'linear' : undefined, p);
  }
  for (const bad of ['(a)\\1', '\\k<n>(?<n>a)', '(?<=a)b', '(?!a)b', '(?=a)a', 'x'.repeat(257), '[', 'a**', '(a+)+x{1,1000}', '(a{1,20}){1,20}']) {
    assert.notEqual(regexProblem(bad), undefined, bad);
  }
});

test('a pattern that backtracks quadratically (.*a.*b took 1.6 s on 16 KiB) runs on the linear engine and still answers right', { skip: !LINEAR_ENGINE && 'no linear-time engine in this Node' }, () => {
  const r = anchoredRegex('.*a.*b');
  assert.equal(r.flags, 'l');
  assert.equal(r.test('a'.repeat(16_000)), false);
  assert.equal(r.test(`x${'a'.repeat(16_000)}b`), true);
  assert.equal(anchoredRegex('(a+)+').test('a'.repeat(50_000)), true);
});
