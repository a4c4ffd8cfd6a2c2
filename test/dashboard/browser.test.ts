/**
 * The dashboard in a real browser (Debian's chromium, headless) on the bookinfo lab after demo
 * traffic: the page `weft lab status` names loads from the package alone (no other address),
 * the graph's nodes and edges are the workloads and pairs that carried traffic with their
 * connection counts, mTLS per edge, the filters work, a click on an edge opens its details, and
 * a screenshot is saved (test-artifacts/dashboard.png). Needs root; skipped only when chromium
 * is not installed.
 *
 * HTTP edges come from the waypoint's request metrics; this lab has no waypoint yet (issue 11),
 * so every edge here is TCP, and the HTTP side is covered by test/dashboard/graph.test.ts.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { labApply, labDown, labStatus, labUp } from '../../agent/lab/index.js';
import { REPO_DIR, WEFT_MAIN } from '../../agent/lab/paths.js';
import { queryLabPrometheus } from '../../agent/lab/prometheus.js';
import { processAlive } from '../../agent/lab/procs.js';
import { chromiumMissing, launchChromium, type Browser, type Page } from '../helpers/chromium.js';
import { waitFor } from '../helpers/wait.js';
import { load, waitCaptured } from '../e2e/helpers.js';
import { workloadId } from '../../agent/dashboard/graph.js';
import { bookinfoPodName } from '../helpers/bookinfo.js';

const LAB = 'dashweb';
const REQUESTS = 30;
const SCREENSHOT = join(REPO_DIR, 'test-artifacts', 'dashboard.png');
const skip = chromiumMissing();

/**
 * Connections shown vs made: each bookinfo request opens one connection per hop, so the counts
 * are known; the tolerance allows one connection or 5 % either way (a scrape racing the last
 * close), never more.
 */
function withinTolerance(shown: number, made: number): boolean {
  return Math.abs(shown - made) <= Math.max(1, Math.ceil(made * 0.05));
}

interface ViewEdge {
  id: string;
  source: string;
  target: string;
  protocol: string;
  mtls: string;
  connections?: number;
  connectionsTotal?: number;
  label: string;
}
interface ViewNode {
  id: string;
  kind: string;
  label: string;
}

/**
 * A graph node's id: bookinfo's versions are Deployments, named as Istio names a workload (the
 * Deployment, `reviews-v2`), one node per version; the client is a bare Pod.
 */
function wl(app: string, version?: string): string {
  return app === 'client' ? workloadId('outside', 'client') : workloadId('default', `${app}-${version}`, version);
}

let browser: Browser | undefined;
let page: Page;
let url: string;
let expected: Map<string, { made: number; mtls: string }>;

