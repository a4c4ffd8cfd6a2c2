/**
 * scale-k8s: discovery at the issue's size through a Kubernetes API. The lab's Kubernetes API
 * server (agent/lab/kube, a test double speaking the real protocol over HTTPS with RBAC) runs in
 * this process; 5,000 pods (with status: IP, Running, Ready), 1,000 services with one
 * EndpointSlice each and 500 AuthorizationPolicies are created through it (the objects of
 * bench/scale-manifests.ts), then the discovery half of an agent (bench/discovery-probe.ts: a
 * KubernetesSource for node scale-node-1 with the agent's own service-account token, alone in
 * its process) measures:
 * - initial sync: from start() to the model with every collection listed;
 * - one pod event applied: the time the source spends on one watch event (parse, facts, model
 *   update), over a run of label changes to pods of its own node and of others; and the time from
 *   the PATCH sent to the model showing it (API server included);
 * - memory after sync (heap after a GC, and RSS);
 * - event-loop delay max during sync, during events, and while a 100k-label pod arrives;
 * - API requests per minute in steady state (lists and watches counted by the source).
 * Then the same objects as the local source's files, with the 50 MB ConfigMap and the 100k-label
 * pod of finding 11 dropped in, for the event-loop delay of the local path.
 * It needs no bench lab and no system: `npm run bench -- --scenario scale-k8s`.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, readdirSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { startKubeApiServer, type KubeApiServer } from '../../agent/lab/kube/index.js';
import { BenchError } from '../errors.js';
import { WORK_DIR } from '../lab-env.js';
import { ISSUE_SIZE, scaleManifests } from '../scale-manifests.js';
import type { Measurement, Scenario, ScenarioContext } from './scenario.js';

const PROBE = fileURLToPath(new URL('../discovery-probe.js', import.meta.url));
const DAEMONSET = fileURLToPath(new URL('../../../daemonset/', import.meta.url));
const AGENT_NODE = 'scale-node-1';

type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; spec?: Record<string, unknown>; status?: unknown; [k: string]: unknown };

/** A small HTTPS client for the API server: keep-alive, admin token, JSON. */
class Api {
  readonly #agent: https.Agent;
  readonly #base: URL;
  readonly #token: string;
  constructor(server: KubeApiServer) {
    this.#base = new URL(server.urls[0]!);
    this.#token = server.adminToken;
    this.#agent = new https.Agent({ keepAlive: true, maxSockets: 16, ca: server.caPem });
  }
  request(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; body: string }> {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = https.request(
        { host: this.#base.hostname, port: this.#base.port, path, method, agent: this.#agent, headers: { authorization: `Bearer ${this.#token}`, accept: 'application/json', ...(data ? { 'content-type': contentType, 'content-length': data.length } : {}) } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(data);
    });
  }
  async must(method: string, path: string, body?: unknown, contentType?: string): Promise<Obj> {
    const r = await this.request(method, path, body, contentType);
    if (r.status >= 300) throw new BenchError(`${method} ${path}: HTTP ${r.status} ${r.body.slice(0, 300)}`);
    return JSON.parse(r.body) as Obj;
  }
  close(): void {
    this.#agent.destroy();
  }
}

function collectionPath(o: Obj): string {
  const ns = o.metadata.namespace;
  const [group, version] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : ['', o.apiVersion];
  const plural = { Namespace: 'namespaces', Pod: 'pods', Service: 'services', EndpointSlice: 'endpointslices', AuthorizationPolicy: 'authorizationpolicies', ServiceAccount: 'serviceaccounts', ClusterRole: 'clusterroles', ClusterRoleBinding: 'clusterrolebindings', Role: 'roles', RoleBinding: 'rolebindings', CustomResourceDefinition: 'customresourcedefinitions', ConfigMap: 'configmaps' }[o.kind];
  if (plural === undefined) throw new BenchError(`no path for kind ${o.kind}`);
  const root = group === '' ? `/api/${version}` : `/apis/${group}/${version}`;
  return ns === undefined || o.kind === 'Namespace' || o.kind.startsWith('Cluster') || o.kind === 'CustomResourceDefinition' ? `${root}/${plural}` : `${root}/namespaces/${ns}/${plural}`;
}

