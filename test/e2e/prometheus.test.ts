/**
 * The lab's real Prometheus (Debian's package) on the bookinfo lab: it scrapes every agent, its
 * byte counters match the bytes that pods sent and received per source and destination workload,
 * it follows nodes added at runtime, `up` restarts it when it died, and `down` stops it.
 * Needs root and the prometheus executable (scripts/setup.sh installs it).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labApply, labDown, labStatus, labUp } from '../../agent/lab/index.js';
import { labPrometheusPaths, queryLabPrometheus, LAB_PROMETHEUS_URL } from '../../agent/lab/prometheus.js';
import { processAlive } from '../../agent/lab/procs.js';
import { waitFor } from '../helpers/wait.js';
import { podNode, waitCaptured } from './helpers.js';
import { bookinfoPodName } from '../helpers/bookinfo.js';

const LAB = 'prom';
const tmp = mkdtempSync(join(tmpdir(), 'weft-prom-'));
/** `<app>-<version>` -> the name of that Deployment's pod. */
const POD: Record<string, string> = {};

before(async () => {
  await labDown({ name: LAB });
  const status = await labUp({ name: LAB });
  // Versions are Deployments: their pods are found by app and version.
  for (const [app, version] of [['productpage', 'v1'], ['reviews', 'v1'], ['reviews', 'v2'], ['reviews', 'v3'], ['details', 'v1'], ['ratings', 'v1']] as const) {
    POD[`${app}-${version}`] = bookinfoPodName(status, app, version);
  }
  await waitCaptured(LAB, 'node-1', ['productpage-v1', 'reviews-v1', 'reviews-v2', 'reviews-v3'].map((k) => `default/${POD[k]}`));
  await waitCaptured(LAB, 'node-2', ['details-v1', 'ratings-v1'].map((k) => `default/${POD[k]}`));
});

after(async () => {
  await labDown({ name: LAB });
  rmSync(tmp, { recursive: true, force: true });
});

/** Nodes whose agent Prometheus scraped successfully, in a scrape later than `afterMs`. */
async function upNodes(afterMs = 0): Promise<string[]> {
  // After a restart the newest sample of each series may be one written before the kill.
  const samples = await queryLabPrometheus(LAB, `up{job="weft-agents"} == 1 and timestamp(up{job="weft-agents"}) > ${afterMs / 1000}`);
  return samples.map((s) => s.metric['node'] ?? '?').sort();
}

/** `reporter|source_workload|destination_workload` -> value of `sum by (...) (metric)`. */
async function byPair(metric: string): Promise<Map<string, number>> {
  const samples = await queryLabPrometheus(LAB, `sum by (reporter, source_workload, destination_workload) (${metric}{job="weft-agents"})`);
  return new Map(samples.map((s) => [`${s.metric['reporter']}|${s.metric['source_workload']}|${s.metric['destination_workload']}`, s.value]));
}

/**
 * From inside `pod`: `count` fresh TCP connections to host:port, one at a time, each sending an
 * HTTP request padded to a different size and reading the answer until the server closes.
 * Returns the exact bytes written and read, as the app counted them.
 */
async function sendKnownBytes(pod: string, host: string, port: number, path: string, count: number, pad: number): Promise<{ sent: number; received: number }> {
  const script = `
    const net = require('net');
    let sent = 0, received = 0;
    const one = (i) => new Promise((resolve, reject) => {
      const s = net.connect(${port}, ${JSON.stringify(host)});
      const req = 'GET ${path} HTTP/1.1\\r\\nHost: ${host}\\r\\nConnection: close\\r\\nX-Pad: ' + 'x'.repeat(${pad} + i * 7) + '\\r\\n\\r\\n';
      s.on('connect', () => s.write(req));
      s.on('data', (d) => { received += d.length; });
      s.on('error', reject);
      s.on('close', () => { sent += s.bytesWritten; resolve(); });
    });
    (async () => { for (let i = 0; i < ${count}; i++) await one(i); console.log(JSON.stringify({ sent, received })); })()
      .catch((e) => { console.error(e.message); process.exit(2); });
  `;
  const r = await podNode(LAB, pod, 'default', script);
  assert.equal(r.code, 0, `traffic from ${pod} failed: ${r.stderr}`);
  const out = JSON.parse(r.stdout) as { sent: number; received: number };
  assert.ok(out.sent > 0 && out.received > 0, `${pod} sent ${out.sent} and received ${out.received} bytes`);
  return out;
}

test('the lab runs Prometheus in its fabric namespace and it scrapes every agent, labelled with its node', async () => {
  const status = await labStatus(LAB);
  assert.equal(status.prometheus?.url, LAB_PROMETHEUS_URL);
  assert.equal(status.prometheus?.running, true);
  assert.equal(status.prometheus?.netns, `weft-${LAB}-fabric`);
  const want = status.nodes.map((n) => n.name).sort();
  assert.deepEqual(want, ['node-1', 'node-2']);
  await waitFor(async () => (await upNodes()).join(',') === want.join(','), `Prometheus scrapes the agents of ${want.join(', ')}`, 20_000);
  const up = await queryLabPrometheus(LAB, 'up{job="weft-agents"}');
  assert.deepEqual(
    up.map((s) => `${s.metric['node']}=${s.metric['instance']}`).sort(),
    status.nodes.map((n) => `${n.name}=${n.fabricIP}:15020`).sort(),
  );
});

