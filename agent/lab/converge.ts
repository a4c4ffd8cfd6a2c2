/**
 * Makes a running lab match a cluster spec: the one engine behind `up`, `apply` and `delete`.
 * Phases, in this order so the agents never see a pod that is not there:
 *   plan      node indexes, ClusterIPs, pod IPs; fails before anything changes
 *   withdraw  manifests without the pods that are recreated under their name (agents release them)
 *   teardown  their processes and namespaces
 *   build     fabric, new nodes (+ agents), new pods (netns, veth, hosts file, processes)
 *   publish   service rules on every node, hosts files of every pod, the full manifests
 *   retire    pods that are no longer wanted at all (a Deployment's old template, a deleted pod):
 *             withdrawn, their endpoints unpublished, then torn down; only now, so that a
 *             Deployment's new pods serve before its old ones go (a service keeps an endpoint)
 */
import { waitForCapture } from './capture-wait.js';
import { prepareLabCa, startLabCa, agentCaArgs } from './ca.js';
import { ensureLabPrometheus, writeLabPrometheusTargets, type WaypointTarget } from './prometheus.js';
import { GATEWAY_NAME_LABEL } from '../discovery/types.js';
import { ensureLabDashboard } from '../dashboard/lab.js';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { WeftError } from '../errors.js';
import { allocateClusterIp, allocateExternalIp, allocateNodeIndex, allocatePodHost, EXTERNAL_CIDR, fabricIp, podCidr, podIp } from './addressing.js';
import { ensureInternet, installExternalRules, type ExternalFrontend } from './internet.js';
import { renderManifests, syncManifestDir } from './manifests.js';
import {
  addNetns,
  createFabric,
  deleteNetns,
  hostVethName,
  listNetns,
  restoreIptables,
  saveIptables,
  unwirePod,
  wireNodes,
  wirePods,
} from './network.js';
import { labPrefix, nodeRunDir, agentLogFile, etcNetnsDir, labPaths, nodeNetns, podLogFile, podNetns, REPO_DIR, WEFT_MAIN } from './paths.js';
import { netnsPids, refAlive, startInNetns, stopProcesses } from './procs.js';
import { inNetns } from './run.js';
import { expand } from './expand.js';
import { hostsFile, portView, RESOLV_CONF, serviceRules, type EndpointCandidate, type ServiceView } from './services.js';
import { clusterSpec, selects, stableJson, type ClusterSpec, type ContainerRun, type DesiredPod, type SpecOptions } from './spec.js';
import type { ManifestObject } from '../discovery/types.js';
import { writeState, type ContainerProc, type LabState, type NodeState, type PodState, type ServiceState } from './state.js';

export interface ConvergeOptions {
  logger: Logger;
  /** How long a pod may take to run and listen on its declared ports. */
  readyTimeoutMs: number;
  startAgents: boolean;
  /** Run the lab's Prometheus (when agents run). */
  prometheus: boolean;
  /** Start agents that are not running on existing nodes too (`up`), not only on new nodes. */
  restartAgents: boolean;
  /** How the spec was built (the lab's waypoint options): the state's objects are read the same way. */
  specOptions: SpecOptions;
}

export interface ChangeSummary {
  /** `pod/default/details-v1` style names. */
  created: string[];
  configured: string[];
  unchanged: string[];
  deleted: string[];
  /** When the agents' manifests were last written (epoch ms), for reading their refusals after. */
  publishedAt?: number;
  /** What the agents refused after converging (filled by labApply). */
  refused?: AgentRefusal[];
}

export interface AgentRefusal {
  node: string;
  object: string;
  code: string;
  reason: string;
}

const STOP_GRACE_MS = 3_000;
/** Lab agents drain for this long on SIGTERM (a cluster's default is the agent's, 25 s): tests stay short. */
export const LAB_DRAIN_SECONDS = 5;
/**
 * Node flags every lab agent runs with, as daemonset/agent.yaml's command does: --single-threaded
 * (no V8 worker threads) cut the agents' CPU per GB in every measured pair (bench/README.md,
 * third round; docs/architecture.md "Agent runtime flags").
 */