/** Runs `fn` over `items`, `width` at a time. */
async function pool<T>(items: readonly T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

const yamlObjects = (text: string): Obj[] => parseAllDocuments(text).map((d) => d.toJS() as Obj).filter((o) => o !== null);

/** The issue's objects, plus an EndpointSlice per service as the endpoint-slice controller writes them. */
function issueObjects(): { namespaces: Obj[]; pods: Obj[]; services: Obj[]; slices: Obj[]; policies: Obj[] } {
  const all = [...scaleManifests(ISSUE_SIZE).values()].map((t) => parse(t) as Obj);
  const pods = all.filter((o) => o.kind === 'Pod');
  const services = all.filter((o) => o.kind === 'Service');
  const slices = services.map((s) => {
    const app = (s.spec!['selector'] as Record<string, string>)['app'];
    const members = pods.filter((p) => p.metadata.namespace === s.metadata.namespace && p.metadata.labels?.['app'] === app);
    return {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: `${s.metadata.name}-slice`, namespace: s.metadata.namespace, labels: { 'kubernetes.io/service-name': s.metadata.name } },
      addressType: 'IPv4',
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      endpoints: members.map((p) => ({
        addresses: [(p.status as { podIP: string }).podIP],
        conditions: { ready: true, serving: true, terminating: false },
        nodeName: p.spec!['nodeName'],
        targetRef: { kind: 'Pod', namespace: p.metadata.namespace, name: p.metadata.name },
      })),
    } as Obj;
  });
  // ClusterIPs are the API server's to allocate (198.19.128.1 is kubernetes.default's).
  for (const s of services) delete s.spec!['clusterIP'];
  return { namespaces: all.filter((o) => o.kind === 'Namespace'), pods, services, slices, policies: all.filter((o) => o.kind === 'AuthorizationPolicy') };
}

class Probe {
  readonly child: ChildProcess;
  readonly #waiters: { type: string; match: (m: Record<string, unknown>) => boolean; resolve: (m: Record<string, unknown>) => void }[] = [];
  constructor(config: object) {
    // WEFT_BENCH_PROBE_ARGS: extra node flags for the probe (e.g. --cpu-prof --cpu-prof-dir=DIR).
    const extra = (process.env['WEFT_BENCH_PROBE_ARGS'] ?? '').split(' ').filter((a) => a !== '');
    this.child = fork(PROBE, [JSON.stringify(config)], { execArgv: ['--expose-gc', ...extra], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (m: Record<string, unknown>) => {
      if (m['type'] === 'error') throw new BenchError(`discovery probe: ${String(m['message'])}`);
      const i = this.#waiters.findIndex((w) => w.type === m['type'] && w.match(m));
      if (i >= 0) this.#waiters.splice(i, 1)[0]!.resolve(m);
    });
  }
  next(type: string, timeoutMs = 120_000, match: (m: Record<string, unknown>) => boolean = () => true): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new BenchError(`discovery probe: no '${type}' within ${timeoutMs} ms`)), timeoutMs);
      this.#waiters.push({ type, match, resolve: (m) => (clearTimeout(timer), resolve(m)) });
    });
  }
  send(m: object): void {
    this.child.send(m);
  }
  async ask(cmd: string, reply: string): Promise<Record<string, unknown>> {
    const answer = this.next(reply);
    this.send({ cmd });
    return answer;
  }
  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    this.child.send({ cmd: 'stop' });
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await once(this.child, 'exit');
    clearTimeout(timer);
  }
}

const round = (n: number, digits = 2): number => Math.round(n * 10 ** digits) / 10 ** digits;
function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** A label value per event, so the probe knows when the model shows that exact change. */
const label = (i: number): string => `e${i}`;

