/**
 * The dashboard's graph (agent/dashboard/graph.ts) and details (details.ts), from hand-made
 * PromQL samples shaped as the agents' and the waypoint's series are: which nodes and edges,
 * which reporter's numbers, HTTP and TCP told apart, mTLS per edge, denials, filters.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EDGE_LABELS, appId, buildGraph, namespaceId, parseWindow, serviceId, workloadId, type GraphInput, type Sample } from '../../agent/dashboard/graph.js';
import { edgeDetails, gatewayKeys, nodeDetails } from '../../agent/dashboard/details.js';
import { graphQueries } from '../../agent/dashboard/queries.js';
import type { AgentDump } from '../../agent/dashboard/sources.js';
import type { ManifestObject } from '../../agent/discovery/types.js';

function series(reporter: string, src: [string, string, string] | undefined, dst: [string, string, string] | undefined, extra: Record<string, string> = {}): Record<string, string> {
  const m: Record<string, string> = { reporter, request_protocol: 'tcp', connection_security_policy: 'mutual_tls' };
  const put = (prefix: string, side: [string, string, string] | undefined): void => {
    m[`${prefix}_workload`] = side?.[1] ?? 'unknown';
    m[`${prefix}_workload_namespace`] = side?.[0] ?? 'unknown';
    m[`${prefix}_app`] = side?.[1] ?? 'unknown';
    m[`${prefix}_version`] = side?.[2] ?? 'unknown';
    m[`${prefix}_principal`] = side ? `spiffe://cluster.local/ns/${side[0]}/sa/${side[1]}` : 'unknown';
  };
  put('source', src);
  put('destination', dst);
  if (dst) {
    m['destination_service_name'] = dst[1];
    m['destination_service_namespace'] = dst[0];
  }
  return { ...m, ...extra };
}

const s = (metric: Record<string, string>, value: number): Sample => ({ metric, value });

function input(parts: Partial<GraphInput>): GraphInput {
  return {
    windowSeconds: 60,
    tcpSentBytesRate: [],
    tcpReceivedBytesRate: [],
    tcpOpened: [],
    tcpOpenedTotal: [],
    tcpDenied: [],
    requests: [],
    requestsTotal: [],
    requestP99Ms: [],
    waypoints: new Set(),
    gateways: new Set(),
    ...parts,
  };
}

const PP: [string, string, string] = ['default', 'productpage', 'v1'];
const DETAILS: [string, string, string] = ['default', 'details', 'v1'];
const REVIEWS2: [string, string, string] = ['default', 'reviews', 'v2'];
const REVIEWS3: [string, string, string] = ['default', 'reviews', 'v3'];
const CLIENT: [string, string, string] = ['outside', 'client', 'unknown'];

test('both agents report a connection: one edge, with the destination agent\'s numbers, bytes both ways summed', () => {
  const g = buildGraph(
    input({
      tcpSentBytesRate: [s(series('destination', PP, DETAILS), 100), s(series('source', PP, DETAILS), 999)],
      tcpReceivedBytesRate: [s(series('destination', PP, DETAILS), 20), s(series('source', PP, DETAILS), 999)],
      tcpOpened: [s(series('destination', PP, DETAILS), 12), s(series('source', PP, DETAILS), 13)],
      tcpOpenedTotal: [s(series('destination', PP, DETAILS), 40), s(series('source', PP, DETAILS), 41)],
    }),
  );
  assert.equal(g.edges.length, 1);
  const e = g.edges[0]!;
  assert.equal(e.source, workloadId('default', 'productpage', 'v1'));
  assert.equal(e.target, workloadId('default', 'details', 'v1'));
  assert.equal(e.protocol, 'tcp');
  assert.equal(e.reporter, 'destination');
  assert.equal(e.bytesPerSecond, 120);
  assert.equal(e.connections, 12);
  assert.equal(e.connectionsPerSecond, 12 / 60);
  assert.equal(e.connectionsTotal, 40);
  assert.equal(e.mtls, 'mutual_tls');
  assert.equal(e.service, 'default/details');
  // The service is a node joined to the workload its traffic reached, not a hop of the edge.
  assert.deepEqual(g.members, [{ service: serviceId('default', 'details'), workload: e.target }]);
});

test('the destination agent of an HBONE connection does not know the service: still one edge, counted once, with the service from the source agent', () => {
  // As the lab's agents report it: destination_service_name "unknown" on the destination side.
  const dst = series('destination', PP, DETAILS, { destination_service_name: 'unknown', destination_service_namespace: 'default' });
  const g = buildGraph(input({ tcpOpenedTotal: [s(series('source', PP, DETAILS), 20), s(dst, 20)] }));
  assert.equal(g.edges.length, 1);
  assert.equal(g.edges[0]!.connectionsTotal, 20);
  assert.equal(g.edges[0]!.reporter, 'destination');
  assert.equal(g.edges[0]!.service, 'default/details');
});

test('workloads are grouped: namespace contains app contains one workload node per version', () => {
  const g = buildGraph(input({ tcpOpened: [s(series('destination', PP, REVIEWS2), 1), s(series('destination', PP, REVIEWS3), 1)] }));
  const byId = new Map(g.nodes.map((n) => [n.id, n]));
  const v2 = byId.get(workloadId('default', 'reviews', 'v2'))!;
  const v3 = byId.get(workloadId('default', 'reviews', 'v3'))!;
  assert.equal(v2.parent, appId('default', 'reviews'));
  assert.equal(v3.parent, appId('default', 'reviews'));
  assert.equal(byId.get(appId('default', 'reviews'))?.parent, namespaceId('default'));
  assert.equal(v2.label, 'reviews v2');
  assert.equal(v2.principal, 'spiffe://cluster.local/ns/default/sa/reviews');
  assert.equal(g.edges.length, 2);
});

test('canonical service and revision win over app and version, as in Istio', () => {
  const m = series('destination', PP, DETAILS, { destination_canonical_service: 'details-svc', destination_canonical_revision: 'r7' });
  const g = buildGraph(input({ tcpOpened: [s(m, 1)] }));
  assert.ok(g.nodes.some((n) => n.id === workloadId('default', 'details', 'r7') && n.app === 'details-svc' && n.parent === appId('default', 'details-svc')));
  // Istio's revision of an unversioned workload is `latest`: kept in the id, not in the label.
  const client = buildGraph(input({ tcpOpened: [s(series('destination', CLIENT, PP, { source_canonical_revision: 'latest' }), 1)] })).nodes.find((n) => n.workload === 'client')!;
  assert.equal(client.id, workloadId('outside', 'client', 'latest'));
  assert.equal(client.label, 'client');
});

test('a destination outside the mesh is reported by the source only; a destination known only as a service is the service node', () => {
  const plain = series('source', PP, undefined, { connection_security_policy: 'none', destination_service_name: 'legacy', destination_service_namespace: 'other' });
  const g = buildGraph(input({ tcpSentBytesRate: [s(plain, 50)] }));
  assert.equal(g.edges.length, 1);
  assert.equal(g.edges[0]!.target, serviceId('other', 'legacy'));
  assert.equal(g.edges[0]!.reporter, 'source');
  assert.equal(g.edges[0]!.mtls, 'none');
  assert.deepEqual(g.members, []);
});

test('a client outside the mesh: only the destination reports, plaintext; an unknown source is one "unknown" node', () => {
  const fromClient = series('destination', CLIENT, PP, { connection_security_policy: 'none' });
  const fromNobody = series('destination', undefined, PP, { connection_security_policy: 'none' });
  const g = buildGraph(input({ tcpOpened: [s(fromClient, 5), s(fromNobody, 2)] }));
  const client = g.nodes.find((n) => n.workload === 'client')!;
  assert.equal(client.id, workloadId('outside', 'client'));
  assert.equal(client.label, 'client');
  assert.ok(g.nodes.some((n) => n.id === 'unknown' && n.kind === 'unknown'));
  assert.deepEqual(g.edges.map((e) => [e.source, e.mtls]).sort(), [[client.id, 'none'], ['unknown', 'none']].sort());
});

test('mutual TLS and plaintext on one pair in the window is "mixed"', () => {
  const g = buildGraph(input({ tcpOpened: [s(series('destination', PP, DETAILS), 3), s(series('destination', PP, DETAILS, { connection_security_policy: 'none' }), 1)] }));
  assert.equal(g.edges[0]!.mtls, 'mixed');
  assert.equal(g.edges[0]!.connections, 4);
});

test('HTTP edges (the waypoint\'s request metrics) and TCP edges of one pair are two edges; error rate from 5xx, p99 from the histogram query', () => {
  const http = (code: string): Record<string, string> => series('waypoint', PP, REVIEWS2, { request_protocol: 'http', response_code: code });
  const g = buildGraph(
    input({
      tcpOpened: [s(series('destination', PP, REVIEWS2), 2)],
      requests: [s(http('200'), 90), s(http('503'), 6), s(http('404'), 4)],
      requestsTotal: [s(series('waypoint', PP, REVIEWS2, { request_protocol: 'http' }), 500)],
      requestP99Ms: [s(series('waypoint', PP, REVIEWS2, { request_protocol: 'http' }), 42.5), s(series('waypoint', PP, REVIEWS2, { request_protocol: 'http', connection_security_policy: 'none' }), Number.NaN)],
    }),
  );
  assert.deepEqual(g.edges.map((e) => e.protocol).sort(), ['http', 'tcp']);
  const h = g.edges.find((e) => e.protocol === 'http')!;
  assert.notEqual(h.id, g.edges.find((e) => e.protocol === 'tcp')!.id);
  assert.equal(h.requests, 100);
  assert.equal(h.requestsPerSecond, 100 / 60);
  assert.equal(h.requestsTotal, 500);
  assert.equal(h.errorRate, 0.06);
  assert.equal(h.p99Ms, 42.5);
  // A NaN quantile (no data for that series) is no data, not a mixed-mTLS edge.
  assert.equal(h.mtls, 'mutual_tls');
});

test('gRPC: a non-OK grpc status is an error even with HTTP 200', () => {
  const m = (st: string): Record<string, string> => series('waypoint', PP, DETAILS, { request_protocol: 'grpc', response_code: '200', grpc_response_status: st });
  const g = buildGraph(input({ requests: [s(m('0'), 3), s(m('14'), 1)] }));
  assert.equal(g.edges[0]!.protocol, 'grpc');
  assert.equal(g.edges[0]!.errorRate, 0.25);
});

test('denied connections (closes with response_flags DENY) are counted on their edge', () => {
  const g = buildGraph(input({ tcpOpened: [s(series('destination', CLIENT, DETAILS, { connection_security_policy: 'none' }), 3)], tcpDenied: [s(series('destination', CLIENT, DETAILS, { connection_security_policy: 'none', response_flags: 'DENY' }), 3)] }));
  assert.equal(g.edges.length, 1);
  assert.equal(g.edges[0]!.denied, 3);
});

test('waypoints and gateways are their own kinds, outside any app', () => {
  const g = buildGraph(input({ tcpOpened: [s(series('destination', PP, ['default', 'bookinfo-waypoint', 'unknown']), 1), s(series('destination', ['edge', 'public-gw', 'unknown'], PP), 1)], waypoints: new Set(['default/bookinfo-waypoint']), gateways: new Set(['edge/public-gw']) }));
  const wp = g.nodes.find((n) => n.workload === 'bookinfo-waypoint')!;
  const gw = g.nodes.find((n) => n.workload === 'public-gw')!;
  assert.equal(wp.kind, 'waypoint');
  assert.equal(wp.parent, namespaceId('default'));
  assert.equal(gw.kind, 'gateway');
});

test('the namespace filter keeps edges that touch a chosen namespace', () => {
  const all = input({ tcpOpened: [s(series('destination', CLIENT, PP), 1), s(series('destination', PP, DETAILS), 1), s(series('destination', ['other', 'a', 'v1'], ['other', 'b', 'v1']), 1)] });
  assert.equal(buildGraph(all).edges.length, 3);
  const outside = buildGraph({ ...all, namespaces: ['outside'] });
  assert.deepEqual(outside.edges.map((e) => e.target), [workloadId('default', 'productpage', 'v1')]);
  assert.equal(buildGraph({ ...all, namespaces: ['other'] }).edges.length, 1);
  assert.ok(!buildGraph({ ...all, namespaces: ['other'] }).nodes.some((n) => n.namespace === 'default'));
});

test('windows: 30s .. 24h in PromQL syntax; the queries use the window in seconds', () => {
  assert.equal(parseWindow('30s'), 30);
  assert.equal(parseWindow('5m'), 300);
  assert.equal(parseWindow('1h'), 3600);
  assert.equal(parseWindow('5s'), undefined);
  assert.equal(parseWindow('2d'), undefined);
  assert.equal(parseWindow('1m; drop'), undefined);
  const q = graphQueries(300);
  assert.equal(q.tcpOpened, `sum by (${EDGE_LABELS.join(', ')}) (((istio_tcp_connections_opened_total + 0) unless (istio_tcp_connections_opened_total offset 300s)) or increase(istio_tcp_connections_opened_total[300s]))`);
  assert.match(q.tcpSentBytesRate, / \/ 300$/);
  assert.match(q.tcpDenied, /response_flags="DENY"/);
  assert.match(q.requestP99Ms, /^histogram_quantile\(0\.99, sum by \(.*, le\) \(rate\(istio_request_duration_milliseconds_bucket\[300s\]\)\)\)$/);
});

const DUMPS: AgentDump[] = [
  {
    agent: 'node node-1',
    dump: {
      node: 'node-1',
      workloads: [
        { key: 'default/reviews-v2', name: 'reviews-v2', namespace: 'default', node: 'node-1', ip: '198.18.0.5', identity: 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews', inMesh: true, captured: true, certExpiry: '2030-01-01T00:00:00.000Z', labels: { app: 'reviews', version: 'v2' } },
        { key: 'default/reviews-v3', name: 'reviews-v3', namespace: 'default', node: 'node-1', ip: '198.18.0.6', identity: 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews', inMesh: true, captured: true, labels: { app: 'reviews', version: 'v3' } },
      ],
      policies: [
        { kind: 'AuthorizationPolicy', namespace: 'default', name: 'reviews-v2-only', action: 'ALLOW', scope: 'app=reviews,version=v2' },
        { kind: 'PeerAuthentication', namespace: 'default', name: 'strict', action: 'STRICT', scope: 'namespace' },
        { kind: 'AuthorizationPolicy', namespace: 'other', name: 'elsewhere', action: 'DENY', scope: 'namespace' },
      ],
    },
  },
  // The other agent knows the pod too but does not capture it: its view has no certificate.
  { agent: 'node node-2', dump: { workloads: [{ key: 'default/reviews-v2', name: 'reviews-v2', namespace: 'default', node: 'node-1', ip: '198.18.0.5', identity: 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews', inMesh: true, captured: false }] } },
  { agent: 'node node-3', error: 'cannot reach' },
];

const ROUTE = {
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'HTTPRoute',
  metadata: { name: 'reviews-split', namespace: 'default' },
  spec: { parentRefs: [{ kind: 'Service', name: 'reviews' }], rules: [{ backendRefs: [{ name: 'reviews-v2', port: 9080 }] }] },
} as unknown as ManifestObject;

test('details of a workload: its pods with the capturing agent\'s certificate expiry, the policies that select it, its routes and top callers', () => {
  const g = buildGraph(input({ tcpSentBytesRate: [s(series('destination', PP, REVIEWS2), 500), s(series('destination', DETAILS, REVIEWS2), 50)] }));
  const d = nodeDetails(workloadId('default', 'reviews', 'v2'), { graph: g, dumps: DUMPS, objects: [ROUTE] })!;
  assert.deepEqual(d.pods.map((p) => [p.name, p.certExpiry]), [['reviews-v2', '2030-01-01T00:00:00.000Z']]);
  assert.deepEqual(d.identities, ['spiffe://cluster.local/ns/default/sa/bookinfo-reviews', 'spiffe://cluster.local/ns/default/sa/reviews']);
  assert.deepEqual(d.policies.map((p) => p.name), ['reviews-v2-only', 'strict']);
  assert.deepEqual(d.routes.map((r) => [r.name, r.parents, r.backends]), [['reviews-split', ['Service default/reviews'], ['Service default/reviews-v2']]]);
  assert.deepEqual(d.topCallers.map((c) => [c.label, c.perSecond]), [['productpage v1', 500], ['details v1', 50]]);
  assert.deepEqual(d.services, [serviceId('default', 'reviews')]);
  // reviews v3 is not selected by the v2-only policy.
  const g3 = buildGraph(input({ tcpOpened: [s(series('destination', PP, REVIEWS3), 1)] }));
  assert.deepEqual(nodeDetails(workloadId('default', 'reviews', 'v3'), { graph: g3, dumps: DUMPS, objects: [] })!.policies.map((p) => p.name), ['strict']);
});

test('details of an edge: both ends and the routes of its service; unknown ids are undefined', () => {
  const g = buildGraph(input({ tcpOpened: [s(series('destination', PP, REVIEWS2), 1)] }));
  const d = edgeDetails(g.edges[0]!.id, { graph: g, dumps: DUMPS, objects: [ROUTE] })!;
  assert.equal(d.source.node.workload, 'productpage');
  assert.equal(d.target.pods[0]?.name, 'reviews-v2');
  assert.deepEqual(d.routes.map((r) => r.name), ['reviews-split']);
  assert.equal(edgeDetails('tcp:nope->nada', { graph: g, dumps: DUMPS, objects: [] }), undefined);
  assert.equal(nodeDetails('wl:nope/x', { graph: g, dumps: DUMPS, objects: [] }), undefined);
});

test('gateway keys: class weft-waypoint is a waypoint, any other class a gateway', () => {
  const gw = (name: string, cls: string) => ({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: { name, namespace: 'default' }, spec: { gatewayClassName: cls } }) as unknown as ManifestObject;
  const k = gatewayKeys([gw('wp', 'weft-waypoint'), gw('public', 'weft'), ROUTE], 'weft-waypoint');
  assert.deepEqual([...k.waypoints], ['default/wp']);
  assert.deepEqual([...k.gateways], ['default/public']);
});