export const AGENT_NODE_FLAGS: readonly string[] = ['--single-threaded'];

export async function converge(state: LabState, spec: ClusterSpec, options: ConvergeOptions): Promise<ChangeSummary> {
  const log = options.logger;
  const paths = labPaths(state.name);
  await mkdir(paths.manifestsDir, { recursive: true });
  await mkdir(paths.logsDir, { recursive: true });
  const summary = summarize(state, spec);

  // ---- plan
  const nodes = new Map(state.nodes.map((n) => [n.name, n]));
  const freshNodes: NodeState[] = [];
  for (const name of spec.nodes) {
    if (nodes.has(name)) continue;
    const index = allocateNodeIndex(new Set([...nodes.values()].map((n) => n.index)));
    if (index === undefined) throw new WeftError('WEFT_ERR_LAB', `no node index left for node ${name} (the lab has at most 254 nodes)`);
    const node: NodeState = {
      name,
      index,
      netns: nodeNetns(state.name, name),
      fabricIP: fabricIp(index),
      podCIDR: podCidr(index),
      lastHost: 1,
      agent: undefined,
      agentLog: agentLogFile(state.name, name),
    };
    nodes.set(name, node);
    freshNodes.push(node);
  }
  const services = planServices(state, spec);

  const keep: PodState[] = [];
  const stop: PodState[] = [];
  const retire: PodState[] = [];
  for (const pod of state.pods) {
    const want = spec.pods.get(`${pod.namespace}/${pod.name}`);
    const same = want !== undefined && want.specHash === pod.specHash && want.node === pod.node;
    const alive = pod.procs.every(refAlive);
    if (same && alive) keep.push(pod);
    else if (want === undefined && alive) retire.push(pod);
    else stop.push(pod);
  }
  // What the retiring pods were (labels, ports, their Pod object): from the objects as they were.
  const before = retire.length === 0 ? undefined : clusterSpec(state.objects, () => 'state.json', options.specOptions).spec;
  const retiring = new Map<string, DesiredPod>();
  const retiringObjects: ManifestObject[] = [];
  for (const p of retire) {
    const key = `${p.namespace}/${p.name}`;
    const was = before?.pods.get(key);
    if (was !== undefined) retiring.set(key, was);
    for (const o of [...(before?.objects.values() ?? []), ...(before?.derived.values() ?? [])]) {
      if (o.kind === 'Pod' && o.metadata.name === p.name && (o.metadata.namespace ?? 'default') === p.namespace) retiringObjects.push(o);
    }
  }
  const kept = new Set(keep.map((p) => `${p.namespace}/${p.name}`));
  const start: { want: DesiredPod; pod: PodState }[] = [];
  const usedHosts = new Map<string, Set<number>>();
  for (const p of [...keep, ...retire]) {
    const host = Number(p.ip.split('.')[3]);
    usedHosts.set(p.node, (usedHosts.get(p.node) ?? new Set()).add(host));
  }
  for (const want of spec.pods.values()) {
    if (kept.has(want.key)) continue;
    const node = nodes.get(want.node)!;
    const used = usedHosts.get(node.name) ?? new Set<number>();
    const host = allocatePodHost(used, node.lastHost);
    if (host === undefined) throw new WeftError('WEFT_ERR_LAB', `node ${node.name} has no pod address left in ${node.podCIDR}`);
    used.add(host);
    usedHosts.set(node.name, used);
    node.lastHost = host;
    start.push({
      want,
      pod: {
        name: want.name,
        namespace: want.namespace,
        node: node.name,
        ip: podIp(node.index, host),
        netns: podNetns(state.name, want.namespace, want.name),
        hostVeth: hostVethName(host),
        specHash: want.specHash,
        procs: [],
        log: podLogFile(state.name, want.namespace, want.name),
      },
    });
  }

  // ---- withdraw: the agents stop handling pods before their namespaces go.
  state.objects = [...spec.objects.values()];
  state.services = services;
  state.pods = [...keep, ...retire];
  const published = (): ManifestObject[] => [...state.objects, ...spec.derived.values(), ...retiringObjects.filter((o) => state.pods.some((p) => p.name === o.metadata.name && p.namespace === o.metadata.namespace))];
  await publishManifests(state, published());

  // ---- teardown
  await Promise.all(stop.map((pod) => teardownPod(pod, nodes.get(pod.node), log)));

  // ---- build: fabric and nodes
  const existing = new Set(await listNetns());
  if (!existing.has(state.fabricNetns)) {
    await addNetns([state.fabricNetns]);
    await createFabric(state.fabricNetns);
  }
  state.nodes = [...nodes.values()].sort((a, b) => a.index - b.index);
  if (freshNodes.length > 0) {
    await removeStrays(freshNodes.map((n) => n.netns), existing);
    await addNetns(freshNodes.map((n) => n.netns));
    await wireNodes(state.fabricNetns, freshNodes, state.nodes);
    log.info({ nodes: freshNodes.map((n) => n.name) }, 'nodes wired');
  }
  await ensureInternet(state, freshNodes);
  await writeState(state);
  if (options.startAgents) {
    await prepareLabCa(state);
    // `up` (re)starts a CA that is not running; `apply` does not (a test may have stopped it
    // with `lab stop-ca`: bringing it back silently would hide what it tests).
    if (!refAlive(state.ca) && (state.ca === undefined || options.restartAgents)) {
      state.ca = await startLabCa(state);
      state.caStopped = false;
    }
    // Prometheus (prometheus.ts): targets follow state.nodes; (re)started when it does not run.
    if (options.prometheus) state.prometheus = await ensureLabPrometheus(state, waypointTargets(state, spec));
    if (options.prometheus) state.dashboard = await ensureLabDashboard(state);
    const fresh = new Set(freshNodes.map((n) => n.name));
    await Promise.all(
      state.nodes
        .filter((n) => (fresh.has(n.name) || options.restartAgents) && !refAlive(n.agent))
        .map(async (n) => {
          n.agent = await startAgent(state, n);
        }),
    );
  }

  // ---- build: pods
  const failures: string[] = [];
  // A Deployment whose new pods did not start keeps its old ones (as maxUnavailable 0 would).
  const failedOwners = new Set<string>();
  if (start.length > 0) {
    const pods = start.map((s) => s.pod);
    await removeStrays(pods.map((p) => p.netns), existing);
    await addNetns(pods.map((p) => p.netns));
    await wirePods(pods, nodes);
    const planned = serviceViewsFor(state, [...keep, ...retire, ...pods], spec, retiring);
    await Promise.all(pods.map((p) => writeNetnsEtc(state.name, p, planned)));
    // A waypoint is ready only once the CA signed its certificate, and the CA signs for service
    // accounts of pods it sees on the asking node: its pod is published (Pending) before it starts.
    const early = start.filter((s) => s.want.labels[GATEWAY_NAME_LABEL] !== undefined).map((s) => s.pod);
    if (early.length > 0) await publishManifests(state, published(), early);
    const results = await Promise.allSettled(start.map((s) => startPod(state, s.pod, s.want, options)));
    for (let i = 0; i < start.length; i++) {
      const r = results[i]!;
      const { pod } = start[i]!;
      if (r.status === 'fulfilled') {
        state.pods.push(pod);
        continue;
      }
      failures.push((r.reason as Error).message);
      if (start[i]!.want.owner !== undefined) failedOwners.add(start[i]!.want.owner!);
      // Not running: not in the lab. Its object goes too, so state.json says what really is.
      await teardownPod(pod, nodes.get(pod.node), log);
      state.objects = state.objects.filter((o) => !(o.kind === 'Pod' && o.metadata.name === pod.name && o.metadata.namespace === pod.namespace));
    }
    state.pods.sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
  }

  // ---- publish
  await publishServices(state, spec, retiring);
  await publishManifests(state, published());
  await writeState(state);

  // ---- retire
  const retired = retire.filter((p) => {
    const owner = retiring.get(`${p.namespace}/${p.name}`)?.owner;
    return owner === undefined || !failedOwners.has(owner);
  });
  if (retired.length > 0) {
    const gone = new Set(retired);
    state.pods = state.pods.filter((p) => !gone.has(p));
    await publishServices(state, spec, retiring);
    await publishManifests(state, published());
    await writeState(state);
    await Promise.all(retired.map((pod) => teardownPod(pod, nodes.get(pod.node), log)));
  }
  // The waypoint pods that run now are what Prometheus scrapes besides the agents.
  if (options.startAgents && options.prometheus) await writeLabPrometheusTargets(state, waypointTargets(state, spec));
  // A scan that starts after this has read what was just written.
  summary.publishedAt = Date.now();
  if (failures.length > 0) {
    throw new WeftError('WEFT_ERR_LAB', `${failures.length} pod(s) did not start:\n${failures.join('\n')}`);
  }
  if (options.startAgents) await waitForCapture(state, options.readyTimeoutMs);
  return summary;
}

