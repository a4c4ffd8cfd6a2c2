/**
 * The outbound route decision (agent/proxy/route.ts), table-driven and without root: the model
 * is built from manifests in memory, the load balancer is a fixed picker, the listener an
 * address. Each row is one case of issue 11's list.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildModel } from '../../agent/discovery/model.js';
import type { Endpoint, ManifestObject } from '../../agent/discovery/types.js';
import { decideRoute, retryRoute, type EndpointPicker, type ListenerAddress, type RouteDecision, type RouteSource } from '../../agent/proxy/route.js';

const ns = (name: string, meshed: boolean): ManifestObject => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, ...(meshed ? { labels: { 'weft.dev/mesh': 'enabled' } } : {}) } });
const pod = (namespace: string, name: string, ip: string, labels: Record<string, string> = { app: name }): ManifestObject =>
  ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace, labels }, spec: { nodeName: 'n1', serviceAccountName: name, containers: [{ name: 'main' }] }, status: { podIP: ip, phase: 'Running' } }) as ManifestObject;
const svc = (namespace: string, name: string, clusterIP: string, selector: Record<string, string> | undefined, port = 80, targetPort = 9080): ManifestObject =>
  ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace }, spec: { clusterIP, ...(selector ? { selector } : {}), ports: [{ port, targetPort }] } }) as ManifestObject;
const slice = (namespace: string, service: string, port: number, addresses: string[]): ManifestObject =>
  ({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `${service}-1`, namespace, labels: { 'kubernetes.io/service-name': service } },
    addressType: 'IPv4',
    ports: [{ name: '', port, protocol: 'TCP' }],
    endpoints: addresses.map((a) => ({ addresses: [a], conditions: { ready: true } })),
  }) as unknown as ManifestObject;

const model = buildModel([
  ns('shop', true),
  ns('legacy', false),
  pod('shop', 'client', '198.18.217.2'),
  pod('shop', 'server', '198.18.217.3', { app: 'server' }),
  pod('shop', 'server-2', '198.18.217.4', { app: 'server' }),
  pod('legacy', 'old', '198.18.217.9'),
  svc('shop', 'server', '198.19.200.1', { app: 'server' }),
  svc('shop', 'nobody', '198.19.200.2', { app: 'nobody' }),
  svc('shop', 'external-db', '198.19.200.3', undefined, 5432, 5432),
  slice('shop', 'external-db', 5432, ['203.0.113.7']),
  svc('legacy', 'old', '198.19.200.4', { app: 'old' }),
]);

const client = model.workloadByIp('198.18.217.2')!;
const meshedSource: RouteSource = { workload: client, pool: {} };
const plainSource: RouteSource = { workload: client, pool: undefined };
/** The outbound listener: connections arrive there through the redirect. */
const listener: ListenerAddress = { localAddress: '198.18.217.2', localPort: 15001 };
/** Always the first endpoint offered: the decision is deterministic. */
const first: EndpointPicker = { pick: (endpoints: readonly Endpoint[]) => endpoints[0] };
const identity = (w: string) => `spiffe://cluster.local/ns/shop/sa/${w}`;

interface Row {
  name: string;
  to: string;
  source?: RouteSource;
  via?: ListenerAddress;
  expect: Partial<{ kind: string; reason: string; upstream: string; service: string; workload: string; tunnel: string; authority: string; expectedIdentity: string; error: string }>;
}

