/**
 * `npm run demo [-- --keep] [--count N] [--name LAB] [--kubernetes] [--l7]`: the mesh at work in well under two minutes.
 *
 *   1. brings up the bookinfo lab (examples/bookinfo: two nodes, an agent on each, the lab CA
 *      and Prometheus in the fabric namespace);
 *   2. waits until every agent captured exactly the meshed pods of its node;
 *   3. sends N requests (new connection each) from the client pod, outside the mesh, to
 *      productpage, which calls details and reviews, which calls ratings;
 *   4. prints what the agents saw (admin API: connections and bytes per source -> destination,
 *      and from their access logs whether each went over mutual TLS);
 *   5. prints what the lab's Prometheus scraped from them (once it agrees with the agents);
 *   6. tears the lab down, or keeps it with --keep and says how to look around; with --keep
 *      first bookinfo's ingress Gateway and route (examples/ingress), productpage asked for from
 *      the lab's internet client, and a kept port-forward whose URL a browser here opens.
 *
 * With --l7 (issue 11), between 5 and 6: a waypoint for reviews (examples/l7: the Gateway, the
 * reviews Service labelled to use it, an HTTPRoute sending `end-user: jason` to v2 and the rest
 * 90/10 to v1/v3), requests as jason and as nobody, the versions that answered, and the request
 * metrics (istio_requests_total, reporter="waypoint") the lab's Prometheus scraped from the waypoint.
 *
 * Exits 1 when a request failed or a step did not complete; the lab's own logs stay in its log
 * files (/run/weft/lab/<lab>/logs), never on this output.
 */
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { fetchAdmin } from '../agent/admin/client.js';
import type { PairTotals } from '../agent/proxy/connection.js';
import { labApply, labDown, labExec, labStatus, labUp, nodeNetns, type LabStatus } from '../agent/lab/index.js';
import { DEFAULT_LAB_DIR, REPO_DIR, WEFT_MAIN } from '../agent/lab/paths.js';
import { queryLabPrometheus, type PromSample } from '../agent/lab/prometheus.js';
import { exposeBookinfo, type BookinfoIngress } from '../agent/lab/bookinfo-ingress.js';

interface Options {
  name: string;
  count: number;
  concurrency: number;
  keep: boolean;
  /** The Kubernetes-mode lab (API server, kubelets, agents and CA with --kubeconfig). */
  kubernetes: boolean;
  /** The waypoint for reviews, its HTTPRoute and the request metrics (examples/l7). */
  l7: boolean;
}

/** Each wait of the demo is bounded so that the whole run stays under two minutes. */
const CAPTURE_TIMEOUT_MS = 20_000;
const LOAD_DEADLINE_MS = 30_000;
const SETTLE_TIMEOUT_MS = 10_000;
const PROMETHEUS_TIMEOUT_MS = 20_000;
const POLL_MS = 100;
const URL = 'http://productpage.default:9080/';
const L7_DIR = join(REPO_DIR, 'examples', 'l7');
/** How long the route may take to apply on every agent and the waypoint. */
const ROUTE_TIMEOUT_MS = 30_000;

class DemoFailure extends Error {}

// ---------------------------------------------------------------------------------------------
// Output

const out = (line = ''): void => {
  process.stdout.write(line + '\n');
};