function summarize(state: LabState, spec: ClusterSpec): ChangeSummary {
  const before = new Map(state.objects.map((o) => [nameOf(o), stableJson(o)]));
  const summary: ChangeSummary = { created: [], configured: [], unchanged: [], deleted: [] };
  const after = new Set<string>();
  for (const o of spec.objects.values()) {
    const name = nameOf(o);
    after.add(name);
    const old = before.get(name);
    if (old === undefined) summary.created.push(name);
    else if (old === stableJson(o)) summary.unchanged.push(name);
    else summary.configured.push(name);
  }
  for (const name of before.keys()) if (!after.has(name)) summary.deleted.push(name);
  return summary;
}

/** `pod/default/details-v1`, `namespace/outside`: how apply and delete name objects. */
export function nameOf(o: { kind: string; metadata: { name: string; namespace?: string } }): string {
  const ns = o.metadata.namespace;
  return ns === undefined ? `${o.kind.toLowerCase()}/${o.metadata.name}` : `${o.kind.toLowerCase()}/${ns}/${o.metadata.name}`;
}

/** ClusterIPs: the manifest's, else the one the service already has, else the lowest free one. */
function planServices(state: LabState, spec: ClusterSpec): ServiceState[] {
  const previous = new Map(state.services.map((s) => [`${s.namespace}/${s.name}`, s.clusterIP]));
  const previousExternal = new Map(state.services.map((s) => [`${s.namespace}/${s.name}`, s.externalIP]));
  const used = new Set<string>();
  for (const svc of spec.services.values()) {
    if (svc.clusterIP !== undefined && svc.clusterIP !== 'None') used.add(svc.clusterIP);
  }
  const out: ServiceState[] = [];
  const pending: ServiceState[] = [];
  for (const svc of spec.services.values()) {
    const entry: ServiceState = { name: svc.name, namespace: svc.namespace, clusterIP: undefined };
    out.push(entry);
    if (svc.clusterIP === 'None') continue;
    if (svc.clusterIP !== undefined) {
      entry.clusterIP = svc.clusterIP;
      continue;
    }
    const old = previous.get(svc.key);
    if (old !== undefined && !used.has(old)) {
      entry.clusterIP = old;
      used.add(old);
    } else {
      pending.push(entry);
    }
  }
  for (const entry of pending) {
    const vip = allocateClusterIp(used);
    if (vip === undefined) throw new WeftError('WEFT_ERR_LAB', 'the service range has no free ClusterIP left');
    entry.clusterIP = vip;
    used.add(vip);
  }
  // LoadBalancer Services keep their external address while they exist; new ones get the lowest free.
  const balanced = out.filter((e) => spec.services.get(`${e.namespace}/${e.name}`)?.type === 'LoadBalancer');
  const usedExternal = new Set<string>();
  for (const e of balanced) {
    const old = previousExternal.get(`${e.namespace}/${e.name}`);
    if (old !== undefined) {
      e.externalIP = old;
      usedExternal.add(old);
    }
  }
  for (const e of balanced) {
    if (e.externalIP !== undefined) continue;
    const ip = allocateExternalIp(usedExternal);
    if (ip === undefined) throw new WeftError('WEFT_ERR_LAB', `no external address left in ${EXTERNAL_CIDR} for service ${e.namespace}/${e.name}`);
    e.externalIP = ip;
    usedExternal.add(ip);
  }
  return out;
}