const rows: Row[] = [
  { name: 'service VIP with endpoints: HBONE to the endpoint pod', to: '198.19.200.1:80', expect: { kind: 'hbone', reason: 'meshed-endpoint', upstream: '198.18.217.3:9080', service: 'shop/server', workload: 'shop/server', tunnel: '198.18.217.3:15008', authority: '198.18.217.3:9080', expectedIdentity: identity('server') } },
  { name: 'service VIP without ready endpoints: refused', to: '198.19.200.2:80', expect: { kind: 'refuse', reason: 'no-ready-endpoint', service: 'shop/nobody', error: 'WEFT_ERR_NO_ENDPOINT' } },
  { name: 'service VIP on a port it does not have: no endpoint, refused', to: '198.19.200.1:81', expect: { kind: 'refuse', reason: 'no-ready-endpoint', error: 'WEFT_ERR_NO_ENDPOINT' } },
  { name: 'selectorless endpoint that is not a pod: direct', to: '198.19.200.3:5432', expect: { kind: 'direct', reason: 'endpoint-not-a-pod', upstream: '203.0.113.7:5432', service: 'shop/external-db', workload: '' } },
  { name: 'service of pods outside the mesh: direct to the endpoint', to: '198.19.200.4:80', expect: { kind: 'direct', reason: 'endpoint-not-meshed', upstream: '198.18.217.9:9080', workload: 'legacy/old' } },
  { name: 'a meshed pod by IP: HBONE, authority the pod and port', to: '198.18.217.4:8080', expect: { kind: 'hbone', reason: 'meshed-pod', upstream: '198.18.217.4:8080', service: '', workload: 'shop/server-2', tunnel: '198.18.217.4:15008', authority: '198.18.217.4:8080', expectedIdentity: identity('server-2') } },
  { name: 'an un-meshed pod by IP: direct', to: '198.18.217.9:9080', expect: { kind: 'direct', reason: 'pod-not-meshed', upstream: '198.18.217.9:9080', workload: 'legacy/old' } },
  { name: 'an address outside the cluster: direct passthrough', to: '198.51.100.1:443', expect: { kind: 'direct', reason: 'passthrough', upstream: '198.51.100.1:443', workload: '' } },
  { name: 'a meshed pod from an agent without mTLS: direct', to: '198.18.217.4:8080', source: plainSource, expect: { kind: 'direct', reason: 'no-mtls' } },
  { name: "a meshed pod's HBONE port: self call", to: '198.18.217.3:15008', expect: { kind: 'refuse', reason: 'self-call', error: 'WEFT_ERR_SELF_CALL' } },
  { name: "a meshed pod's outbound port: self call", to: '198.18.217.3:15001', expect: { kind: 'refuse', reason: 'self-call', error: 'WEFT_ERR_SELF_CALL' } },
  { name: "a meshed pod's inbound plaintext port, without mTLS too: self call", to: '198.18.217.3:15006', source: plainSource, expect: { kind: 'refuse', reason: 'self-call', error: 'WEFT_ERR_SELF_CALL' } },
  { name: "an un-meshed pod's 15008 is its own business: direct", to: '198.18.217.9:15008', expect: { kind: 'direct', reason: 'pod-not-meshed' } },
  { name: "the pod's own IP: HBONE to itself (hairpin)", to: '198.18.217.2:9080', expect: { kind: 'hbone', reason: 'meshed-pod', workload: 'shop/client', tunnel: '198.18.217.2:15008', expectedIdentity: identity('client') } },
  { name: "the pod's own IP on an agent port: self call", to: '198.18.217.2:15006', expect: { kind: 'refuse', reason: 'self-call', error: 'WEFT_ERR_SELF_CALL' } },
  { name: 'the listener itself, reached without the redirect: self call', to: '127.0.0.1:15001', via: { localAddress: '127.0.0.1', localPort: 15001 }, expect: { kind: 'refuse', reason: 'self-call', error: 'WEFT_ERR_SELF_CALL' } },
];

function view(r: RouteDecision): Row['expect'] {
  return {
    kind: r.kind,
    reason: r.reason,
    upstream: `${r.upstreamIp}:${r.upstreamPort}`,
    service: r.service?.key ?? '',
    workload: r.workload?.key ?? '',
    ...(r.kind === 'hbone' ? { tunnel: `${r.tunnelHost}:${r.tunnelPort}`, authority: r.authority, expectedIdentity: r.expectedIdentity } : {}),
    ...(r.kind === 'refuse' ? { error: r.error.code } : {}),
  };
}

function dest(to: string): { address: string; port: number } {
  const at = to.lastIndexOf(':');
  return { address: to.slice(0, at), port: Number(to.slice(at + 1)) };
}

for (const row of rows) {
  test(`route: ${row.name}`, () => {
    const got = view(decideRoute(model, row.source ?? meshedSource, dest(row.to), row.via ?? listener, first));
    const wanted = Object.fromEntries(Object.keys(row.expect).map((k) => [k, got[k as keyof Row['expect']]]));
    assert.deepEqual(wanted, row.expect);
  });
}

test('route: every decision says it carries TCP (the protocol hint the waypoint will refine)', () => {
  for (const row of rows) assert.equal(decideRoute(model, row.source ?? meshedSource, dest(row.to), row.via ?? listener, first).protocol, 'tcp');
});

test('retry: after a failed endpoint, another ready endpoint of the same service; none when it was the only one or no service', () => {
  const firstTry = decideRoute(model, meshedSource, dest('198.19.200.1:80'), listener, first);
  assert.equal(firstTry.upstreamIp, '198.18.217.3');
  const second = retryRoute(firstTry, meshedSource, listener, first);
  assert.ok(second);
  assert.deepEqual(view(second), { kind: 'hbone', reason: 'meshed-endpoint', upstream: '198.18.217.4:9080', service: 'shop/server', workload: 'shop/server-2', tunnel: '198.18.217.4:15008', authority: '198.18.217.4:9080', expectedIdentity: identity('server-2') });
  // The retry is offered only the endpoints that did not fail.
  const offered: string[][] = [];
  retryRoute(firstTry, meshedSource, listener, { pick: (eps) => (offered.push(eps.map((e) => `${e.ip}:${e.port}`)), eps[0]) });
  assert.deepEqual(offered, [['198.18.217.4:9080']]);
  const onlyOne = decideRoute(model, meshedSource, dest('198.19.200.3:5432'), listener, first);
  assert.equal(retryRoute(onlyOne, meshedSource, listener, first), undefined);
  const byIp = decideRoute(model, meshedSource, dest('198.18.217.4:8080'), listener, first);
  assert.equal(retryRoute(byIp, meshedSource, listener, first), undefined);
});