/** An aligned table, indented; columns whose header starts with '>' are right-aligned. */
function table(head: string[], rows: string[][], indent = '  '): string {
  const right = head.map((h) => h.startsWith('>'));
  const names = head.map((h) => (h.startsWith('>') ? h.slice(1) : h));
  const widths = names.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    indent +
    cells
      .map((c, i) => (right[i] ? c.padStart(widths[i]!) : i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(names), ...rows.map(line)].join('\n');
}

const num = (n: number): string => Math.round(n).toLocaleString('en-US');
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

// ---------------------------------------------------------------------------------------------
// Reading the mesh

interface ConfigDump {
  captured: string[];
  workloads: { key: string; ip: string; identity: string; captured: boolean; certExpiry?: string }[];
}

interface Connections {
  open: unknown[];
  totals: PairTotals[];
}

function admin<T>(lab: string, node: string, path: string): Promise<T> {
  return fetchAdmin({ label: `agent of ${node}`, admin: '127.0.0.1:15000', netns: `/run/netns/${nodeNetns(lab, node)}` }, path) as Promise<T>;
}

async function poll<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new DemoFailure(`${what}: not within ${secs(timeoutMs)}${why}`);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/**
 * Mutual TLS per (direction, source, destination), from the agent's access log: one JSON line
 * per closed connection, keyed as the admin API keys its totals (workload key, else the IP).
 */
function mtlsFromAccessLog(file: string): Map<string, { mtls: number; all: number }> {
  const counts = new Map<string, { mtls: number; all: number }>();
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return counts;
  }
  for (const line of text.split('\n')) {
    if (!line.startsWith('{') || !line.includes('"connection closed"')) continue;
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    const src = (entry['src_workload'] as string | undefined) ?? String(entry['src'] ?? '').split(':')[0];
    const dst = (entry['dst_workload'] as string | undefined) ?? String(entry['upstream'] ?? '').split(':')[0];
    const key = `${String(entry['direction'])}|${src}|${dst}`;
    const c = counts.get(key) ?? { mtls: 0, all: 0 };
    c.all++;
    if (entry['mtls'] === true) c.mtls++;
    counts.set(key, c);
  }
  return counts;
}

// ---------------------------------------------------------------------------------------------
// Steps

async function bringUp(o: Options): Promise<LabStatus> {
  const t0 = Date.now();
  // A lab kept by an earlier demo would mix its counters into this one's.
  const { removed } = await labDown({ name: o.name });
  const status = await labUp({ name: o.name, dir: DEFAULT_LAB_DIR, kubernetes: o.kubernetes });
  const meshed = status.pods.filter((p) => p.inMesh).length;
  out(`[1/5] Lab ${o.name} up in ${secs(Date.now() - t0)}${removed.length > 0 ? ' (an earlier lab of this name was removed first)' : ''}: ${status.nodes.length} nodes, ${status.pods.length} pods (${meshed} in the mesh)`);
  out(
    table(
      ['NODE', 'FABRIC IP', 'AGENT', 'PODS'],
      status.nodes.map((n) => [
        n.name,
        n.fabricIP,
        n.agentRunning ? `running (pid ${n.agentPid})` : 'NOT RUNNING',
        status.pods.filter((p) => p.node === n.name).map((p) => `${p.namespace}/${p.name}${p.inMesh ? '' : ' (not meshed)'}`).join(', '),
      ]),
    ),
  );
  out(`  CA and Prometheus run in namespace ${status.prometheus?.netns ?? '?'} (CA https://198.19.0.254:15012, Prometheus ${status.prometheus?.url ?? '-'})`);
  if (status.kubeconfig !== undefined) out(`  Kubernetes mode: the lab's API server answers kubectl --kubeconfig ${status.kubeconfig} get pods -A`);
  out();
  return status;
}

async function waitForCapture(o: Options, status: LabStatus): Promise<void> {
  const t0 = Date.now();
  const rows: string[][] = [];
  for (const node of status.nodes) {
    const want = status.pods.filter((p) => p.node === node.name && p.inMesh).map((p) => `${p.namespace}/${p.name}`).sort();
    const dump = await poll(`the agent of ${node.name} captures ${want.join(', ')}`, CAPTURE_TIMEOUT_MS, async () => {
      const d = await admin<ConfigDump>(o.name, node.name, '/config_dump');
      return [...d.captured].sort().join(',') === want.join(',') ? d : undefined;
    });
    for (const key of want) {
      const w = dump.workloads.find((x) => x.key === key);
      rows.push([node.name, key, w?.ip ?? '?', w?.identity ?? '?', w?.certExpiry ?? 'pending']);
    }
  }
  out(`[2/5] The agents captured the meshed pods (in ${secs(Date.now() - t0)}): rules and listeners inside each pod's namespace, a certificate per identity`);
  out(table(['NODE', 'CAPTURED POD', 'IP', 'IDENTITY', 'CERTIFICATE EXPIRES'], rows));
  const outside = status.pods.filter((p) => !p.inMesh).map((p) => `${p.namespace}/${p.name}`);
  if (outside.length > 0) out(`  Not captured (namespace without weft.dev/mesh=enabled): ${outside.join(', ')}`);
  out();
}