before(async () => {
  if (skip !== undefined) return;
  await labDown({ name: LAB });
  const up = await labUp({ name: LAB });
  // Versions are Deployments: pods are found by app and version (their names carry a hash).
  const pod = (app: string, version: string): string => bookinfoPodName(up, app, version);
  await waitCaptured(LAB, 'node-1', [pod('productpage', 'v1'), pod('reviews', 'v1'), pod('reviews', 'v2'), pod('reviews', 'v3')].map((n) => `default/${n}`));
  await waitCaptured(LAB, 'node-2', [pod('details', 'v1'), pod('ratings', 'v1')].map((n) => `default/${n}`));
  const summary = await load(LAB, 'client', 'outside', 'http://productpage.default:9080/', REQUESTS);
  assert.equal(summary.ok, REQUESTS, `demo traffic failed: ${JSON.stringify(summary.firstFailure)}`);
  // What carried traffic, from the apps' own counts (which pod answered how often).
  const answered = (app: string, version: string): number => summary.pods[pod(app, version)] ?? 0;
  expected = new Map();
  const add = (from: string, to: string, made: number, mtls: string): void => {
    if (made > 0) expected.set(`${from}->${to}`, { made, mtls });
  };
  add(wl('client'), wl('productpage', 'v1'), REQUESTS, 'none');
  add(wl('productpage', 'v1'), wl('details', 'v1'), answered('details', 'v1'), 'mutual_tls');
  for (const v of ['v1', 'v2', 'v3']) add(wl('productpage', 'v1'), wl('reviews', v), answered('reviews', v), 'mutual_tls');
  // reviews v2 and v3 call ratings once per request they answer; v1 does not.
  for (const v of ['v2', 'v3']) add(wl('reviews', v), wl('ratings', 'v1'), answered('reviews', v), 'mutual_tls');
  assert.equal(answered('ratings', 'v1'), answered('reviews', 'v2') + answered('reviews', 'v3'), 'ratings answered once per v2/v3 review');
  // Prometheus has scraped the last connection of every pair before the browser looks.
  await waitFor(async () => {
    const samples = await queryLabPrometheus(LAB, 'sum(istio_tcp_connections_closed_total{reporter="destination"})');
    const made = [...expected.values()].reduce((s, e) => s + e.made, 0);
    return (samples[0]?.value ?? 0) >= made;
  }, 'Prometheus has every connection of the demo traffic', 20_000);

  const status = await promisify(execFile)(process.execPath, [WEFT_MAIN, 'lab', 'status', '--name', LAB]);
  const m = /^DASHBOARD\s.*\n(http:\/\/127\.0\.0\.1:\d+\/)\s+\d+\s+running/m.exec(status.stdout);
  assert.ok(m, `weft lab status names the dashboard's URL on the loopback:\n${status.stdout}`);
  url = m[1]!;
  assert.equal((await labStatus(LAB)).dashboard?.url, url);
  browser = await launchChromium();
  page = browser.page;
  await page.goto(url);
});

after(async () => {
  await browser?.close();
  if (skip === undefined) await labDown({ name: LAB });
});

/**
 * What the page draws, with ids as this test names them: an unversioned workload is `@latest`
 * once the agents report Istio's canonical revision, and plain before.
 */
async function viewElements(): Promise<{ nodes: ViewNode[]; edges: ViewEdge[] }> {
  const norm = (id: string): string => id.replace(/@latest$/, '');
  const v = await page.evaluate<{ nodes: ViewNode[]; edges: ViewEdge[] }>('window.weftDashboard.view.elements()');
  return { nodes: v.nodes.map((n) => ({ ...n, id: norm(n.id) })), edges: v.edges.map((e) => ({ ...e, source: norm(e.source), target: norm(e.target) })) };
}

test('the graph shows exactly the workloads and pairs that carried traffic, with their connection counts and mTLS per edge', { skip }, async () => {
  // A window long enough for the whole test, chosen as a user would.
  await page.evaluate(`(() => { const s = document.querySelector('#window'); s.value = '15m'; s.dispatchEvent(new Event('change')); })()`);
  const want = [...expected.keys()].sort();
  let last: { nodes: ViewNode[]; edges: ViewEdge[] } | undefined;
  await waitFor(async () => {
    last = await viewElements();
    const edges = last.edges.filter((e) => e.protocol === 'tcp');
    return edges.map((e) => `${e.source}->${e.target}`).sort().join(',') === want.join(',') && edges.every((e) => withinTolerance(e.connections ?? 0, expected.get(`${e.source}->${e.target}`)!.made));
  }, `the page draws the edges ${want.join(', ')} with their counts`, 30_000).catch((err: Error) => {
    throw new Error(`${err.message}\nlast drawn: ${JSON.stringify(last?.edges.map((e) => [e.source, e.target, e.connections]))}`);
  });
  const { nodes, edges } = last!;
  for (const e of edges) {
    const exp = expected.get(`${e.source}->${e.target}`)!;
    assert.ok(withinTolerance(e.connections ?? 0, exp.made), `${e.id}: ${e.connections} connections in the window, ${exp.made} made`);
    assert.ok(withinTolerance(e.connectionsTotal ?? 0, exp.made), `${e.id}: ${e.connectionsTotal} connections in all, ${exp.made} made`);
    assert.equal(e.mtls, exp.mtls, `${e.id}: mTLS`);
    assert.match(e.label, exp.mtls === 'mutual_tls' ? /· mTLS$/ : /· plaintext$/);
  }
  const workloads = nodes.filter((n) => n.kind === 'workload').map((n) => n.id).sort();
  const carried = [...new Set(want.flatMap((k) => k.split('->')))].sort();
  assert.deepEqual(workloads, carried);
  // Services are shown, each joined to the workloads its traffic reached.
  assert.deepEqual(nodes.filter((n) => n.kind === 'service').map((n) => n.label).sort(), ['details', 'productpage', 'ratings', 'reviews']);
  // The table says the same, in words a person reads.
  const rows = await page.evaluate<{ source: string; target: string; protocol: string; mtls: string }[]>(
    `[...document.querySelectorAll('#edges tbody tr')].map((tr) => ({ source: tr.dataset.source, target: tr.dataset.target, protocol: tr.children[2].textContent, mtls: tr.children[4].textContent }))`,
  );
  const norm = (id: string): string => id.replace(/@latest$/, '');
  for (const r of rows) [r.source, r.target] = [norm(r.source), norm(r.target)];
  assert.deepEqual(rows.map((r) => `${r.source}->${r.target}`).sort(), want);
  for (const r of rows) assert.equal(r.mtls, expected.get(`${r.source}->${r.target}`)!.mtls === 'mutual_tls' ? 'mTLS' : 'plaintext');
  assert.ok(rows.every((r) => r.protocol === 'TCP'));
});

