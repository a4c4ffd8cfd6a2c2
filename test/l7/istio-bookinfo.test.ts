/**
 * The objects of Istio's Bookinfo, httpbin circuit-breaking and mirroring task manifests
 * (test/fixtures/istio/: the same objects in Weft's own files, Istio's are not copied) plan as
 * Istio's task pages describe, through the waypoint's RouteStore.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RouteStore } from '../../agent/l7/store.js';
import { request, seededRandom } from './helpers.js';
import { bookinfo, fixture, outcome } from './istio-helpers.js';

const DR_ALL = fixture('destination-rule-all.yaml');
const JASON = { 'end-user': 'jason' };

function store(...files: string[]): RouteStore {
  const s = new RouteStore();
  s.update(bookinfo([...DR_ALL, ...files.flatMap(fixture)]));
  assert.deepEqual(s.rejected(), []);
  return s;
}

function plan(s: RouteStore, svc: string, headers: Record<string, string> = {}, random = 0.5, path = '/') {
  return s.table().plan(`default/${svc}`, 9080, request(path, { headers, authority: `${svc}:9080` }), random);
}

test('virtual-service-all-v1: every Bookinfo service goes to its v1 subset (labels version: v1), for jason too', () => {
  const s = store('virtual-service-all-v1.yaml');
  for (const svc of ['productpage', 'reviews', 'ratings', 'details']) {
    for (const headers of [{}, JASON]) {
      const p = plan(s, svc, headers, Math.random());
      assert.equal(outcome(p), `default/${svc}@v1`);
      assert.ok(p.kind === 'forward');
      assert.deepEqual(p.backend.subset?.labels, { version: 'v1' });
      assert.equal(p.backend.port, 9080);
    }
  }
  const vs = s.statuses().find((x) => x.route === 'VirtualService default/reviews');
  assert.equal(vs?.parents[0]?.parent, 'Service default/reviews');
  assert.deepEqual(vs?.parents[0]?.conditions.map((c) => `${c.type} ${c.status}`), ['Accepted True', 'ResolvedRefs True']);
});

test('virtual-service-reviews-test-v2: end-user jason to v2, everyone else to v1 (first match in order)', () => {
  const s = store('virtual-service-all-v1.yaml', 'virtual-service-reviews-test-v2.yaml');
  assert.equal(outcome(plan(s, 'reviews', JASON)), 'default/reviews@v2');
  assert.equal(outcome(plan(s, 'reviews', { 'end-user': 'jasonx' })), 'default/reviews@v1');
  assert.equal(outcome(plan(s, 'reviews')), 'default/reviews@v1');
  // Two VirtualServices named reviews? No: the second file replaces the first (same name): one status.
  assert.equal(s.statuses().filter((x) => x.route === 'VirtualService default/reviews').length, 1);
});

const DRAWS = 10_000;
/** ±2.5 points: five standard deviations of a 50 % share over 10 000 draws (sqrt(.25/1e4) = 0.5 points). */
const TOLERANCE = 0.025;

test(`virtual-service-reviews-50-v3: 50/50 v1/v3 within ±${TOLERANCE * 100} points over ${DRAWS} seeded draws, never v2; then reviews-v3: all v3`, () => {
  const s = store('virtual-service-all-v1.yaml', 'virtual-service-reviews-50-v3.yaml');
  for (const seed of [1, 2, 3]) {
    const random = seededRandom(seed);
    const counts = new Map<string, number>();
    for (let i = 0; i < DRAWS; i++) {
      const k = outcome(plan(s, 'reviews', {}, random()));
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    assert.deepEqual([...counts.keys()].sort(), ['default/reviews@v1', 'default/reviews@v3']);
    for (const k of counts.keys()) assert.ok(Math.abs(counts.get(k)! / DRAWS - 0.5) <= TOLERANCE, `${k}: ${counts.get(k)}`);
  }
  const s3 = store('virtual-service-all-v1.yaml', 'virtual-service-reviews-v3.yaml');
  const random = seededRandom(4);
  for (let i = 0; i < 1000; i++) assert.equal(outcome(plan(s3, 'reviews', {}, random())), 'default/reviews@v3');
});

test('virtual-service-ratings-test-delay: jason gets a 7 s delay on 100 % (rule.fault), others none', () => {
  const s = store('virtual-service-all-v1.yaml', 'virtual-service-ratings-test-delay.yaml');
  const p = plan(s, 'ratings', JASON);
  assert.ok(p.kind === 'forward');
  assert.equal(outcome(p), 'default/ratings@v1');
  assert.deepEqual(p.rule?.fault, { delay: { ms: 7000, percent: 100 } });
  const q = plan(s, 'ratings');
  assert.ok(q.kind === 'forward');
  assert.equal(q.rule?.fault, undefined);
});

test('virtual-service-ratings-test-abort: jason gets an abort 500 on 100 % (rule.fault), others none', () => {
  const s = store('virtual-service-all-v1.yaml', 'virtual-service-ratings-test-abort.yaml');
  const p = plan(s, 'ratings', JASON);
  assert.ok(p.kind === 'forward');
  assert.deepEqual(p.rule?.fault, { abort: { statusCode: 500, percent: 100 } });
  assert.equal(plan(s, 'ratings').kind === 'forward' && plan(s, 'ratings').rule?.fault, undefined);
});

test('the httpbin circuit breaker: its trafficPolicy reaches the backend as policy data (durations in ms)', () => {
  const s = new RouteStore();
  s.update(bookinfo([...fixture('httpbin-circuit-breaker-destination-rule.yaml'), { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'httpbin' }, spec: { hosts: ['httpbin'], http: [{ route: [{ destination: { host: 'httpbin' } }] }] } }]));
  assert.deepEqual(s.rejected(), []);
  const p = s.table().plan('default/httpbin', 8000, request('/get'), 0.3);
  assert.ok(p.kind === 'forward');
  assert.equal(p.backend.port, 8000);
  assert.deepEqual(p.backend.policy, {
    connectionPool: { maxConnections: 1, connectTimeoutMs: undefined, http1MaxPendingRequests: 1, http2MaxRequests: undefined, maxRequestsPerConnection: 1, maxRetries: undefined, idleTimeoutMs: undefined },
    outlierDetection: { consecutive5xxErrors: 1, consecutiveGatewayErrors: undefined, intervalMs: 1000, baseEjectionTimeMs: 180_000, maxEjectionPercent: 100, minHealthPercent: undefined },
  });
});

test('the mirroring task: v1 live, every request mirrored to v2', () => {
  const s = new RouteStore();
  s.update(bookinfo(fixture('httpbin-mirror.yaml')));
  assert.deepEqual(s.rejected(), []);
  const random = seededRandom(9);
  for (let i = 0; i < 200; i++) {
    const p = s.table().plan('default/httpbin', 8000, request('/headers'), random());
    assert.equal(outcome(p), 'default/httpbin@v1');
    assert.ok(p.kind === 'forward');
    assert.equal(p.mirrors.length, 1);
    assert.equal(p.mirrors[0]!.backend.subset?.name, 'v2');
  }
});