function bigLabels(n: number): Record<string, string> {
  const labels: Record<string, string> = {};
  for (let i = 0; i < n; i++) labels[`label-${i}`] = `value-${i}`;
  return labels;
}

async function measureKube(ctx: ScenarioContext, values: Record<string, number>, details: Record<string, unknown>): Promise<void> {
  const server = await startKubeApiServer({ listen: [{ host: '127.0.0.1', port: 0 }] });
  const api = new Api(server);
  let probe: Probe | undefined;
  try {
    // The agent's RBAC and Weft's CRDs, as `kubectl apply -k daemonset/` would create them.
    const setup = [...yamlObjects(readFileSync(join(DAEMONSET, 'namespace.yaml'), 'utf8')), ...yamlObjects(readFileSync(join(DAEMONSET, 'rbac.yaml'), 'utf8'))];
    for (const f of readdirSync(join(DAEMONSET, 'crds')).filter((n) => n.startsWith('weft.dev_'))) setup.push(...yamlObjects(readFileSync(join(DAEMONSET, 'crds', f), 'utf8')));
    for (const o of setup) await api.must('POST', collectionPath(o), o);

    const objects = issueObjects();
    const createStart = Date.now();
    await pool(objects.namespaces, 16, async (o) => void (await api.must('POST', collectionPath(o), o)));
    await pool(objects.pods, 32, async (o) => {
      const { status, ...spec } = o;
      const created = await api.must('POST', collectionPath(o), spec);
      const podStatus = { ...(status as object), conditions: [{ type: 'Ready', status: 'True' }] };
      await api.must('PUT', `${collectionPath(o)}/${o.metadata.name}/status`, { ...created, status: podStatus });
    });
    await pool([...objects.services, ...objects.slices, ...objects.policies], 32, async (o) => void (await api.must('POST', collectionPath(o), o)));
    const createdMs = Date.now() - createStart;
    ctx.log(`  created ${objects.pods.length} pods, ${objects.services.length} services (+ slices), ${objects.policies.length} policies through the API in ${createdMs} ms`);
    details['createdThroughApiMs'] = createdMs;

    const kubeconfig = join(WORK_DIR, 'scale-k8s.kubeconfig');
    await mkdir(WORK_DIR, { recursive: true });
    await writeFile(kubeconfig, server.kubeconfig({ token: server.issueToken('weft-system', 'weft-agent'), user: 'weft-agent' }));
    probe = new Probe({ mode: 'kube', kubeconfig, node: AGENT_NODE });
    const synced = await probe.next('synced');
    ctx.log(`  synced in ${String(synced['syncMs'])} ms: ${String(synced['workloads'])} workloads, ${String(synced['services'])} services; heap ${String(synced['heapMiB'])} MiB, RSS ${String(synced['rssMiB'])} MiB; event loop max ${round(synced['eldMaxMs'] as number)} ms (held on CPU ${round(synced['busyMaxMs'] as number)} ms)`);
    values['initial sync'] = synced['syncMs'] as number;
    values['agent discovery heap after sync'] = synced['heapMiB'] as number;
    values['agent discovery RSS after sync'] = synced['rssMiB'] as number;
    values['event-loop delay max during sync'] = round(synced['eldMaxMs'] as number);
    values['event-loop held on CPU max during sync'] = round(synced['busyMaxMs'] as number);
    details['synced'] = synced;

    // Pod events: label changes, alternating between this node's pods and others'.
    const local = objects.pods.filter((p) => p.spec!['nodeName'] === AGENT_NODE);
    const remote = objects.pods.filter((p) => p.spec!['nodeName'] !== AGENT_NODE);
    const events = ctx.quick ? 60 : 300;
    await probe.ask('mark', 'marked');
    const e2e: number[] = [];
    for (let i = 0; i < events; i++) {
      const p = (i % 2 === 0 ? local : remote)[Math.floor(i / 2) % (i % 2 === 0 ? local.length : remote.length)]!;
      const key = `${p.metadata.namespace}/${p.metadata.name}`;
      const seen = probe.next('seen', 10_000, (m) => m['key'] === key);
      probe.send({ cmd: 'await', key, version: label(i) });
      const sent = Date.now();
      await api.must('PATCH', `${collectionPath(p)}/${p.metadata.name}`, { metadata: { labels: { version: label(i) } } }, 'application/merge-patch+json');
      e2e.push(((await seen)['at'] as number) - sent);
    }
    const afterEvents = await probe.ask('report', 'report');
    const stats = afterEvents['stats'] as { events: { recentMs: number[]; maxMs: number }; requests: { list: number; watch: number } };
    const applied = stats.events.recentMs.slice(-events);
    values['one pod event applied, median'] = round(quantile(applied, 0.5), 3);
    values['one pod event applied, p99'] = round(quantile(applied, 0.99), 3);
    values['one pod event, API write to model, median'] = quantile(e2e, 0.5);
    values['event-loop delay max during events'] = round(afterEvents['eldMaxMs'] as number);
    values['event-loop held on CPU max during events'] = round(afterEvents['busyMaxMs'] as number);
    ctx.log(`  ${events} pod events: applied in median ${values['one pod event applied, median']} ms, p99 ${values['one pod event applied, p99']} ms; write-to-model median ${values['one pod event, API write to model, median']} ms; event loop max ${values['event-loop delay max during events']} ms (held on CPU ${values['event-loop held on CPU max during events']} ms)`);

    // Finding 11 on the Kubernetes path: a 100k-label pod (2.2 MiB, under the 3 MiB request limit).
    await probe.ask('mark', 'marked');
    const big = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'many-labels', namespace: 'scale-0', labels: bigLabels(100_000) }, spec: { nodeName: AGENT_NODE, containers: [{ name: 'app' }] } } as Obj;
    const bigStatus = (await api.request('POST', collectionPath(big), big)).status;
    let refusal: unknown;
    // The API server refuses an object over 1.5 MiB itself (500, as etcd does): then nothing
    // reaches the agent, and there is no agent-side figure to take.
    for (let i = 0; i < 100 && refusal === undefined && bigStatus < 300; i++) {
      const r = await probe.ask('report', 'report');
      refusal = (r['refusals'] as { object: string }[]).find((x) => x.object === 'Pod scale-0/many-labels');
      if (refusal === undefined) await new Promise((resolve) => setTimeout(resolve, 50));
      else {
        values['event-loop delay max, 100k-label pod'] = round(r['eldMaxMs'] as number);
        values['event-loop held on CPU max, 100k-label pod'] = round(r['busyMaxMs'] as number);
      }
    }
    // About the largest pod that reaches an agent through an API server: 1.3 MiB (50k labels),
    // just under the 1.5 MiB an object may have, on this agent's node (kept with every label).
    await probe.ask('mark', 'marked');
    const largest = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'largest-legal', namespace: 'scale-0', labels: { ...bigLabels(50_000), version: 'largest' } }, spec: { nodeName: AGENT_NODE, containers: [{ name: 'app' }] } } as Obj;
    const largestSeen = probe.next('seen', 30_000, (m) => m['key'] === 'scale-0/largest-legal');
    probe.send({ cmd: 'await', key: 'scale-0/largest-legal', version: 'largest' });
    const largestCreated = await api.request('POST', collectionPath(largest), largest);
    const largestStatus = largestCreated.status;
    if (largestStatus < 300) {
      // Running and Ready with an IP, as the kubelet reports it: then it is a workload.
      const ip = '198.18.255.250';
      const status = { phase: 'Running', podIP: ip, podIPs: [{ ip }], conditions: [{ type: 'Ready', status: 'True' }] };
      await api.must('PUT', `${collectionPath(largest)}/largest-legal/status`, { ...(JSON.parse(largestCreated.body) as object), status });
      await largestSeen;
      const r = await probe.ask('report', 'report');
      values['event-loop delay max, 1.3 MiB pod (50k labels)'] = round(r['eldMaxMs'] as number);
      values['event-loop held on CPU max, 1.3 MiB pod (50k labels)'] = round(r['busyMaxMs'] as number);
    }
    ctx.log(`  1.3 MiB pod (50k labels): API ${largestStatus}; event loop max ${values['event-loop delay max, 1.3 MiB pod (50k labels)'] ?? '?'} ms (held on CPU ${values['event-loop held on CPU max, 1.3 MiB pod (50k labels)'] ?? '?'} ms)`);
    details['manyLabelsPod'] = { createStatus: bigStatus, refusal };
    const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'huge', namespace: 'scale-0' }, data: { blob: 'x'.repeat(50 * 1024 * 1024) } } as Obj;
    details['configMap50MB'] = { createStatus: (await api.request('POST', collectionPath(cm), cm)).status, note: 'the agent does not watch ConfigMaps; the API server refuses a body over 3 MiB (413), as Kubernetes does' };
    ctx.log(`  100k-label pod: API ${bigStatus}${bigStatus >= 300 ? ' (refused by the API server, as Kubernetes does)' : ''}, refused by the source: ${refusal !== undefined}; event loop max ${values['event-loop delay max, 100k-label pod'] ?? '?'} ms; 50 MB ConfigMap: API ${(details['configMap50MB'] as { createStatus: number }).createStatus}`);

    // Steady state: nothing changes; count what the source asks.
    const windowMs = ctx.quick ? 15_000 : 60_000;
    const r0 = (await probe.ask('report', 'report'))['stats'] as { requests: { list: number; watch: number } };
    await new Promise((resolve) => setTimeout(resolve, windowMs));
    const r1 = (await probe.ask('report', 'report'))['stats'] as { requests: { list: number; watch: number } };
    const perMinute = (n: number): number => round((n * 60_000) / windowMs, 1);
    values['API requests per minute, steady state'] = perMinute(r1.requests.list - r0.requests.list + r1.requests.watch - r0.requests.watch);
    values['API lists per minute, steady state'] = perMinute(r1.requests.list - r0.requests.list);
    details['requests'] = { beforeWindow: r0.requests, afterWindow: r1.requests, windowMs, atSync: stats.requests };
    ctx.log(`  steady state over ${windowMs / 1000} s: ${values['API requests per minute, steady state']} requests/min (${values['API lists per minute, steady state']} lists/min)`);
  } finally {
    await probe?.stop();
    api.close();
    await server.stop();
    await rm(join(WORK_DIR, 'scale-k8s.kubeconfig'), { force: true });
  }
}