test('the namespace filter keeps only the edges of the chosen namespaces', { skip }, async () => {
  const toggle = (ns: string): Promise<void> => page.evaluate(`(() => { const i = document.querySelector('#namespaces input[value="${ns}"]'); i.click(); })()`);
  await toggle('default');
  await waitFor(async () => {
    const { edges } = await viewElements();
    return edges.length === 1 && edges[0]!.source === wl('client');
  }, 'only client -> productpage with namespace outside alone', 15_000);
  await toggle('default');
  await waitFor(async () => (await viewElements()).edges.length === expected.size, 'every edge again with both namespaces', 15_000);
});

test('clicking an edge opens its details: both ends, identities, certificate expiry, connections, mTLS', { skip }, async () => {
  const id = `tcp:${wl('productpage', 'v1')}->${wl('details', 'v1')}`;
  const point = await page.evaluate<{ x: number; y: number } | undefined>(`window.weftDashboard.view.clickPoint(${JSON.stringify(id)})`);
  assert.ok(point, `the edge ${id} is drawn`);
  await page.click(point.x, point.y);
  const text = await waitFor(async () => {
    const t = await page.evaluate<string | null>(`(() => { const d = document.querySelector('#details > div[data-kind="edge"]'); return d && d.dataset.id === ${JSON.stringify(id)} ? d.innerText : null; })()`);
    return t;
  }, 'the details panel shows the clicked edge', 15_000);
  const made = expected.get(`${wl('productpage', 'v1')}->${wl('details', 'v1')}`)!.made;
  assert.match(text, /default\/productpage-v1 → default\/details-v1/);
  assert.match(text, /protocol\s+TCP/i);
  assert.match(text, /security\s+mTLS/);
  assert.match(text, /service\s+default\/details/);
  const total = Number(/connections \(total\)\s+(\d+)/.exec(text)?.[1]);
  assert.ok(withinTolerance(total, made), `details say ${total} connections, ${made} made`);
  assert.match(text, /spiffe:\/\/cluster\.local\/ns\/default\/sa\/bookinfo-productpage/);
  assert.match(text, /spiffe:\/\/cluster\.local\/ns\/default\/sa\/bookinfo-details/);
  // The destination pod's certificate, from the agent that captures it.
  assert.match(text, /details-v1-[a-z0-9]+-[a-z0-9]+ on node-2 \(198\.18\.\d+\.\d+\): certificate expires \d{4}-\d\d-\d\dT[\d:.]+Z \(in \d+ h \d+ min\)/);
  assert.match(text, /top callers\s+productpage-v1: [\d.]+ (k?B\/s) \(TCP\)/i);
  assert.equal(await page.evaluate<string>(`document.querySelector('#edge-mtls').textContent`), 'mTLS');
  await page.screenshot(SCREENSHOT);
});

