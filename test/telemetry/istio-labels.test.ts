/**
 * The label sets of Weft's TCP and request metrics against Istio's standard metric reference,
 * and the derivations Istio specifies (canonical service and revision fallbacks, workload name,
 * connection_security_policy, TCP response flags). Pure, no root.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TCP_LABELS, tcpLabels } from '../../agent/telemetry/metrics.js';
import { REQUEST_LABELS } from '../../agent/telemetry/request-metrics.js';
import { ISTIO_METRICS_REFERENCE, canonicalRevision, canonicalService, connectionSecurityPolicy, istioWorkloadName } from '../../agent/telemetry/labels.js';
import { tcpResponseFlags } from '../../agent/telemetry/tcp-response-flags.js';
import { workload } from './fixtures.js';

/**
 * Istio's labels, as https://istio.io/latest/docs/reference/config/metrics/ lists them
 * ("Labels": Reporter ... gRPC Response Status), written out here so that the test does not
 * read them from the code it checks. Response Code and gRPC Response Status are "present only
 * on HTTP/gRPC metrics"; the rest are on every metric, TCP included.
 */
const ISTIO_LABELS_EVERY_METRIC = [
  'reporter',
  'source_workload',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'destination_workload',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_service',
  'destination_service_name',
  'destination_service_namespace',
  'request_protocol',
  'connection_security_policy',
  'response_flags',
  // "Canonical Service": a name and a revision, for both peers.
  'source_canonical_service',
  'source_canonical_revision',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_cluster',
  'source_cluster',
];
const ISTIO_LABELS_HTTP_ONLY = ['response_code', 'grpc_response_status'];

test('the reference this test was written against', () => {
  assert.equal(ISTIO_METRICS_REFERENCE, 'https://istio.io/latest/docs/reference/config/metrics/');
});

test('TCP metrics carry exactly the labels Istio puts on its TCP metrics', () => {
  assert.deepEqual([...TCP_LABELS].sort(), [...ISTIO_LABELS_EVERY_METRIC].sort());
});

test('request metrics carry exactly the labels Istio puts on its HTTP/gRPC metrics', () => {
  assert.deepEqual([...REQUEST_LABELS].sort(), [...ISTIO_LABELS_EVERY_METRIC, ...ISTIO_LABELS_HTTP_ONLY].sort());
});

test('canonical service and revision follow Istio\'s fallbacks', () => {
  const table: [Record<string, string>, string, string][] = [
    [{ 'service.istio.io/canonical-name': 'c', 'app.kubernetes.io/name': 'k', app: 'a', 'service.istio.io/canonical-revision': 'r', 'app.kubernetes.io/version': 'kv', version: 'v' }, 'c', 'r'],
    [{ 'app.kubernetes.io/name': 'k', app: 'a', 'app.kubernetes.io/version': 'kv', version: 'v' }, 'k', 'kv'],
    [{ app: 'a', version: 'v' }, 'a', 'v'],
    // Neither: the workload name, and Istio's literal "latest".
    [{}, 'pod-1', 'latest'],
  ];
  for (const [labels, service, revision] of table) {
    const w = workload({ name: 'pod-1', namespace: 'ns', labels });
    assert.equal(canonicalService(w), service, JSON.stringify(labels));
    assert.equal(canonicalRevision(w), revision, JSON.stringify(labels));
  }
});

test('the workload name is the Deployment of a Deployment\'s pod, else the pod name (not the app label)', () => {
  assert.equal(istioWorkloadName(workload({ name: 'reviews-v2-7f9c8d6b5-abcde', namespace: 'ns', labels: { app: 'reviews', 'pod-template-hash': '7f9c8d6b5' } })), 'reviews-v2');
  assert.equal(istioWorkloadName(workload({ name: 'reviews-v2', namespace: 'ns', labels: { app: 'reviews' } })), 'reviews-v2');
  // A hash label that the name does not carry says nothing about the name.
  assert.equal(istioWorkloadName(workload({ name: 'odd', namespace: 'ns', labels: { 'pod-template-hash': 'abc' } })), 'odd');
  // No canonical label: the canonical service is the Deployment name too.
  assert.equal(canonicalService(workload({ name: 'web-5d9f8-x1', namespace: 'ns', labels: { 'pod-template-hash': '5d9f8' } })), 'web');
});

