/** The waypoint's pure parts: the sniffer, the P2C least-request picker, header handling. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Endpoint, Service } from '../../agent/discovery/types.js';
import { H2_PREFACE, sniff } from '../../agent/waypoint/sniff.js';
import { RequestPicker } from '../../agent/waypoint/picker.js';
import { endToEnd, forwardedFor, shadowAuthority } from '../../agent/waypoint/headers.js';

describe('waypoint sniffer', () => {
  const cases: [string, Buffer, 'h2' | 'http1' | 'l4' | 'more'][] = [
    ['the HTTP/2 preface', H2_PREFACE, 'h2'],
    ['the preface and a SETTINGS frame', Buffer.concat([H2_PREFACE, Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]), 'h2'],
    ['part of the preface', H2_PREFACE.subarray(0, 10), 'more'],
    ['a GET request line', Buffer.from('GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n'), 'http1'],
    ['an HTTP/1.0 request line', Buffer.from('POST / HTTP/1.0\r\n'), 'http1'],
    ['an extension method', Buffer.from('PROPFIND /dav HTTP/1.1\r\n'), 'http1'],
    ['a request line without its CRLF yet', Buffer.from('GET /long/path'), 'more'],
    ['a method alone', Buffer.from('DELETE'), 'more'],
    ['HTTP/2 over TLS (a ClientHello)', Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]), 'l4'],
    ['lower-case method', Buffer.from('get / HTTP/1.1\r\n'), 'l4'],
    ['a Redis command', Buffer.from('*1\r\n$4\r\nPING\r\n'), 'l4'],
    ['HTTP/2 version on a request line', Buffer.from('GET / HTTP/2.0\r\n'), 'l4'],
    ['a space in the target', Buffer.from('GET /a b HTTP/1.1\r\n'), 'l4'],
    ['a bare LF after the version', Buffer.from('GET / HTTP/1.1\n'), 'l4'],
    ['SSH banner', Buffer.from('SSH-2.0-OpenSSH_9.2\r\n'), 'l4'],
  ];
  for (const [what, bytes, expected] of cases) it(`${what}: ${expected}`, () => assert.equal(sniff(bytes, 8192), expected));

  it('decides L4 when a request line does not end within the limit', () => {
    assert.equal(sniff(Buffer.from(`GET /${'a'.repeat(100)}`), 64), 'l4');
    assert.equal(sniff(Buffer.from(`GET /${'a'.repeat(10)}`), 64), 'more');
  });
});

function endpoint(i: number, labels: Record<string, string> = {}): Endpoint {
  return { ip: `198.18.120.${i}`, port: 8080, workload: { key: `shop/p${i}`, name: `p${i}`, namespace: 'shop', node: 'n', ip: `198.18.120.${i}`, serviceAccount: 'sa', identity: 'spiffe://cluster.local/ns/shop/sa/sa', labels, inMesh: true, workloadName: 'p', version: 'v1', containerPorts: new Map() } };
}

function service(endpoints: Endpoint[]): Service {
  return { key: 'shop/web', name: 'web', namespace: 'shop', clusterIP: '198.18.121.1', ports: new Map([[80, endpoints]]), labels: {}, hostname: 'web.shop.svc.cluster.local', waypoint: 'shop/wp' };
}

/** A deterministic [0, 1) sequence (mulberry32), so the counts below are exact. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('waypoint picker (least outstanding requests, power of two choices)', () => {
  it('never picks the busier of two endpoints', () => {
    const eps = [endpoint(1), endpoint(2)];
    const picker = new RequestPicker(seeded(1));
    picker.begin(eps[0]!);
    picker.begin(eps[0]!);
    for (let i = 0; i < 50; i++) assert.equal(picker.pick(service(eps), { service: 'shop/web', port: 80 }), eps[1]);
  });

  it('spreads requests that stay outstanding evenly over the endpoints', () => {
    const eps = [1, 2, 3, 4].map((i) => endpoint(i));
    const picker = new RequestPicker(seeded(7));
    const svc = service(eps);
    for (let i = 0; i < 400; i++) picker.begin(picker.pick(svc, { service: 'shop/web', port: 80 })!);
    const counts = eps.map((e) => picker.outstanding(e));
    // P2C keeps the spread of outstanding counts within a few requests of each other, where random choice would drift by tens.
    assert.ok(Math.max(...counts) - Math.min(...counts) <= 4, `counts ${counts.join(',')}`);
    assert.equal(counts.reduce((a, b) => a + b, 0), 400);
  });

  it('counts a request until it ends', () => {
    const e = endpoint(1);
    const picker = new RequestPicker();
    picker.begin(e);
    assert.equal(picker.outstanding(e), 1);
    picker.end(e);
    assert.equal(picker.outstanding(e), 0);
  });

  it('picks only endpoints of the subset, and none when there is none', () => {
    const eps = [endpoint(1, { version: 'v1' }), endpoint(2, { version: 'v2' })];
    const picker = new RequestPicker(seeded(3));
    for (let i = 0; i < 20; i++) assert.equal(picker.pick(service(eps), { service: 'shop/web', port: 80, subset: { name: 'v2', labels: { version: 'v2' } } }), eps[1]);
    assert.equal(picker.pick(service(eps), { service: 'shop/web', port: 80, subset: { name: 'v3', labels: { version: 'v3' } } }), undefined);
    assert.equal(picker.pick(service([]), { service: 'shop/web', port: 80 }), undefined);
    assert.equal(picker.pick(service(eps), { service: 'shop/web', port: 81 }), undefined);
  });
});

describe('waypoint headers', () => {
  it('drops hop-by-hop headers and the ones Connection names, keeps te: trailers for HTTP/2', () => {
    const out = endToEnd({ connection: 'keep-alive, x-hop', 'keep-alive': 'timeout=5', 'x-hop': '1', 'transfer-encoding': 'chunked', upgrade: 'h2c', host: 'a', te: 'trailers', 'x-end': 'e', ':path': '/' }, true);
    assert.deepEqual(out, { 'x-end': 'e', te: 'trailers' });
    assert.deepEqual(endToEnd({ te: 'trailers', a: '1' }, false), { a: '1' });
  });

  it('suffixes the mirror authority with -shadow before the port', () => {
    assert.equal(shadowAuthority('reviews:9080'), 'reviews-shadow:9080');
    assert.equal(shadowAuthority('reviews.shop.svc.cluster.local'), 'reviews.shop.svc.cluster.local-shadow');
    assert.equal(shadowAuthority('[fd00::1]:80'), '[fd00::1]-shadow:80');
  });

  it('formats forwarded for IPv4 and IPv6', () => {
    assert.equal(forwardedFor('198.18.120.5'), 'for="198.18.120.5"');
    assert.equal(forwardedFor('fd00::5'), 'for="[fd00::5]"');
  });
});
