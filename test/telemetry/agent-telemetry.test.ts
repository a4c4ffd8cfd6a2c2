/**
 * The agent's telemetry after real traffic, in-process (two pod namespaces, HBONE with mutual
 * TLS, the agent in this process with its metrics and admin ports on 127.0.128.1): the scraped
 * TCP metrics carry every Istio label with the values Istio would give, a failed connect closes
 * with response_flags UF, the admin stream shows opens, decisions and closes with identities,
 * and `weft status top --once` / `weft status connections --follow --json` print the edge and
 * the events. Needs root.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { setupTwoPods, type TwoPods } from '../helpers/two-pods.js';
import { waitFor } from '../helpers/wait.js';
import { streamAdmin } from '../../agent/admin/client.js';
import { TCP_LABELS } from '../../agent/telemetry/metrics.js';

const ADMIN = '127.0.128.1:15000';
const METRICS = '127.0.128.1:15020';
const WEFT = fileURLToPath(new URL('../../agent/cli/main.js', import.meta.url));
let t: TwoPods;
const SERVER_POD = `apiVersion: v1
kind: Pod
metadata:
  name: server
  namespace: shop
  labels:
    app: server
spec:
  nodeName: node-1
  serviceAccountName: server
  containers:
  - name: main
    command: [sleep, infinity]
status:
  phase: Running
  podIP: 198.18.128.3
`;

before(async () => {
  t = await setupTwoPods('tele', 128, { adminAddress: ADMIN, metricsAddress: METRICS });
  // The client pod goes and comes back with more labels (a captured pod keeps the workload it was captured with).
  t.writeFile('pods.yaml', SERVER_POD);
  await waitFor(() => !t.agent.captured.has('shop/client'), 'the client pod released');
  t.writePods({ version: 'v1', 'service.istio.io/canonical-name': 'shop-client', 'app.kubernetes.io/version': '"1.4"' });
  await waitFor(() => t.agent.captured.get('shop/client')?.workload.labels['version'] === 'v1', 'the client pod captured again, with its new labels');
});

after(() => t?.cleanup());

/** `name{labels} value` lines of a scrape, parsed. */
async function scrape(): Promise<{ name: string; labels: Record<string, string>; value: number }[]> {
  const text = await (await fetch(`http://${METRICS}/metrics`)).text();
  const out = [];
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)\{(.*)\} (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of m[2]!.matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

test('after traffic, /metrics has Istio\'s TCP series with every label, valued as Istio values them', async () => {
  const events: Record<string, unknown>[] = [];
  const stream = streamAdmin({ label: 'agent', admin: ADMIN }, '/connections/stream', (e) => events.push(e));
  try {
    await checkMetricsAndEvents(events);
  } finally {
    stream.stop();
    await stream.done;
  }
});

async function checkMetricsAndEvents(events: Record<string, unknown>[]): Promise<void> {
  await waitFor(() => events.some((e) => e['event'] === 'subscribed'), 'the event stream is live');

  assert.equal(await t.request(t.VIP, 80, 'via-vip'), `${t.IP_A}|via-vip`);
  const series = await waitFor(async () => {
    const all = await scrape();
    const mine = all.filter((s) => s.name === 'istio_tcp_connections_closed_total' && s.labels['destination_workload'] === 'server');
    return mine.length === 2 ? all : undefined;
  }, 'the closed connection counted by both reporters');
  const opened = series.filter((s) => s.name === 'istio_tcp_connections_opened_total' && s.labels['destination_workload'] === 'server');
  const source = opened.find((s) => s.labels['reporter'] === 'source');
  const destination = opened.find((s) => s.labels['reporter'] === 'destination');
  assert.ok(source && destination, 'both reporters');
  for (const s of [source, destination]) {
    assert.deepEqual(Object.keys(s.labels).sort(), [...TCP_LABELS].sort(), 'every Istio label, nothing else');
    assert.equal(s.value, 1);
  }
  const common = {
    source_workload: 'client',
    source_workload_namespace: 'shop',
    source_principal: 'spiffe://cluster.local/ns/shop/sa/client',
    source_app: 'client',
    source_version: 'v1',
    source_canonical_service: 'shop-client',
    source_canonical_revision: '1.4',
    source_cluster: 'Kubernetes',
    destination_workload: 'server',
    destination_workload_namespace: 'shop',
    destination_principal: 'spiffe://cluster.local/ns/shop/sa/server',
    destination_app: 'server',
    destination_version: 'unknown',
    destination_canonical_service: 'server',
    destination_canonical_revision: 'latest',
    destination_cluster: 'Kubernetes',
    destination_service_namespace: 'shop',
    destination_service_name: 'server',
    request_protocol: 'tcp',
    response_flags: '-',
    connection_security_policy: 'mutual_tls',
  };
  for (const [k, v] of Object.entries(common)) assert.equal(source.labels[k], v, `source reporter ${k}`);
  // The destination agent sees the pod address, not the VIP: it names the service whose endpoint
  // the pod is on that port, as ztunnel does (Istio's dashboards filter its series by service).
  for (const [k, v] of Object.entries(common)) assert.equal(destination.labels[k], v, `destination reporter ${k}`);
  for (const s of [source, destination]) {
    assert.equal(s.labels['destination_service'], 'server.shop.svc.cluster.local');
    assert.equal(s.labels['destination_service_name'], 'server');
  }

  // The same connection in the event stream: open, the destination's decision, close, with identities.
  const ofInbound = await waitFor(() => {
    const inbound = events.filter((e) => e['direction'] === 'inbound' && e['srcWorkload'] === 'shop/client');
    return inbound.some((e) => e['event'] === 'close') ? inbound : undefined;
  }, 'the inbound connection\'s close in the stream');
  assert.deepEqual(ofInbound.map((e) => e['event']), ['open', 'decision', 'close']);
  const close = ofInbound[2]!;
  assert.equal(close['srcPrincipal'], 'spiffe://cluster.local/ns/shop/sa/client');
  assert.equal(close['dstPrincipal'], 'spiffe://cluster.local/ns/shop/sa/server');
  assert.equal(close['decision'], 'allow');
  assert.equal(close['mtls'], true);
  assert.equal(close['bytesFromClient'], 'via-vip'.length);
  assert.equal(close['responseFlags'], '-');
  const outbound = events.filter((e) => e['direction'] === 'outbound' && e['srcWorkload'] === 'shop/client');
  assert.deepEqual(outbound.map((e) => e['event']), ['open', 'close']);
  assert.equal(outbound[0]!['dstService'], 'shop/server');
}

test('a connect the app refuses closes with response_flags UF at both reporters', async () => {
  // Nothing listens on 9099 in the server pod: the destination agent's connect is refused and the
  // source agent's CONNECT is answered 503.
  await t.request(t.IP_B, 9099, 'nobody').catch(() => undefined);
  const failed = await waitFor(async () => {
    const closed = (await scrape()).filter((s) => s.name === 'istio_tcp_connections_closed_total' && s.labels['response_flags'] === 'UF' && s.labels['destination_workload'] === 'server');
    return closed.length === 2 ? closed : undefined;
  }, 'UF closes from both reporters');
  assert.deepEqual(failed.map((s) => s.labels['reporter']).sort(), ['destination', 'source']);
  // Opened is counted when the flags are not known yet: on the series without flags.
  const openedUF = (await scrape()).filter((s) => s.name === 'istio_tcp_connections_opened_total' && s.labels['response_flags'] !== '-');
  assert.deepEqual(openedUF, []);
});

test('bytes of an open connection count at scrape time, and count once when it closes', async () => {
  const received = async (reporter: string) => (await scrape())
    .filter((x) => x.name === 'istio_tcp_received_bytes_total' && x.labels['reporter'] === reporter && x.labels['destination_workload'] === 'server')
    .reduce((n, x) => n + x.value, 0);
  const before = { source: await received('source'), destination: await received('destination') };
  const socket = t.open(t.IP_B, 9080);
  try {
    socket.write('live-bytes');
    // Still open: the 10 bytes are in the counters of both reporters.
    for (const r of ['source', 'destination'] as const) {
      await waitFor(async () => (await received(r)) === before[r] + 10, `${r} reporter counts the open connection's 10 bytes`);
    }
    const reply = new Promise<string>((resolve) => {
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c)).on('end', () => resolve(Buffer.concat(chunks).toString()));
    });
    socket.end();
    assert.equal(await reply, `${t.IP_A}|live-bytes`);
  } finally {
    socket.destroy();
  }
  await waitFor(() => t.agent.inputs.connections.openConnections().length === 0, 'the connection closed on both sides');
  for (const r of ['source', 'destination'] as const) assert.equal(await received(r), before[r] + 10, `${r}: the closed connection's bytes, not counted twice`);
});