async function measureLocal(ctx: ScenarioContext, values: Record<string, number>, details: Record<string, unknown>): Promise<void> {
  const dir = join(WORK_DIR, 'scale-k8s-local');
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const files = [...scaleManifests(ISSUE_SIZE)];
  for (let i = 0; i < files.length; i += 64) await Promise.all(files.slice(i, i + 64).map(([name, text]) => writeFile(join(dir, name), text)));
  const probe = new Probe({ mode: 'local', dir });
  try {
    const synced = await probe.next('synced');
    values['local source: initial read'] = synced['syncMs'] as number;
    await probe.ask('mark', 'marked');
    // Finding 11: a 50 MB ConfigMap (500k keys) and a pod with 100k labels dropped in.
    const keys: string[] = [];
    for (let i = 0; i < 500_000; i++) keys.push(`  key-${i}: ${'v'.repeat(90)}`);
    await writeFile(join(dir, 'configmap.scale-0.huge.yaml'), `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: huge\n  namespace: scale-0\ndata:\n${keys.join('\n')}\n`);
    const labels = Object.entries(bigLabels(100_000)).map(([k, v]) => `    ${k}: ${v}`).join('\n');
    await writeFile(join(dir, 'pod.scale-0.many-labels.yaml'), `apiVersion: v1\nkind: Pod\nmetadata:\n  name: many-labels\n  namespace: scale-0\n  labels:\n${labels}\nspec:\n  nodeName: ${AGENT_NODE}\n  containers: [{name: app}]\n`);
    await probe.ask('refresh', 'refreshed');
    const r = await probe.ask('report', 'report');
    values['local source: event-loop delay max, 50 MB ConfigMap + 100k-label pod'] = round(r['eldMaxMs'] as number);
    values['local source: event-loop held on CPU max, 50 MB ConfigMap + 100k-label pod'] = round(r['busyMaxMs'] as number);
    details['localRefusals'] = r['refusals'];
    // And a small change after them (finding 11: 3.5 s before).
    const key = 'scale-1/app-3-3';
    const seen = probe.next('seen', 30_000, (m) => m['key'] === key);
    probe.send({ cmd: 'await', key, version: 'changed' });
    const start = Date.now();
    const podFile = files.find(([n]) => n === 'pod.scale-1.app-3-3.yaml')![1].replace(/version: v\d/, 'version: changed');
    await writeFile(join(dir, 'pod.scale-1.app-3-3.yaml'), podFile);
    await probe.ask('refresh', 'refreshed');
    values['local source: one small file change to model'] = ((await seen)['at'] as number) - start;
    ctx.log(`  local source: read ${files.length} files in ${values['local source: initial read']} ms; with the 50 MB ConfigMap and the 100k-label pod the event loop max was ${values['local source: event-loop delay max, 50 MB ConfigMap + 100k-label pod']} ms, held on CPU ${values['local source: event-loop held on CPU max, 50 MB ConfigMap + 100k-label pod']} ms (${(r['refusals'] as unknown[]).length} refusals); a small change after them: ${values['local source: one small file change to model']} ms`);
  } finally {
    await probe.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

export const scaleK8s: Scenario = {
  name: 'scale-k8s',
  systems: ['weft'],
  usesSystem: false,
  needsLab: false,
  metrics: [
    { metric: 'initial sync', unit: 'ms', better: 'lower' },
    { metric: 'one pod event applied, median', unit: 'ms', better: 'lower' },
    { metric: 'one pod event applied, p99', unit: 'ms', better: 'lower' },
    { metric: 'one pod event, API write to model, median', unit: 'ms', better: 'lower' },
    { metric: 'agent discovery heap after sync', unit: 'MiB', better: 'lower' },
    { metric: 'agent discovery RSS after sync', unit: 'MiB', better: 'lower' },
    { metric: 'event-loop delay max during sync', unit: 'ms', better: 'lower' },
    { metric: 'event-loop delay max during events', unit: 'ms', better: 'lower' },
    { metric: 'event-loop delay max, 100k-label pod', unit: 'ms', better: 'lower' },
    { metric: 'event-loop held on CPU max during sync', unit: 'ms', better: 'lower' },
    { metric: 'event-loop held on CPU max during events', unit: 'ms', better: 'lower' },
    { metric: 'event-loop held on CPU max, 100k-label pod', unit: 'ms', better: 'lower' },
    { metric: 'event-loop delay max, 1.3 MiB pod (50k labels)', unit: 'ms', better: 'lower' },
    { metric: 'event-loop held on CPU max, 1.3 MiB pod (50k labels)', unit: 'ms', better: 'lower' },
    { metric: 'API requests per minute, steady state', unit: 'req/min', better: 'lower' },
    { metric: 'API lists per minute, steady state', unit: 'req/min', better: 'lower' },
    { metric: 'local source: initial read', unit: 'ms', better: 'lower' },
    { metric: 'local source: event-loop delay max, 50 MB ConfigMap + 100k-label pod', unit: 'ms', better: 'lower' },
    { metric: 'local source: event-loop held on CPU max, 50 MB ConfigMap + 100k-label pod', unit: 'ms', better: 'lower' },
    { metric: 'local source: one small file change to model', unit: 'ms', better: 'lower' },
  ],
  async measure(_system, ctx: ScenarioContext): Promise<Measurement> {
    const values: Record<string, number> = {};
    const details: Record<string, unknown> = {};
    await measureKube(ctx, values, details);
    await measureLocal(ctx, values, details);
    return { values, details };
  },
};
