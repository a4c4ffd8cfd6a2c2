/**
 * Every panel query of every Grafana dashboard in daemonset/dashboards/ against the lab's real
 * Prometheus after real bookinfo traffic: each returns series. Template variables are filled
 * with values their own queries find (namespace, service, workload, agent instance); Grafana's
 * $__rate_interval and $__range with windows the 1 s scrape fills.
 *
 * Request-metric panels (istio_request*, reported by the waypoint) return series only once a
 * waypoint's metrics are in the lab's Prometheus; until then (see WAYPOINT_PENDING) each of them
 * is listed as a todo with the reason, and still sent to Prometheus, which must accept it.
 * On the same lab and traffic, `weft status top --lab` shows the edges from the agents' tables.
 * Needs root and the prometheus executable. Lab `tele1`.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { labApply, labDown, labUp } from '../../agent/lab/index.js';
import { queryLabPrometheus } from '../../agent/lab/prometheus.js';
import { waitFor } from '../helpers/wait.js';
import { bookinfoPodName } from '../helpers/bookinfo.js';
import { load, podIp, podNode, waitCaptured } from '../e2e/helpers.js';

const LAB = 'tele1';
const DIR = fileURLToPath(new URL('../../../daemonset/dashboards/', import.meta.url));
/** Why request-metric panels have no series in the lab yet (they are checked as soon as waypoint series exist). */
const WAYPOINT_PENDING = 'no waypoint request metrics in the lab\'s Prometheus: bookinfo has no waypoint Gateway and the lab scrapes only the node agents (issue 11: the waypoint\'s RequestMetrics and its scrape target land with wp/labd)';
const POD: Record<string, string> = {};
const tmp = mkdtempSync(join(tmpdir(), 'weft-tele-'));

interface Panel {
  dashboard: string;
  title: string;
  exprs: string[];
}

interface Dashboard {
  uid: string;
  templating: { list: { name: string; type: string; query?: { query: string } | string; includeAll?: boolean; allValue?: string }[] };
  panels: { type: string; title: string; targets?: { expr: string }[] }[];
}

const dashboards: [string, Dashboard][] = readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => [f, JSON.parse(readFileSync(join(DIR, f), 'utf8')) as Dashboard]);

before(async () => {
  await labDown({ name: LAB });
  const status = await labUp({ name: LAB });
  for (const [app, version] of [['productpage', 'v1'], ['reviews', 'v1'], ['reviews', 'v2'], ['reviews', 'v3'], ['details', 'v1'], ['ratings', 'v1']] as const) {
    POD[`${app}-${version}`] = bookinfoPodName(status, app, version);
  }
  await waitCaptured(LAB, 'node-1', ['productpage-v1', 'reviews-v1', 'reviews-v2', 'reviews-v3'].map((k) => `default/${POD[k]}`));
  await waitCaptured(LAB, 'node-2', ['details-v1', 'ratings-v1'].map((k) => `default/${POD[k]}`));
  // The demo's traffic: a client outside the mesh (plaintext into productpage), productpage to
  // details and reviews, reviews to ratings (mutual TLS); and one refused connect (UF).
  // A discovery change (a selectorless Service) so that the agents count an applied update.
  const file = join(tmp, 'extra.yaml');
  writeFileSync(file, 'apiVersion: v1\nkind: Service\nmetadata:\n  name: tele-extra\n  namespace: outside\nspec:\n  clusterIP: 198.19.128.99\n  ports:\n  - port: 80\n');
  await labApply({ name: LAB, file });
  const summary = await load(LAB, 'client', 'outside', 'http://productpage.default:9080/productpage', 12);
  assert.equal(summary.failed, 0, JSON.stringify(summary.firstFailure));
  const details = podIp(status, 'default', POD['details-v1']!);
  await podNode(LAB, POD['productpage-v1']!, 'default', `require('net').connect(9999, ${JSON.stringify(details)}).on('error', () => process.exit(0)).on('connect', () => process.exit(1))`);
  await waitFor(
    async () => (await queryLabPrometheus(LAB, 'sum(istio_tcp_connections_closed_total{response_flags="UF"})')).length > 0 && (await queryLabPrometheus(LAB, 'sum(istio_tcp_connections_opened_total{reporter="destination", connection_security_policy="none"})')).length > 0,
    'Prometheus has scraped the traffic (a plaintext connection and a UF close)',
    30_000,
  );
  // rate() needs two samples of a series in its window: wait until every TCP series has three.
  await waitFor(
    async () => {
      const counts = await Promise.all(['opened', 'closed'].map((m) => queryLabPrometheus(LAB, `min(count_over_time(istio_tcp_connections_${m}_total[1m]))`)));
      const bytes = await Promise.all(['sent', 'received'].map((m) => queryLabPrometheus(LAB, `min(count_over_time(istio_tcp_${m}_bytes_total[1m]))`)));
      return [...counts, ...bytes].every((r) => (r[0]?.value ?? 0) >= 3);
    },
    'every TCP series scraped three times',
    30_000,
  );
});

after(async () => {
  await labDown({ name: LAB });
  rmSync(tmp, { recursive: true, force: true });
});

/** `label_values(selector, label)` as PromQL, and the values it finds. */
async function labelValues(query: string): Promise<string[]> {
  const m = /^label_values\((.*),\s*([a-z_]+)\)$/.exec(query.trim());
  assert.ok(m, `a label_values() variable: ${query}`);
  const samples = await queryLabPrometheus(LAB, `group by (${m[2]}) (${m[1]})`);
  return samples.map((s) => s.metric[m[2]!]!).filter((v) => v !== undefined).sort();
}