function waypointTargets(state: LabState, spec: ClusterSpec): WaypointTarget[] {
  return state.pods
    .filter((p) => spec.pods.get(`${p.namespace}/${p.name}`)?.labels[GATEWAY_NAME_LABEL] !== undefined)
    .map((p) => ({ pod: p.name, namespace: p.namespace, node: p.node, ip: p.ip }));
}

/** Service views with the given pods as the ready ones (`alsoPods`: pods not in the spec that still serve). */
export function serviceViewsFor(state: LabState, ready: readonly PodState[], spec: ClusterSpec, alsoPods?: ReadonlyMap<string, DesiredPod>): ServiceView[] {
  const vip = new Map(state.services.map((s) => [`${s.namespace}/${s.name}`, s.clusterIP]));
  const candidates: (EndpointCandidate & { key: string })[] = [];
  for (const p of ready) {
    const key = `${p.namespace}/${p.name}`;
    const want = spec.pods.get(key) ?? alsoPods?.get(key);
    if (want === undefined) continue;
    candidates.push({ key, name: p.name, namespace: p.namespace, ip: p.ip, labels: want.labels, namedPorts: want.namedPorts });
  }
  const views: ServiceView[] = [];
  for (const svc of spec.services.values()) {
    const pods = candidates.filter((c) => c.namespace === svc.namespace && selects(svc.selector, c.labels));
    views.push({
      key: svc.key,
      name: svc.name,
      namespace: svc.namespace,
      clusterIP: vip.get(svc.key),
      ports: svc.ports.map((port) => portView(port, pods)),
    });
  }
  return views;
}