test('connection_security_policy: mutual_tls, none where the receiver saw plaintext, unknown at a plaintext source', () => {
  assert.equal(connectionSecurityPolicy('destination', true), 'mutual_tls');
  assert.equal(connectionSecurityPolicy('source', true), 'mutual_tls');
  assert.equal(connectionSecurityPolicy('waypoint', true), 'mutual_tls');
  assert.equal(connectionSecurityPolicy('destination', false), 'none');
  assert.equal(connectionSecurityPolicy('waypoint', false), 'none');
  assert.equal(connectionSecurityPolicy('source', false), 'unknown');
});

test('TCP response flags: UF on a failed connect, UH without an endpoint, DENY by policy, - otherwise', () => {
  const end = (errorCode: string | undefined, error?: string, bytesToClient = 0) => tcpResponseFlags({ errorCode, error, bytesToClient });
  assert.equal(end(undefined), '-');
  for (const code of ['ECONNREFUSED', 'EHOSTUNREACH', 'ETIMEDOUT', 'WEFT_ERR_CONNECT_TIMEOUT', 'WEFT_ERR_HBONE_CONNECT', 'WEFT_ERR_TLS_PEER_IDENTITY']) assert.equal(end(code), 'UF', code);
  assert.equal(end('WEFT_ERR_HBONE_REFUSED', 'CONNECT 198.18.128.3:9080 answered 503'), 'UF');
  assert.equal(end('WEFT_ERR_HBONE_REFUSED', 'CONNECT 198.18.128.3:9080 answered 403'), 'DENY');
  assert.equal(end('WEFT_ERR_POLICY_DENIED', 'denied: no ALLOW policy matched'), 'DENY');
  assert.equal(end('WEFT_ERR_NO_ENDPOINT'), 'UH');
  // A reset after the upstream answered is not a connect failure.
  assert.equal(end('ECONNRESET', 'read ECONNRESET', 100), '-');
  assert.equal(end('ETIMEDOUT', 'read ETIMEDOUT', 100), '-');
});

test('tcpLabels: every label set, request_protocol tcp, flags "-" unless given', () => {
  const client = workload({ name: 'client', namespace: 'shop', labels: { app: 'client', version: 'v1' } });
  const server = workload({ name: 'server-6c4b9-zz9zz', namespace: 'shop', labels: { app: 'server', 'pod-template-hash': '6c4b9', 'app.kubernetes.io/version': '1.2' } });
  const labels = tcpLabels({ reporter: 'destination', source: client, sourcePrincipal: client.identity, destination: server, destinationService: undefined, mutualTls: true, clusterName: 'c1' });
  assert.deepEqual(Object.keys(labels).sort(), [...ISTIO_LABELS_EVERY_METRIC].sort());
  for (const [k, v] of Object.entries(labels)) assert.ok(v !== '', `${k} is set`);
  assert.equal(labels.request_protocol, 'tcp');
  assert.equal(labels.response_flags, '-');
  assert.equal(labels.destination_workload, 'server');
  assert.equal(labels.destination_canonical_service, 'server');
  assert.equal(labels.destination_canonical_revision, '1.2');
  assert.equal(labels.destination_version, 'unknown', 'the version label is the `version` label alone');
  assert.equal(labels.source_cluster, 'c1');
  assert.equal(tcpLabels({ reporter: 'source', source: client, sourcePrincipal: undefined, destination: undefined, destinationService: undefined, mutualTls: false, clusterName: 'c1', responseFlags: 'UF' }).response_flags, 'UF');
});