test('the byte counters Prometheus reports match the bytes sent, per source and destination workload', async () => {
  const pairs = [
    // Crosses nodes (node-1 -> node-2) through the service VIP, over HBONE.
    // Istio's workload names: the owning Deployments (productpage-v1), not the app labels.
    { pod: POD['productpage-v1']!, source: 'productpage-v1', destination: 'details-v1', host: 'details.default', path: '/details/1', count: 3, pad: 1000 },
    { pod: POD['reviews-v1']!, source: 'reviews-v1', destination: 'ratings-v1', host: 'ratings.default', path: '/ratings/1', count: 2, pad: 3000 },
  ];
  const reporters = ['source', 'destination'] as const;
  const [closed0, received0, sent0] = await Promise.all([
    byPair('istio_tcp_connections_closed_total'),
    byPair('istio_tcp_received_bytes_total'),
    byPair('istio_tcp_sent_bytes_total'),
  ]);
  const key = (reporter: string, p: (typeof pairs)[number]) => `${reporter}|${p.source}|${p.destination}`;
  const traffic: { sent: number; received: number }[] = [];
  for (const p of pairs) traffic.push(await sendKnownBytes(p.pod, p.host, 9080, p.path, p.count, p.pad));

  // Every connection closed is in a scrape once both reporters count them all; the byte
  // counters are incremented in the same step as the closed counter, so they are in it too.
  await waitFor(
    async () => {
      const closed = await byPair('istio_tcp_connections_closed_total');
      return pairs.every((p) => reporters.every((r) => (closed.get(key(r, p)) ?? 0) === (closed0.get(key(r, p)) ?? 0) + p.count));
    },
    'Prometheus has scraped every closed connection of both pairs from both agents',
    20_000,
  );
  const [received, sent] = await Promise.all([byPair('istio_tcp_received_bytes_total'), byPair('istio_tcp_sent_bytes_total')]);
  for (let i = 0; i < pairs.length; i++) {
    const p = pairs[i]!;
    const t = traffic[i]!;
    for (const r of reporters) {
      const k = key(r, p);
      // received = from the client (request direction), sent = to the client (response direction).
      assert.equal((received.get(k) ?? 0) - (received0.get(k) ?? 0), t.sent, `istio_tcp_received_bytes_total ${k}`);
      assert.equal((sent.get(k) ?? 0) - (sent0.get(k) ?? 0), t.received, `istio_tcp_sent_bytes_total ${k}`);
    }
  }
  // The pairs are told apart: the two payloads differ, and so do their counters.
  assert.notEqual(traffic[0]!.sent, traffic[1]!.sent);
  const security = await queryLabPrometheus(
    LAB,
    'sum by (connection_security_policy) (istio_tcp_connections_opened_total{reporter="destination", source_workload="productpage-v1", destination_workload="details-v1"})',
  );
  assert.deepEqual(security.map((s) => s.metric['connection_security_policy']), ['mutual_tls']);
});

test('up restarts a Prometheus that died, on the same data', async () => {
  const before = await labStatus(LAB);
  const pid = before.prometheus!.pid!;
  process.kill(pid, 'SIGKILL');
  await waitFor(() => !processAlive(pid), 'the killed Prometheus is gone');
  assert.equal((await labStatus(LAB)).prometheus?.running, false);
  const restartedAt = Date.now();
  const again = await labUp({ name: LAB });
  assert.equal(again.mode, 'reconciled');
  assert.equal(again.prometheus?.running, true);
  assert.notEqual(again.prometheus?.pid, pid);
  await waitFor(async () => (await upNodes(restartedAt)).join(',') === 'node-1,node-2', 'the restarted Prometheus scrapes both agents', 20_000);
  // The counters of the previous test are still there (storage under the lab's state dir).
  const opened = await queryLabPrometheus(LAB, 'sum(istio_tcp_connections_opened_total{reporter="destination", destination_workload="details-v1"})');
  assert.ok((opened[0]?.value ?? 0) >= 3, `details connections after the restart: ${JSON.stringify(opened)}`);
});

test('a node added at runtime is scraped without restarting Prometheus', async () => {
  const pid = (await labStatus(LAB)).prometheus!.pid;
  const file = join(tmp, 'node3.yaml');
  writeFileSync(
    file,
    'apiVersion: v1\nkind: Pod\nmetadata:\n  name: extra\n  namespace: outside\n  labels:\n    app: extra\nspec:\n  nodeName: node-3\n  containers:\n  - name: main\n    command: [node, app/details.mjs]\n    ports:\n    - containerPort: 9080\n',
  );
  await labApply({ name: LAB, file });
  const status = await labStatus(LAB);
  assert.equal(status.prometheus?.pid, pid);
  assert.ok(status.nodes.some((n) => n.name === 'node-3'));
  await waitFor(async () => (await upNodes()).join(',') === 'node-1,node-2,node-3', 'Prometheus scrapes the new node', 20_000);
});

test('down stops Prometheus and removes its storage', async () => {
  const status = await labStatus(LAB);
  const pid = status.prometheus!.pid!;
  assert.ok(processAlive(pid));
  await labDown({ name: LAB });
  assert.equal(processAlive(pid), false);
  assert.equal(existsSync(labPrometheusPaths(LAB).dir), false);
});