interface LoadSummary {
  ok: number;
  failed: number;
  pods: Record<string, number>;
  /** service -> version -> answers (bookinfo's answers name their version). */
  versions: Record<string, Record<string, number>>;
  latencyMs: { p50?: number; p99?: number };
  durationMs: number;
  timedOut: boolean;
  errors: Record<string, number>;
  firstFailure?: unknown;
}

async function sendTraffic(o: Options): Promise<boolean> {
  const r = await labExec({
    name: o.name,
    pod: 'client',
    namespace: 'outside',
    command: ['node', 'app/load.mjs', URL, '--count', String(o.count), '--concurrency', String(o.concurrency), '--timeout-ms', '5000', '--deadline-ms', String(LOAD_DEADLINE_MS)],
    timeoutMs: LOAD_DEADLINE_MS + 10_000,
  });
  let s: LoadSummary;
  try {
    s = JSON.parse(r.stdout) as LoadSummary;
  } catch {
    throw new DemoFailure(`the load tool in outside/client printed no summary (exit ${r.code}): ${(r.stderr || r.stdout).trim().slice(0, 500)}`);
  }
  out(`[3/5] ${o.count} requests from outside/client (not in the mesh) to ${URL}, ${o.concurrency} at a time, a new connection each`);
  out(`  ${s.ok} ok, ${s.failed} failed in ${secs(s.durationMs)}; latency p50 ${s.latencyMs.p50 ?? '-'} ms, p99 ${s.latencyMs.p99 ?? '-'} ms${s.timedOut ? ' (cut short by the deadline)' : ''}`);
  out(`  answered by: ${Object.entries(s.pods).sort(([a], [b]) => a.localeCompare(b)).map(([pod, n]) => `${pod} ${n}`).join(', ') || 'nobody'}`);
  const ok = s.failed === 0 && s.ok === o.count;
  if (!ok) out(`  FAILED: ${JSON.stringify(s.errors)} first failure: ${JSON.stringify(s.firstFailure)}`);
  out();
  return ok;
}

async function showAgents(o: Options, status: LabStatus): Promise<number> {
  // Totals are recorded when a connection closes: wait until none is open anywhere.
  const perNode = await poll('every proxied connection has closed', SETTLE_TIMEOUT_MS, async () => {
    const all = await Promise.all(status.nodes.map((n) => admin<Connections>(o.name, n.name, '/connections')));
    return all.every((c) => c.open.length === 0) ? all : undefined;
  });
  const rows: string[][] = [];
  let closed = 0;
  status.nodes.forEach((node, i) => {
    const mtls = mtlsFromAccessLog(node.agentLog);
    const totals = [...perNode[i]!.totals].sort((a, b) => `${a.direction}${a.source}${a.destination}`.localeCompare(`${b.direction}${b.source}${b.destination}`));
    for (const t of totals) {
      closed += t.connections;
      const m = mtls.get(`${t.direction}|${t.source}|${t.destination}`);
      const tls = m === undefined ? '?' : m.mtls === m.all ? 'yes' : m.mtls === 0 ? 'no' : `${m.mtls} of ${m.all}`;
      rows.push([node.name, t.direction, t.source, t.destination, num(t.connections), num(t.bytesFromClient), num(t.bytesToClient), tls]);
    }
  });
  out("[4/5] What the agents saw (each agent's admin API, per source -> destination; mutual TLS from their access logs)");
  out(table(['AGENT', 'DIRECTION', 'SOURCE', 'DESTINATION', '>CONNECTIONS', '>BYTES FROM CLIENT', '>BYTES TO CLIENT', 'MUTUAL TLS'], rows));
  out('  outbound: captured leaving the source pod on its node; inbound: arriving at the destination pod on its node.');
  out('  A meshed pair shows up twice (both agents); outside/client -> productpage only inbound (the client is not captured).');
  out();
  return closed;
}