/** Values for a dashboard's variables, each from its own query (earlier variables substituted), preferring the pairs that carried traffic. */
async function variablesOf(d: Dashboard): Promise<Map<string, string>> {
  // details is called over mutual TLS; productpage has both inbound (plaintext, from outside) and outbound traffic.
  const prefer = ['default', 'details.default.svc.cluster.local', 'productpage-v1'];
  const values = new Map<string, string>();
  for (const v of d.templating.list) {
    if (v.type !== 'query') continue;
    const query = typeof v.query === 'string' ? v.query : v.query!.query;
    // A multi-value variable with "All" is shown with All selected (Grafana's allValue .*).
    if (v.includeAll) {
      values.set(v.name, v.allValue ?? '.*');
      continue;
    }
    const found = await labelValues(substitute(query, values));
    assert.ok(found.length > 0, `${d.uid}: variable $${v.name} has values (${query})`);
    values.set(v.name, found.find((f) => prefer.includes(f)) ?? found[0]!);
  }
  return values;
}

function substitute(expr: string, values: Map<string, string>): string {
  let out = expr.replaceAll('$__rate_interval', '1m').replaceAll('$__range', '5m');
  // Longest names first, so that $namespace is not read as $name + "space". A single value goes in
  // as it is, as Grafana inserts it (its dots match themselves in a regex).
  for (const [name, value] of [...values].sort((a, b) => b[0].length - a[0].length)) out = out.replaceAll(`$${name}`, value);
  return out;
}

const isRequestMetric = (expr: string) => /istio_(requests?|response)_/.test(expr);

test('the dashboards are Grafana dashboards: uid, a Prometheus datasource variable, panels with queries', () => {
  assert.deepEqual(dashboards.map(([f]) => f), ['weft-agent.json', 'weft-mesh.json', 'weft-service.json', 'weft-workload.json']);
  for (const [f, d] of dashboards) {
    assert.ok(d.uid, `${f}: uid`);
    assert.ok(d.templating.list.some((v) => v.type === 'datasource'), `${f}: datasource variable`);
    const panels = d.panels.filter((p) => p.type !== 'row');
    assert.ok(panels.length >= 8, `${f}: panels`);
    for (const p of panels) assert.ok((p.targets ?? []).length > 0 && p.targets!.every((t) => t.expr), `${f}: ${p.title} has queries`);
  }
});

test('every panel query of every dashboard returns series after the traffic', async (t) => {
  const waypointSeries = await queryLabPrometheus(LAB, 'count(istio_requests_total{reporter="waypoint"})');
  const waypointLanded = waypointSeries.length > 0;
  const failures: string[] = [];
  const pending: Panel[] = [];
  let checked = 0;
  for (const [file, d] of dashboards) {
    const values = await variablesOf(d);
    for (const p of d.panels) {
      if (p.type === 'row') continue;
      const exprs = (p.targets ?? []).map((x) => substitute(x.expr, values));
      const results = await Promise.all(exprs.map((e) => queryLabPrometheus(LAB, e)));
      if (!waypointLanded && exprs.some(isRequestMetric)) {
        // Prometheus accepted the query (it would have thrown); the panel waits for waypoint traffic.
        pending.push({ dashboard: file, title: p.title, exprs });
        continue;
      }
      checked++;
      exprs.forEach((e, i) => {
        if (results[i]!.length === 0) failures.push(`${file}: "${p.title}": ${e}`);
      });
    }
  }
  assert.deepEqual(failures, [], `panel queries without series:\n${failures.join('\n')}`);
  assert.ok(checked >= 30, `${checked} panels checked`);
  // Exactly the request-metric panels wait for the waypoint; each is named with the reason.
  for (const p of pending) {
    assert.ok(p.exprs.every(isRequestMetric), `${p.dashboard}: "${p.title}" mixes TCP and request metrics`);
    await t.test(`${p.dashboard}: "${p.title}"`, { todo: WAYPOINT_PENDING }, () => undefined);
  }
  if (!waypointLanded) {
    t.diagnostic(`${pending.length} request-metric panels pending: ${WAYPOINT_PENDING}`);
  }
});

test('weft status top --lab --once: the lab\'s edges, plaintext from outside the mesh, mutual TLS inside it', async () => {
  const weft = fileURLToPath(new URL('../../agent/cli/main.js', import.meta.url));
  const { stdout } = await promisify(execFile)(process.execPath, [weft, 'status', 'top', '--lab', LAB, '--once', '--interval', '0.2', '--limit', '50']);
  const lines = stdout.split('\n');
  const columns = lines.find((l) => l.startsWith('SOURCE'))!.split(/\s{2,}/);
  const rows = lines.filter((l) => /^\S+\/\S+\s{2,}\S+/.test(l)).map((l) => {
    const cells = l.split(/\s{2,}/);
    return Object.fromEntries(columns.map((c, i) => [c, cells[i]]));
  });
  const edge = (source: string, destination: string) => rows.find((r) => r['SOURCE'] === source && r['DESTINATION'] === destination);
  const fromOutside = edge('outside/client', `default/${POD['productpage-v1']!}`);
  assert.ok(fromOutside, `outside/client -> productpage in:\n${stdout}`);
  assert.equal(fromOutside['MTLS'], 'no');
  assert.ok(Number(fromOutside['TOTAL']) >= 12, `the 12 requests' connections: ${JSON.stringify(fromOutside)}`);
  const inside = edge(`default/${POD['productpage-v1']!}`, `default/${POD['details-v1']!}`);
  assert.ok(inside, `productpage -> details in:\n${stdout}`);
  assert.equal(inside['MTLS'], 'yes');
  assert.ok(Number(String(inside['ERRORS']).split(' ')[0]) >= 1, 'the refused connect to details:9999 is an error of the edge');
});
