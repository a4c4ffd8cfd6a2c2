/**
 * The waypoint's request metrics: Istio's names, buckets and labels, the values derived from
 * the model as Istio derives them, and what a scrape shows after observe(). Pure, no root.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { ISTIO_DURATION_BUCKETS_MS, ISTIO_SIZE_BUCKETS_BYTES, REQUEST_LABELS, RequestMetrics, type RequestLabelInput } from '../../agent/telemetry/request-metrics.js';
import { workload } from './fixtures.js';

const productpage = workload({ name: 'productpage-v1-5d9f8b7c6-x2x4z', namespace: 'bookinfo', serviceAccount: 'bookinfo-productpage', labels: { app: 'productpage', version: 'v1', 'pod-template-hash': '5d9f8b7c6' } });
const reviews = workload({ name: 'reviews-v2', namespace: 'bookinfo', serviceAccount: 'bookinfo-reviews', labels: { app: 'reviews', version: 'v2', 'service.istio.io/canonical-name': 'reviews-canonical', 'app.kubernetes.io/version': '2.0' } });

const input = (over: Partial<RequestLabelInput> = {}): RequestLabelInput => ({
  reporter: 'waypoint',
  source: productpage,
  sourcePrincipal: productpage.identity,
  destination: reviews,
  destinationService: 'bookinfo/reviews',
  destinationPrincipal: reviews.identity,
  requestProtocol: 'http',
  responseCode: 200,
  grpcStatus: undefined,
  responseFlags: '-',
  mutualTls: true,
  clusterName: 'lab1',
  ...over,
});

test('labels() gives every request label, with values as Istio derives them', () => {
  const m = new RequestMetrics(new Registry());
  const labels = m.labels(input());
  assert.deepEqual(Object.keys(labels).sort(), [...REQUEST_LABELS].sort());
  assert.deepEqual(labels, {
    reporter: 'waypoint',
    source_workload: 'productpage-v1',
    source_workload_namespace: 'bookinfo',
    source_principal: 'spiffe://cluster.local/ns/bookinfo/sa/bookinfo-productpage',
    source_app: 'productpage',
    source_version: 'v1',
    source_canonical_service: 'productpage',
    source_canonical_revision: 'v1',
    source_cluster: 'lab1',
    destination_workload: 'reviews-v2',
    destination_workload_namespace: 'bookinfo',
    destination_principal: 'spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews',
    destination_app: 'reviews',
    destination_version: 'v2',
    destination_canonical_service: 'reviews-canonical',
    destination_canonical_revision: '2.0',
    destination_service: 'reviews.bookinfo.svc.cluster.local',
    destination_service_name: 'reviews',
    destination_service_namespace: 'bookinfo',
    destination_cluster: 'lab1',
    request_protocol: 'http',
    response_code: '200',
    grpc_response_status: '',
    response_flags: '-',
    connection_security_policy: 'mutual_tls',
  });
});

test('gRPC requests carry grpc_response_status; a failed upstream its response flag; unknown peers "unknown"', () => {
  const m = new RequestMetrics(new Registry());
  const grpc = m.labels(input({ requestProtocol: 'grpc', grpcStatus: '14', responseCode: 200 }));
  assert.equal(grpc.request_protocol, 'grpc');
  assert.equal(grpc.grpc_response_status, '14');
  const failed = m.labels(input({ source: undefined, sourcePrincipal: undefined, destination: undefined, destinationPrincipal: undefined, responseCode: 503, responseFlags: 'UF', mutualTls: false }));
  assert.equal(failed.response_code, '503');
  assert.equal(failed.response_flags, 'UF');
  assert.equal(failed.connection_security_policy, 'none');
  for (const k of ['source_workload', 'source_principal', 'source_canonical_service', 'source_canonical_revision', 'source_cluster', 'destination_workload', 'destination_canonical_service', 'destination_cluster'] as const) {
    assert.equal(failed[k], 'unknown', k);
  }
  assert.equal(failed.destination_service_name, 'reviews', 'the service is known without an endpoint');
  assert.equal(m.labels(input({ responseFlags: '' })).response_flags, '-', 'no flags is "-", as Envoy prints them');
});

test('observe() is what a scrape shows: the counter, and histograms with Istio\'s buckets', async () => {
  const registry = new Registry();
  const m = new RequestMetrics(registry);
  const labels = m.labels(input());
  m.observe(labels, 7, 120, 4096);
  m.observe(labels, 30, 0, 10);
  const text = await registry.metrics();
  const line = (name: string) => text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes('destination_workload="reviews-v2"'));
  assert.match(line('istio_requests_total') ?? '', / 2$/);
  assert.match(line('istio_request_duration_milliseconds_sum') ?? '', / 37$/);
  assert.match(line('istio_request_bytes_sum') ?? '', / 120$/);
  assert.match(line('istio_response_bytes_sum') ?? '', / 4106$/);
  const les = (name: string) => [...text.matchAll(new RegExp(`^${name}_bucket\\{[^}]*le="([^"]+)"`, 'gm'))].map((x) => x[1]);
  assert.deepEqual(les('istio_request_duration_milliseconds'), [...ISTIO_DURATION_BUCKETS_MS.map(String), '+Inf']);
  assert.deepEqual(les('istio_request_bytes'), [...ISTIO_SIZE_BUCKETS_BYTES.map(String), '+Inf']);
  assert.deepEqual(les('istio_response_bytes'), [...ISTIO_SIZE_BUCKETS_BYTES.map(String), '+Inf']);
  // 7 ms falls in the 10 ms bucket, 30 ms in the 50 ms one.
  const bucket = (le: string) => text.split('\n').find((l) => l.startsWith('istio_request_duration_milliseconds_bucket{') && l.includes(`le="${le}"`));
  assert.match(bucket('5') ?? '', / 0$/);
  assert.match(bucket('10') ?? '', / 1$/);
  assert.match(bucket('50') ?? '', / 2$/);
});