async function publishServices(state: LabState, spec: ClusterSpec, alsoPods?: ReadonlyMap<string, DesiredPod>): Promise<void> {
  const running = state.pods.filter((p) => p.procs.every(refAlive));
  const views = serviceViewsFor(state, running, spec, alsoPods);
  const present = new Set(await listNetns());
  const external = new Map(state.services.filter((s) => s.externalIP !== undefined).map((s) => [`${s.namespace}/${s.name}`, s.externalIP!]));
  await Promise.all([
    present.has(state.fabricNetns) ? installExternalRules(state.fabricNetns, externalFrontends(views, external)) : Promise.resolve(),
    ...state.nodes
      .filter((n) => present.has(n.netns))
      .map(async (n) => restoreIptables(n.netns, serviceRules(views, await saveIptables(n.netns)))),
    ...state.pods.map((p) => writeNetnsEtc(state.name, p, views)),
  ]);
}

/** The external address of each LoadBalancer Service, on every port, to its ready endpoints. */
export function externalFrontends(views: readonly ServiceView[], external: ReadonlyMap<string, string>): ExternalFrontend[] {
  const out: ExternalFrontend[] = [];
  for (const v of views) {
    const ip = external.get(v.key);
    if (ip === undefined) continue;
    for (const p of v.ports) {
      if (p.protocol !== 'TCP') continue;
      out.push({ service: v.key, ip, port: p.port, endpoints: p.endpoints.map((e) => ({ ip: e.ip, port: e.targetPort })) });
    }
  }
  return out;
}

