/**
 * `weft dashboard`'s server in-process against a stand-in Prometheus on loopback (a real HTTP
 * server answering /api/v1/query as Prometheus does): the graph API, the details API from the
 * agents' dumps, the static UI, bad input, and the last good graph when Prometheus fails.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startDashboard, type Dashboard } from '../../agent/dashboard/server.js';
import { prometheusOnlySources, parsePrometheusAnswer, type DashboardSources } from '../../agent/dashboard/sources.js';
import { workloadId } from '../../agent/dashboard/graph.js';
import { silentLogger } from '../../agent/log.js';

const seen: string[] = [];
let failing = false;
const labels = {
  reporter: 'destination',
  request_protocol: 'tcp',
  connection_security_policy: 'mutual_tls',
  source_workload: 'productpage',
  source_workload_namespace: 'default',
  source_version: 'v1',
  destination_workload: 'details',
  destination_workload_namespace: 'default',
  destination_version: 'v1',
  destination_service_name: 'details',
  destination_service_namespace: 'default',
};

const prometheus = http.createServer((req, res) => {
  const query = new URL(req.url ?? '/', 'http://p').searchParams.get('query') ?? '';
  seen.push(query);
  if (failing) {
    res.writeHead(503).end('down for maintenance');
    return;
  }
  const value = query.includes('istio_tcp_connections_opened_total') ? '7' : query.includes('istio_tcp_') ? '100' : undefined;
  const result = value === undefined ? [] : [{ metric: labels, value: [Date.now() / 1000, value] }];
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'success', data: { resultType: 'vector', result } }));
});

let dashboard: Dashboard;
let base: string;

before(async () => {
  await new Promise<void>((r) => prometheus.listen(0, '127.0.0.1', r));
  const promUrl = `http://127.0.0.1:${(prometheus.address() as AddressInfo).port}`;
  const sources: DashboardSources = {
    ...prometheusOnlySources(promUrl),
    agentDumps: async () => [
      { agent: 'node n1', dump: { workloads: [{ key: 'default/details-1', name: 'details-1', namespace: 'default', node: 'n1', ip: '198.18.132.2', identity: 'spiffe://cluster.local/ns/default/sa/details', inMesh: true, captured: true, certExpiry: '2030-01-01T00:00:00.000Z', labels: { app: 'details', version: 'v1' }, workloadName: 'details', version: 'v1' }] } },
      { agent: 'node n2', error: 'cannot reach the agent' },
    ],
  };
  dashboard = await startDashboard({ sources, logger: silentLogger, listen: { host: '127.0.0.1', port: 0 } });
  base = dashboard.url;
});

after(async () => {
  await dashboard.close();
  await new Promise<void>((r) => prometheus.close(() => r()));
});

async function get(path: string): Promise<{ status: number; type: string; body: string }> {
  const res = await fetch(new URL(path, base));
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
}

test('/api/graph: the edge from the queries, the window in every query', async () => {
  seen.length = 0;
  const r = await get('/api/graph?window=5m');
  assert.equal(r.status, 200);
  const a = JSON.parse(r.body) as { graph: { edges: { id: string; connections: number; bytesPerSecond: number }[] }; namespaces: string[]; window: string; error?: string };
  assert.equal(a.error, undefined);
  assert.equal(a.window, '5m');
  assert.deepEqual(a.namespaces, ['default']);
  assert.equal(a.graph.edges.length, 1);
  assert.equal(a.graph.edges[0]!.id, `tcp:${workloadId('default', 'productpage', 'v1')}->${workloadId('default', 'details', 'v1')}`);
  assert.equal(a.graph.edges[0]!.connections, 7);
  assert.equal(a.graph.edges[0]!.bytesPerSecond, 200);
  assert.ok(seen.length >= 8 && seen.filter((q) => q.includes('[')).every((q) => q.includes('[300s]')), seen.join('\n'));
});

test('/api/details: pods with certificate expiry from the agents, and which agents did not answer', async () => {
  const r = await get(`/api/details?window=5m&node=${encodeURIComponent(workloadId('default', 'details', 'v1'))}`);
  assert.equal(r.status, 200);
  const d = JSON.parse(r.body) as { pods: { name: string; certExpiry: string }[]; identities: string[]; agentErrors: string[]; topCallers: { label: string }[] };
  assert.deepEqual(d.pods.map((p) => [p.name, p.certExpiry]), [['details-1', '2030-01-01T00:00:00.000Z']]);
  assert.deepEqual(d.agentErrors, ['node n2: cannot reach the agent']);
  assert.deepEqual(d.topCallers.map((c) => c.label), ['productpage v1']);
  assert.equal((await get('/api/details?node=wl:nope/x')).status, 404);
});

test('bad input: an unknown window is 400 with the reason; other methods and paths are refused', async () => {
  const r = await get('/api/graph?window=2d');
  assert.equal(r.status, 400);
  assert.match(JSON.parse(r.body).error, /window 2d is not one of 10s\.\.24h/);
  assert.equal((await get('/nope')).status, 404);
  assert.equal((await fetch(new URL('/api/graph', base), { method: 'POST' })).status, 405);
});

test('the UI is served from the package: page, script, views; the graph library path answers either way', async () => {
  const page = await get('/');
  assert.equal(page.status, 200);
  assert.match(page.type, /text\/html/);
  assert.match(page.body, /<script src="\/vendor\/cytoscape\.min\.js"><\/script>/);
  for (const path of ['/app.js', '/view-svg.js', '/view-cytoscape.js']) {
    const r = await get(path);
    assert.equal(r.status, 200, path);
    assert.match(r.type, /text\/javascript/);
  }
  // Installed with cytoscape: the library; without: a 404 that says the SVG view draws.
  const lib = await get('/vendor/cytoscape.min.js');
  assert.ok(lib.status === 200 || (lib.status === 404 && /draws with view-svg\.js/.test(lib.body)), `${lib.status} ${lib.body.slice(0, 80)}`);
});

test('Prometheus failing: the last good graph is served with the error beside it; without one, 502', async () => {
  failing = true;
  try {
    const r = await get('/api/graph?window=5m');
    assert.equal(r.status, 200);
    const a = JSON.parse(r.body) as { graph: { edges: unknown[] }; error?: string };
    assert.equal(a.graph.edges.length, 1);
    assert.match(a.error ?? '', /Prometheus refused .*down for maintenance|not JSON: down for maintenance/);
    const fresh = await get('/api/graph?window=15m');
    assert.equal(fresh.status, 502);
    assert.match(JSON.parse(fresh.body).code, /WEFT_ERR_DASHBOARD/);
  } finally {
    failing = false;
  }
});

test('Prometheus answers: vectors and scalars; an error status or a matrix is refused with the query named', () => {
  assert.deepEqual(parsePrometheusAnswer('q', JSON.stringify({ status: 'success', data: { resultType: 'scalar', result: [1, '3'] } })), [{ metric: {}, value: 3 }]);
  assert.throws(() => parsePrometheusAnswer('up', JSON.stringify({ status: 'error', error: 'parse error' })), /Prometheus refused up: parse error/);
  assert.throws(() => parsePrometheusAnswer('up[1m]', JSON.stringify({ status: 'success', data: { resultType: 'matrix', result: [] } })), /expected an instant vector/);
});