async function showPrometheus(o: Options, status: LabStatus, closedByAgents: number): Promise<void> {
  const t0 = Date.now();
  // Prometheus scrapes each agent every second: wait until it has every closed connection.
  await poll(`Prometheus reports the ${closedByAgents} connections the agents closed`, PROMETHEUS_TIMEOUT_MS, async () => {
    const [total] = await queryLabPrometheus(o.name, 'sum(istio_tcp_connections_closed_total{job="weft-agents"})');
    return total !== undefined && total.value === closedByAgents ? true : undefined;
  });
  const by = 'sum by (source_workload, destination_workload, connection_security_policy)';
  const sel = '{job="weft-agents", reporter="destination"}';
  const [opened, received, sent] = await Promise.all([
    queryLabPrometheus(o.name, `${by} (istio_tcp_connections_opened_total${sel})`),
    queryLabPrometheus(o.name, `${by} (istio_tcp_received_bytes_total${sel})`),
    queryLabPrometheus(o.name, `${by} (istio_tcp_sent_bytes_total${sel})`),
  ]);
  const key = (s: PromSample): string => `${s.metric['source_workload']}|${s.metric['destination_workload']}|${s.metric['connection_security_policy']}`;
  const value = (list: PromSample[], k: string): number => list.find((s) => key(s) === k)?.value ?? 0;
  const rows = opened
    .map((s) => key(s))
    .sort()
    .map((k) => {
      const [src, dst, security] = k.split('|') as [string, string, string];
      return [`${src} -> ${dst}`, num(value(opened, k)), num(value(received, k)), num(value(sent, k)), security];
    });
  out(`[5/5] What Prometheus scraped from the agents (${status.prometheus?.url ?? '?'} in namespace ${status.prometheus?.netns ?? '?'}; caught up in ${secs(Date.now() - t0)})`);
  out(`  ${by} (istio_tcp_*${sel}):`);
  out(table(['SOURCE -> DESTINATION WORKLOAD', '>CONNECTIONS OPENED', '>BYTES RECEIVED', '>BYTES SENT', 'SECURITY POLICY'], rows));
  out(`  Prometheus and the agents' admin APIs agree: ${num(closedByAgents)} connection records closed (both reporters).`);
  out();
}

// ---------------------------------------------------------------------------------------------
// --l7: the waypoint for reviews

async function load(o: Options, count: number, headers: string[] = []): Promise<LoadSummary> {
  const r = await labExec({
    name: o.name,
    pod: 'client',
    namespace: 'outside',
    command: ['node', 'app/load.mjs', URL, '--count', String(count), '--concurrency', String(o.concurrency), '--timeout-ms', '8000', '--deadline-ms', String(LOAD_DEADLINE_MS), ...headers.flatMap((h) => ['--header', h])],
    timeoutMs: LOAD_DEADLINE_MS + 10_000,
  });
  try {
    return JSON.parse(r.stdout) as LoadSummary;
  } catch {
    throw new DemoFailure(`the load tool in outside/client printed no summary (exit ${r.code}): ${(r.stderr || r.stdout).trim().slice(0, 500)}`);
  }
}

const share = (versions: Record<string, number> | undefined): string => {
  const total = Object.values(versions ?? {}).reduce((a, b) => a + b, 0);
  return Object.entries(versions ?? {}).sort().map(([v, n]) => `${v} ${n} (${total === 0 ? 0 : Math.round((100 * n) / total)} %)`).join(', ') || 'none';
};