/**
 * `objects`: the state's and the ones the lab derived from them (waypoints, Deployments' pods);
 * `pending`: pods being started that are published before they run (Pending, with their IP).
 */
async function publishManifests(state: LabState, objects: readonly ManifestObject[], pending: readonly PodState[] = []): Promise<void> {
  const podIps = new Map(state.pods.map((p) => [`${p.namespace}/${p.name}`, p.ip]));
  const pendingIps = new Map(pending.map((p) => [`${p.namespace}/${p.name}`, p.ip]));
  const clusterIps = new Map(state.services.map((s) => [`${s.namespace}/${s.name}`, s.clusterIP]));
  const externalIps = new Map(state.services.filter((s) => s.externalIP !== undefined).map((s) => [`${s.namespace}/${s.name}`, s.externalIP!]));
  await syncManifestDir(labPaths(state.name).manifestsDir, renderManifests({ objects, podIps, pendingIps, clusterIps, externalIps }));
}

/**
 * /etc/netns/<netns>/{hosts,resolv.conf}: `ip netns exec` bind-mounts them over /etc when a pod
 * process starts. Rewritten in place (same inode), so running pods see new services.
 */
async function writeNetnsEtc(lab: string, pod: PodState, services: readonly ServiceView[]): Promise<void> {
  const dir = etcNetnsDir(pod.netns);
  await mkdir(dir, { recursive: true });
  const hosts = hostsFile(lab, pod, services);
  const hostsPath = join(dir, 'hosts');
  if ((await readFile(hostsPath, 'utf8').catch(() => undefined)) !== hosts) await writeFile(hostsPath, hosts);
  const resolvPath = join(dir, 'resolv.conf');
  if ((await readFile(resolvPath, 'utf8').catch(() => undefined)) !== RESOLV_CONF) await writeFile(resolvPath, RESOLV_CONF);
}

async function teardownPod(pod: PodState, node: NodeState | undefined, log: Logger): Promise<void> {
  await stopProcesses(pod.procs, await netnsPids(pod.netns), STOP_GRACE_MS);
  await unwirePod(pod, node);
  await rm(etcNetnsDir(pod.netns), { recursive: true, force: true });
  log.info({ pod: `${pod.namespace}/${pod.name}` }, 'pod removed');
}

/**
 * Namespaces of the lab's names that the state does not know (left by an operation that failed
 * half-way): their processes are stopped and their veths deleted at once (a deleted namespace
 * frees its links only later, and the peer's name may be needed now), then they go.
 */
async function removeStrays(names: readonly string[], existing: ReadonlySet<string>): Promise<void> {
  const strays = names.filter((n) => existing.has(n));
  if (strays.length === 0) return;
  await Promise.all(
    strays.map(async (ns) => {
      await stopProcesses([], await netnsPids(ns), STOP_GRACE_MS);
      const links = await inNetns(ns, 'ip', ['-o', 'link', 'show', 'type', 'veth'], { allowFailure: true, step: `list the links of ${ns}` });
      for (const line of links.stdout.split('\n')) {
        const name = /^\d+: ([^@:]+)/.exec(line)?.[1];
        if (name !== undefined) await inNetns(ns, 'ip', ['link', 'del', name], { allowFailure: true, step: `delete ${name} in ${ns}` });
      }
    }),
  );
  await deleteNetns(strays);
}

/** The environment of a pod's process (and of `weft lab exec` in it): not the lab's own. */
export function podEnv(pod: PodState, container: ContainerRun | undefined): Record<string, string> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: process.env.HOME ?? '/root',
    HOSTNAME: pod.name,
    POD_NAME: pod.name,
    POD_NAMESPACE: pod.namespace,
    POD_IP: pod.ip,
    NODE_NAME: pod.node,
  };
  if (container !== undefined) {
    Object.assign(env, container.env);
    for (const [name, field] of Object.entries(container.fieldEnv ?? {})) {
      const value = fieldValue(pod, field);
      if (value !== undefined) env[name] = value;
    }
  }
  return env;
}