test('clicking a node opens its details: its pod and certificate, its services, its callers', { skip }, async () => {
  const id = wl('reviews', 'v2');
  const point = await page.evaluate<{ x: number; y: number } | undefined>(`window.weftDashboard.view.clickPoint(${JSON.stringify(id)})`);
  assert.ok(point, `the node ${id} is drawn`);
  await page.click(point.x, point.y);
  const text = await waitFor(
    () => page.evaluate<string | null>(`(() => { const d = document.querySelector('#details > div[data-kind="node"]'); return d && d.dataset.id === ${JSON.stringify(id)} ? d.innerText : null; })()`),
    'the details panel shows the clicked node',
    15_000,
  );
  assert.match(text, /^default\/reviews-v2\n/);
  assert.match(text, /version\s+v2/i);
  assert.match(text, /identity\s+spiffe:\/\/cluster\.local\/ns\/default\/sa\/bookinfo-reviews/i);
  assert.match(text, /reviews-v2-[a-z0-9]+-[a-z0-9]+ on node-1 \(198\.18\.\d+\.\d+\): certificate expires \d{4}-/);
  assert.match(text, /services\s+default\/reviews/i);
  assert.match(text, /top callers\s+productpage-v1: [\d.]+ (k?B\/s) \(TCP\)/i);
});

test('the page needs nothing but the dashboard: every request went to its own address, no script error', { skip }, async () => {
  assert.ok(page.requests.length > 0);
  const elsewhere = page.requests.filter((r) => !r.startsWith(url) && !r.startsWith('data:'));
  assert.deepEqual(elsewhere, []);
  assert.deepEqual(page.errors, []);
});

test('a policy that refuses productpage -> details: the edge shows the denied connections, the details the policy', { skip }, async () => {
  const DENIED = 5;
  await labApply({ name: LAB, file: join(REPO_DIR, 'test', 'dashboard', 'fixtures', 'deny-details.yaml') });
  await load(LAB, 'client', 'outside', 'http://productpage.default:9080/', DENIED);
  const id = `tcp:${wl('productpage', 'v1')}->${wl('details', 'v1')}`;
  let edge: ViewEdge & { denied?: number } | undefined;
  await waitFor(async () => {
    edge = (await viewElements()).edges.find((e) => e.id === id);
    return edge !== undefined && withinTolerance(edge.denied ?? 0, DENIED);
  }, `the edge ${id} shows ${DENIED} denied connections`, 30_000).catch((err: Error) => {
    throw new Error(`${err.message}; last: ${JSON.stringify(edge)}`);
  });
  assert.match(edge!.label, new RegExp(`· ${edge!.denied} denied · mTLS$`));
  const row = await page.evaluate<string>(`[...document.querySelectorAll('#edges tbody tr')].find((tr) => tr.dataset.edge === ${JSON.stringify(id)}).children[5].textContent`);
  assert.equal(row, `${edge!.denied} denied`);
  const point = await page.evaluate<{ x: number; y: number }>(`window.weftDashboard.view.clickPoint(${JSON.stringify(wl('details', 'v1'))})`);
  await page.click(point.x, point.y);
  await waitFor(
    () => page.evaluate<boolean>(`(() => { const d = document.querySelector('#details > div[data-kind="node"]'); return !!d && /AuthorizationPolicy default\\/deny-details: DENY \\(app=details\\)/.test(d.innerText); })()`),
    'the details of details-v1 name the policy that selects it',
    15_000,
  );
});

test('down stops the dashboard with the lab, like its Prometheus', { skip }, async () => {
  const pid = (await labStatus(LAB)).dashboard?.pid;
  assert.ok(pid !== undefined && processAlive(pid));
  await browser?.close();
  browser = undefined;
  await labDown({ name: LAB });
  assert.equal(processAlive(pid), false);
  await assert.rejects(fetch(`${url}healthz`));
});
