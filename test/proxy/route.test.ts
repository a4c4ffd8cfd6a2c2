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


// ---------------------------------------------------------------------------------------------
// Waypoints (issue 11, point 2): a service bound to a waypoint is an HBONE route to one of the
// waypoint's pods, `:authority` the VIP and port, the waypoint's identity expected; never to the
// endpoints. The rows run against one model with every waypoint case in it.

const gateway = (namespace: string, name: string): ManifestObject =>
  ({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: { name, namespace }, spec: { gatewayClassName: 'weft-waypoint', listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }] } }) as ManifestObject;
const waypointPod = (name: string, ip: string, gatewayName: string): ManifestObject =>
  ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'shop', labels: { 'gateway.networking.k8s.io/gateway-name': gatewayName, 'weft.dev/mesh': 'disabled' } },
    spec: { nodeName: 'n2', serviceAccountName: gatewayName, containers: [{ name: 'waypoint' }] },
    status: { podIP: ip, phase: 'Running' },
  }) as ManifestObject;
const labelled = (o: ManifestObject, labels: Record<string, string>): ManifestObject => ({ ...o, metadata: { ...o.metadata, labels } }) as ManifestObject;

const waypointModel = buildModel([
  ns('shop', true),
  pod('shop', 'client', '198.18.217.2'),
  pod('shop', 'server', '198.18.217.3', { app: 'server' }),
  pod('shop', 'server-2', '198.18.217.4', { app: 'server' }),
  gateway('shop', 'waypoint'),
  waypointPod('waypoint-a', '198.18.218.10', 'waypoint'),
  waypointPod('waypoint-b', '198.18.218.11', 'waypoint'),
  gateway('shop', 'idle'),
  labelled(svc('shop', 'server', '198.19.200.1', { app: 'server' }), { 'weft.dev/use-waypoint': 'waypoint' }),
  labelled(svc('shop', 'down', '198.19.200.5', { app: 'server' }), { 'weft.dev/use-waypoint': 'idle' }),
  labelled(svc('shop', 'typo', '198.19.200.6', { app: 'server' }), { 'weft.dev/use-waypoint': 'waypoitn' }),
  labelled(svc('shop', 'empty', '198.19.200.7', { app: 'nobody' }), { 'weft.dev/use-waypoint': 'waypoint' }),
]);
const waypointClient = waypointModel.workloadByIp('198.18.217.2')!;
const waypointSource: RouteSource = { workload: waypointClient, pool: {} };
const wpIdentity = 'spiffe://cluster.local/ns/shop/sa/waypoint';

const waypointRows: Row[] = [
  { name: 'VIP of a waypointed service: HBONE to the waypoint pod, authority the VIP:port, the waypoint identity', to: '198.19.200.1:80', expect: { kind: 'hbone', reason: 'waypoint', upstream: '198.19.200.1:80', service: 'shop/server', workload: 'shop/waypoint-a', tunnel: '198.18.218.10:15008', authority: '198.19.200.1:80', expectedIdentity: wpIdentity } },
  { name: 'a waypointed service without ready endpoints still goes to the waypoint (it answers for them)', to: '198.19.200.7:80', expect: { kind: 'hbone', reason: 'waypoint', tunnel: '198.18.218.10:15008', authority: '198.19.200.7:80' } },
  { name: 'a pod IP of a waypointed service is not sent to the waypoint (routes bind to the Service frontend)', to: '198.18.217.3:9080', expect: { kind: 'hbone', reason: 'meshed-pod', workload: 'shop/server', tunnel: '198.18.217.3:15008', authority: '198.18.217.3:9080', expectedIdentity: identity('server') } },
  { name: 'a waypoint without a ready pod: refused with WEFT_ERR_WAYPOINT_UNAVAILABLE, never to the endpoints', to: '198.19.200.5:80', expect: { kind: 'refuse', reason: 'waypoint-unavailable', service: 'shop/down', workload: '', upstream: '198.19.200.5:80', error: 'WEFT_ERR_WAYPOINT_UNAVAILABLE' } },
  { name: 'a label naming no waypoint Gateway: refused the same way (fail closed)', to: '198.19.200.6:80', expect: { kind: 'refuse', reason: 'waypoint-unavailable', error: 'WEFT_ERR_WAYPOINT_UNAVAILABLE' } },
  { name: 'an agent without mTLS cannot reach a waypoint: refused, not sent in plaintext around it', to: '198.19.200.1:80', source: { workload: waypointClient, pool: undefined }, expect: { kind: 'refuse', reason: 'waypoint-unavailable', error: 'WEFT_ERR_WAYPOINT_UNAVAILABLE' } },
  { name: 'a port the waypointed service does not have: no endpoint, as without a waypoint', to: '198.19.200.1:81', expect: { kind: 'refuse', reason: 'no-ready-endpoint', error: 'WEFT_ERR_NO_ENDPOINT' } },
  { name: "a waypoint's own pod (were it captured) reaches the service it serves at L4, never itself again", to: '198.19.200.1:80', source: { workload: waypointModel.workloadByIp('198.18.218.10')!, pool: {} }, expect: { kind: 'hbone', reason: 'meshed-endpoint', upstream: '198.18.217.3:9080', workload: 'shop/server' } },
  { name: 'the listener reached without the redirect is a self call before any waypoint', to: '127.0.0.1:15001', via: { localAddress: '127.0.0.1', localPort: 15001 }, expect: { kind: 'refuse', reason: 'self-call' } },
];