async function showL7(o: Options): Promise<boolean> {
  const t0 = Date.now();
  await labApply({ name: o.name, file: join(L7_DIR, 'waypoint.yaml') });
  await labApply({ name: o.name, file: join(L7_DIR, 'reviews-use-waypoint.yaml') });
  await labApply({ name: o.name, file: join(L7_DIR, 'reviews-route.yaml') });
  const status = await labStatus(o.name);
  const wp = status.deployments.find((d) => d.gateway === 'default/waypoint');
  const pod = status.pods.find((p) => p.name === wp?.pods[0]);
  out(`[L7 1/3] Waypoint default/waypoint up in ${secs(Date.now() - t0)}: pod ${pod?.name ?? '?'} on ${pod?.node ?? '?'} (${pod?.ip ?? '?'}), not captured itself; reviews labelled weft.dev/use-waypoint=waypoint`);
  out('  HTTPRoute default/reviews: end-user: jason -> reviews-v2; everyone else -> reviews-v1 90, reviews-v3 10');
  // The route is in effect once jason only ever sees v2 (every agent and the waypoint have it).
  await poll('requests as jason reach reviews-v2 only', ROUTE_TIMEOUT_MS, async () => {
    const s = await load(o, 5, ['end-user: jason']);
    const v = s.versions['reviews'] ?? {};
    return s.ok === 5 && Object.keys(v).join(',') === 'v2' ? true : undefined;
  });
  out();
  const jason = await load(o, o.count, ['end-user: jason']);
  const others = await load(o, o.count * 2);
  out(`[L7 2/3] ${o.count} requests as jason and ${o.count * 2} without a user, from outside/client to ${URL} (productpage -> reviews through the waypoint)`);
  out(table(['USER', '>OK', '>FAILED', 'REVIEWS VERSIONS THAT ANSWERED'], [
    ['jason', String(jason.ok), String(jason.failed), share(jason.versions['reviews'])],
    ['(none)', String(others.ok), String(others.failed), share(others.versions['reviews'])],
  ]));
  out('  wanted: jason all v2; the others about 90 % v1 and 10 % v3, never v2.');
  out();
  const sent = jason.ok + others.ok;
  const t1 = Date.now();
  const by = 'sum by (source_workload, destination_service_name, destination_workload, destination_version, response_code)';
  // The route's backends are the per-version Services: the requests count under them.
  const sel = '{job="weft-waypoints", reporter="waypoint", destination_service_name=~"reviews(-v[0-9]+)?"}';
  await poll(`Prometheus has the waypoint's ${sent} requests to reviews`, PROMETHEUS_TIMEOUT_MS, async () => {
    const [total] = await queryLabPrometheus(o.name, `sum(istio_requests_total${sel})`);
    return total !== undefined && total.value >= sent ? true : undefined;
  });
  const rows = (await queryLabPrometheus(o.name, `${by} (istio_requests_total${sel})`))
    .map((s) => [String(s.metric['source_workload']), String(s.metric['destination_service_name']), String(s.metric['destination_workload']), String(s.metric['destination_version']), String(s.metric['response_code']), num(s.value)])
    .sort((a, b) => a.join().localeCompare(b.join()));
  out(`[L7 3/3] The waypoint's request metrics as Prometheus scraped them (caught up in ${secs(Date.now() - t1)}):`);
  out(`  ${by} (istio_requests_total${sel}):`);
  out(table(['SOURCE', 'SERVICE', 'DESTINATION WORKLOAD', 'VERSION', 'CODE', '>REQUESTS'], rows));
  out();
  const v2 = jason.versions['reviews']?.['v2'] ?? 0;
  const otherV2 = others.versions['reviews']?.['v2'] ?? 0;
  return jason.failed === 0 && others.failed === 0 && v2 === jason.ok && otherV2 === 0;
}

/** --keep: bookinfo through the ingress gateway, on the internet client and in this machine's browser. */
async function showIngress(o: Options): Promise<BookinfoIngress> {
  const t0 = Date.now();
  const ingress = await exposeBookinfo(o.name, ROUTE_TIMEOUT_MS);
  out(`[ingress] Gateway default/bookinfo-gateway (class weft, examples/ingress/bookinfo-gateway.yaml) up in ${secs(Date.now() - t0)}: external address ${ingress.address}`);
  out(`  from the lab's internet client: ${ingress.externalUrl} answers 200`);
  out(`  in a browser on this machine:   ${ingress.localUrl}`);
  out();
  return ingress;
}