test('weft status top --once shows the edge with its totals and mTLS', async () => {
  for (let i = 0; i < 3; i++) await t.request(t.IP_B, 9080, `top-${i}`);
  const { stdout } = await promisify(execFile)(process.execPath, [WEFT, 'status', 'top', '--admin', ADMIN, '--once', '--interval', '0.2']);
  const header = stdout.split('\n').find((l) => l.startsWith('SOURCE'));
  assert.ok(header, stdout);
  const row = stdout.split('\n').find((l) => /^shop\/client\s+shop\/server\s/.test(l));
  assert.ok(row, `an edge shop/client -> shop/server in:\n${stdout}`);
  const columns = header.split(/\s{2,}/);
  const cells = row.split(/\s{2,}/);
  const cell = (name: string) => cells[columns.indexOf(name)];
  assert.ok(Number(cell('TOTAL')) >= 5, `TOTAL counts the edge's connections: ${row}`);
  assert.equal(cell('MTLS'), 'yes');
  assert.ok(Number(String(cell('ERRORS')).split(' ')[0]) >= 1, 'the refused connect is an error of the edge');
});

test('weft status connections --follow --json streams an open and a close with the policy decision', async () => {
  const child = spawn(process.execPath, [WEFT, 'status', 'connections', '--follow', '--json', '--admin', ADMIN], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    let out = '';
    let err_ = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err_ += c));
    const events = t.agent.inputs.connections.events;
    await waitFor(() => events.subscribers === 1 && out.includes('"subscribed"'), 'the CLI subscribed');
    assert.equal(await t.request(t.IP_B, 9080, 'followed'), `${t.IP_A}|followed`);
    const lines = await waitFor(() => {
      const parsed = out.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
      const inbound = parsed.filter((e) => e['direction'] === 'inbound');
      return inbound.some((e) => e['event'] === 'close') ? inbound : undefined;
    }, 'the CLI printed the inbound close').catch((err: Error) => {
      throw new Error(`${err.message}; it printed:\n${out}\n${err_}`);
    });
    assert.deepEqual(lines.map((e) => e['event']), ['open', 'decision', 'close']);
    assert.equal(lines[2]!['decision'], 'allow');
    assert.equal(lines[2]!['srcPrincipal'], 'spiffe://cluster.local/ns/shop/sa/client');
    assert.equal(lines[2]!['agent'], ADMIN);
  } finally {
    child.kill();
  }
  await waitFor(() => t.agent.inputs.connections.events.subscribers === 0, 'the agent let the CLI go');
});