for (const row of waypointRows) {
  test(`route (waypoint): ${row.name}`, () => {
    const got = view(decideRoute(waypointModel, row.source ?? waypointSource, dest(row.to), row.via ?? listener, first));
    const wanted = Object.fromEntries(Object.keys(row.expect).map((k) => [k, got[k as keyof Row['expect']]]));
    assert.deepEqual(wanted, row.expect);
  });
}

test('route (waypoint): the refusal says which waypoint and why', () => {
  const down = decideRoute(waypointModel, waypointSource, dest('198.19.200.5:80'), listener, first);
  assert.equal(down.kind, 'refuse');
  assert.match(down.kind === 'refuse' ? down.error.message : '', /service shop\/down uses waypoint shop\/idle, but it has no ready pod/);
  const typo = decideRoute(waypointModel, waypointSource, dest('198.19.200.6:80'), listener, first);
  assert.match(typo.kind === 'refuse' ? typo.error.message : '', /waypoint shop\/waypoitn, but it does not exist/);
});

test('route (waypoint): the picker chooses among the waypoint pods; a retry goes to another waypoint pod, never to an endpoint', () => {
  const offered: string[][] = [];
  const recording: EndpointPicker = { pick: (eps) => (offered.push(eps.map((e) => `${e.ip}:${e.port}`)), eps[0]) };
  const firstTry = decideRoute(waypointModel, waypointSource, dest('198.19.200.1:80'), listener, recording);
  assert.deepEqual(offered, [['198.18.218.10:15008', '198.18.218.11:15008']]);
  const second = retryRoute(firstTry, waypointSource, listener, first);
  assert.ok(second);
  assert.deepEqual(view(second), { kind: 'hbone', reason: 'waypoint', upstream: '198.19.200.1:80', service: 'shop/server', workload: 'shop/waypoint-b', tunnel: '198.18.218.11:15008', authority: '198.19.200.1:80', expectedIdentity: wpIdentity });
  assert.equal(retryRoute(second, waypointSource, listener, { pick: (eps) => eps.find((e) => e.ip === '198.18.218.11') }), undefined, 'the failed pod is not offered again');
});

test('route (waypoint): removing the label returns the service to L4 at the next decision', async () => {
  const { MeshStore } = await import('../../agent/discovery/store.js');
  const store = new MeshStore({ selectorEndpoints: true });
  const objects = [ns('shop', true), pod('shop', 'client', '198.18.217.2'), pod('shop', 'server', '198.18.217.3', { app: 'server' }), gateway('shop', 'waypoint'), waypointPod('waypoint-a', '198.18.218.10', 'waypoint')];
  for (const o of objects) store.upsertObject(o);
  store.upsertObject(labelled(svc('shop', 'server', '198.19.200.1', { app: 'server' }), { 'weft.dev/use-waypoint': 'waypoint' }));
  store.commit();
  const source: RouteSource = { workload: store.snapshot().workloadByIp('198.18.217.2')!, pool: {} };
  assert.equal(decideRoute(store.snapshot(), source, dest('198.19.200.1:80'), listener, first).reason, 'waypoint');
  store.upsertObject(svc('shop', 'server', '198.19.200.1', { app: 'server' }));
  store.commit();
  assert.equal(decideRoute(store.snapshot(), source, dest('198.19.200.1:80'), listener, first).reason, 'meshed-endpoint');
});