/** The downward API fields the lab knows (those the examples and waypoints use). */
function fieldValue(pod: PodState, field: string): string | undefined {
  switch (field) {
    case 'spec.nodeName': return pod.node;
    case 'metadata.name': return pod.name;
    case 'metadata.namespace': return pod.namespace;
    case 'status.podIP': return pod.ip;
    default: return undefined;
  }
}

/**
 * `node` means the Node that runs the lab (the one Weft was built and tested with), `weft` this
 * repository's CLI under it (dist/agent/cli/main.js). `$(VAR)` in the arguments expands from
 * `env` as Kubernetes expands it (`$$` escapes; an unknown name stays as written).
 */
export function resolveArgv(argv: readonly string[], env?: Readonly<Record<string, string>>): string[] {
  const expanded = env === undefined ? [...argv] : argv.map((a) => expand(a, env));
  if (expanded[0] === 'node') return [process.execPath, ...expanded.slice(1)];
  if (expanded[0] === 'weft') return [process.execPath, WEFT_MAIN, ...expanded.slice(1)];
  return expanded;
}

async function startPod(state: LabState, pod: PodState, want: DesiredPod, options: ConvergeOptions): Promise<void> {
  const procs: ContainerProc[] = [];
  pod.procs = procs;
  try {
    for (const c of want.containers) {
      const ref = await startInNetns(
        {
          what: `pod ${pod.namespace}/${pod.name} container ${c.name}`,
          netns: pod.netns,
          argv: resolveArgv(c.argv, podEnv(pod, c)),
          env: podEnv(pod, c),
          cwd: state.dir,
          log: pod.log,
        },
        { readyTimeoutMs: options.readyTimeoutMs, tcpPorts: c.tcpPorts, waitExec: true },
      );
      procs.push({ container: c.name, ...ref });
    }
  } catch (err) {
    await stopProcesses(procs, [], STOP_GRACE_MS);
    throw err;
  }
  options.logger.info({ pod: `${pod.namespace}/${pod.name}`, ip: pod.ip, node: pod.node }, 'pod running');
}

/**
 * Node/V8 flags for the lab's agents: WEFT_AGENT_NODE_FLAGS (space-separated) replaces the
 * default, so that a flag can be measured (`--trace-gc`, `--single-threaded`) without a rebuild.
 */
export function agentNodeFlags(): string[] {
  const given = process.env['WEFT_AGENT_NODE_FLAGS'];
  if (given !== undefined) return given.split(' ').filter((f) => f !== '');
  return [...AGENT_NODE_FLAGS];
}

/**
 * Agents are started and recorded, not waited for: whether an agent keeps running is its own
 * business (`weft lab status` shows it, its log says why).
 */
export async function startAgent(state: LabState, node: NodeState): Promise<NodeState['agent']> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: process.env.HOME ?? '/root',
  };
  for (const [k, v] of Object.entries(process.env)) if (k.startsWith('WEFT_') && v !== undefined) env[k] = v;
  return startInNetns(
    {
      what: `agent of node ${node.name}`,
      netns: node.netns,
      argv: [
        process.execPath, ...agentNodeFlags(), WEFT_MAIN, 'agent', '--node', node.name, '--manifests', labPaths(state.name).manifestsDir, ...agentCaArgs(state.name, node),
        '--pod-netns-prefix', `${labPrefix(state.name)}pod-`,
        // The node's address as its pods see it (Calico-like routing: the uplink's): kubelet probes come from it.
        '--node-ip', node.fabricIP,
        '--run-dir', nodeRunDir(state.name, node.name),
        '--drain-timeout', String(LAB_DRAIN_SECONDS),
      ],
      env,
      cwd: REPO_DIR,
      log: node.agentLog,
    },
    { readyTimeoutMs: 0, waitExec: false },
  );
}