function printKeep(o: Options, ingress: BookinfoIngress | undefined): void {
  const weft = `node ${relative(process.cwd(), WEFT_MAIN) || WEFT_MAIN}`;
  if (ingress !== undefined) out(`Open the bookinfo productpage through the ingress gateway: ${ingress.localUrl}`);
  out(`The lab ${o.name} is still up. Look around (as root):`);
  out(`  ${weft} lab status --name ${o.name}`);
  if (o.kubernetes) out(`  kubectl --kubeconfig /run/weft/lab/${o.name}/kube/admin.kubeconfig get pods -A`);
  out(`  ${weft} status workloads --lab ${o.name}`);
  out(`  ${weft} status connections --lab ${o.name}`);
  out(`  ${weft} lab exec client -n outside --name ${o.name} -- node app/load.mjs ${URL} --count 20`);
  if (ingress !== undefined) out(`  ${weft} lab exec --internet --name ${o.name} -- curl -s ${ingress.externalUrl}`);
  out(`  ${weft} lab query --name ${o.name} 'sum by (source_workload, destination_workload) (istio_tcp_connections_opened_total{reporter="destination"})'`);
  out(`  logs of the agents, pods, CA and Prometheus: /run/weft/lab/${o.name}/logs/`);
  out('Tear it down:');
  out(`  ${weft} lab down --name ${o.name}`);
}

// ---------------------------------------------------------------------------------------------

async function demo(o: Options): Promise<number> {
  const t0 = Date.now();
  out(`Weft demo: Istio's Bookinfo on a lab of network namespaces (lab ${o.name}, manifests ${relative(process.cwd(), DEFAULT_LAB_DIR) || DEFAULT_LAB_DIR})`);
  out();
  let code = 0;
  let up = false;
  let ingress: BookinfoIngress | undefined;
  const stop = (signal: NodeJS.Signals): void => {
    process.stderr.write(`\nweft demo: ${signal}; ${o.keep || !up ? 'stopping' : `tearing lab ${o.name} down`}\n`);
    const done = (): void => process.exit(130);
    if (o.keep || !up) done();
    else labDown({ name: o.name }).then(done, done);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    up = true;
    const status = await bringUp(o);
    await waitForCapture(o, status);
    if (!(await sendTraffic(o))) code = 1;
    const closed = await showAgents(o, status);
    await showPrometheus(o, status, closed);
    if (o.l7 && !(await showL7(o))) code = 1;
    if (o.keep) ingress = await showIngress(o);
  } catch (err) {
    code = 1;
    const e = err as Error & { code?: string };
    out(`FAILED: ${e.message}${e.code ? ` [${e.code}]` : ''}`);
    out(`(the lab's logs: /run/weft/lab/${o.name}/logs/)`);
    out();
  }
  if (o.keep) {
    printKeep(o, ingress);
  } else {
    await labDown({ name: o.name });
    out(`Lab ${o.name} torn down (run with --keep to look around first).`);
  }
  out(`Demo ${code === 0 ? 'finished' : 'FAILED'} in ${secs(Date.now() - t0)}.`);
  return code;
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive whole number');
  return n;
}

const program = new Command()
  .name('npm run demo --')
  .description('Bring up the bookinfo lab, send bounded traffic through the mesh, show what the agents and Prometheus saw, tear down. Linux, root.')
  .option('--keep', 'keep the lab running afterwards and print the commands to look around and to tear it down', false)
  .option('--count <n>', 'requests from the client pod to productpage', positiveInt, 50)
  .option('--concurrency <n>', 'requests at a time', positiveInt, 5)
  .option('--name <name>', 'lab name (1-20 lower-case letters or digits)', 'demo')
  .option('--kubernetes', "Kubernetes mode: the lab serves a Kubernetes API (kubectl works against it) and runs pods, agents and CA through it", false)
  .option('--l7', 'also: a waypoint for reviews, an HTTPRoute (jason -> v2, the rest 90/10 v1/v3), the split observed and the waypoint\'s request metrics', false)
  .action(async (opts: Options) => {
    if (process.getuid?.() !== 0) {
      process.stderr.write('weft demo: the lab builds network namespaces; run it as root (sudo npm run demo)\n');
      process.exitCode = 1;
      return;
    }
    process.exitCode = await demo(opts);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`weft demo: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
