/**
 * `weft lab up --kubernetes`: the lab as a Kubernetes cluster (a test double of one, not a
 * distribution). The same fabric and node namespaces as the local lab, plus
 * - the lab's API server (agent/lab/kube/, `weft lab kube-apiserver`) on the fabric bridge's
 *   address and on this machine's loopback (for kubectl), with an admin kubeconfig in the state dir;
 * - the lab's Nodes as Node objects (spec.podCIDR), daemonset/'s Namespace, CRDs and RBAC applied
 *   through the API (so the shipped RBAC is what the agents and the CA get);
 * - one lab kubelet per node (kubelet.ts) and the EndpointSlice controller (endpointslice-controller.ts);
 * - the agents as pods the lab creates in the DaemonSet's place (weft-system/weft-agent-<node>,
 *   hostNetwork, service account weft-agent, a projected token of audience weft-ca bound to the
 *   pod that the kubelet requests and refreshes), running `weft agent --kubeconfig` with the
 *   weft-agent account's token; the CA runs `weft ca --kubeconfig` with weft-ca's, and
 *   authenticates agents by TokenReview;
 * - the manifests of DIR applied through the API, as kubectl would.
 * `apply`, `delete`, `status` and `exec` of such a lab go through the API too.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { AppsV1Api, CoreV1Api, CustomObjectsApi, DiscoveryV1Api, KubeConfig, KubernetesObjectApi, type KubernetesObject, type V1Pod } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { WeftError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ManifestObject } from '../discovery/types.js';
import { allocateNodeIndex, fabricIp, podCidr } from './addressing.js';
import { LAB_CA_PORT, LAB_CA_URL, LAB_CA_IP, labCaPaths } from './ca.js';
import { waitForCaptureOf } from './capture-wait.js';
import { nameOf, podEnv } from './converge.js';
import { serviceViewsFromApi } from './kube-proxy.js';
import { kubePaths, LAB_API_FABRIC_URL, LAB_API_IP, LAB_API_LOOPBACK, LAB_API_PORT } from './kube-paths.js';
import type { LoadedManifests } from './load.js';
import { addNetns, createFabric, wireNodes } from './network.js';
import { CNI_PLUGIN } from './cni.js';
import { agentNodeFlags, LAB_DRAIN_SECONDS } from './converge.js';
import { labPaths, labPrefix, nodeRunDir, nodeNetns, podLogFile, podNetns, REPO_DIR, WEFT_MAIN } from './paths.js';
import { ensureLabPrometheus, labPrometheusStatus } from './prometheus.js';
import { ensureLabDashboard } from '../dashboard/lab.js';
import { refAlive, startInNetns, type ProcRef } from './procs.js';
import { stableJson, type ClusterSpec } from './spec.js';
import { writeFileAtomic, writeState, type LabState, type NodeState } from './state.js';
import type { ChangeSummary } from './converge.js';
import { collectRefusalsAfter, refusalNames } from './refusals.js';
import type { DeploymentStatus, IngressGatewayStatus, LabStatus, PodStatus, ServiceStatus } from './status.js';
import { deploymentPodName, planDeployment, type DeploymentObject } from './deployments.js';
import { ownedBy } from './deployment-controller.js';
import { isWaypointGateway } from '../waypoint/objects.js';
import { isIngressGatewayObject } from '../gateway/objects.js';
import { ensureInternet } from './internet.js';
import { METRICS_PORT, READINESS_PORT } from '../config.js';

export interface KubeLabOptions {
  logger: Logger;
  readyTimeoutMs: number;
  startAgents: boolean;
  prometheus: boolean;
}

const AGENT_NAMESPACE = 'weft-system';
const AGENT_ACCOUNT = 'weft-agent';
const CA_ACCOUNT = 'weft-ca';
/**
 * The lab's waypoint pods read the API as this account, bound to the shipped weft-waypoint
 * ClusterRole (on a cluster each waypoint has its own, bound by `weft waypoint generate`), so the
 * lab holds them to the waypoint's RBAC, not the agents'.
 */
const WAYPOINT_ACCOUNT = 'weft-waypoint';

function labWaypointAccount(): ManifestObject[] {
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: WAYPOINT_ACCOUNT, namespace: AGENT_NAMESPACE } },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'weft-lab-waypoint' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'weft-waypoint' },
      subjects: [{ kind: 'ServiceAccount', name: WAYPOINT_ACCOUNT, namespace: AGENT_NAMESPACE }],
    } as ManifestObject,
  ];
}
/**
 * The lab's ingress gateway pods read the API (and write their status) as this account, bound
 * to the shipped weft-gateway ClusterRole and, for what a gateway shares with a waypoint, to
 * weft-waypoint (a binding to a role that a daemonset/ does not define grants nothing).
 */
const GATEWAY_ACCOUNT = 'weft-gateway';

function labGatewayAccount(): ManifestObject[] {
  const binding = (role: string): ManifestObject => ({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: `weft-lab-gateway-${role}` },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
    subjects: [{ kind: 'ServiceAccount', name: GATEWAY_ACCOUNT, namespace: AGENT_NAMESPACE }],
  }) as ManifestObject;
  return [{ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: GATEWAY_ACCOUNT, namespace: AGENT_NAMESPACE } }, binding('weft-gateway'), binding('weft-waypoint')];
}
/** The agents' and CA's API credentials: as long-lived as the lab may reasonably run. */
const ACCOUNT_TOKEN_SECONDS = 7 * 24 * 3600;
const START_TIMEOUT_MS = 20_000;

export function agentPodName(node: string): string {
  return `weft-agent-${node}`;
}

// ---------------------------------------------------------------------------------------------
// Clients

export function adminKubeConfig(lab: string): KubeConfig {
  const kc = new KubeConfig();
  const file = kubePaths(lab).adminKubeconfig;
  if (!existsSync(file)) throw new WeftError('WEFT_ERR_LAB_NOT_FOUND', `lab ${lab} has no kubeconfig (${file}); is it up with --kubernetes?`);
  kc.loadFromFile(file);
  return kc;
}

function apiCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}

function apiMessage(err: unknown): string {
  const body = (err as { body?: unknown }).body;
  if (typeof body === 'string') {
    try {
      const status = JSON.parse(body) as { message?: string };
      if (status.message) return status.message;
    } catch {
      return body.slice(0, 300);
    }
  }
  return (err as Error).message;
}

/** A kubeconfig file for one user and one server, as `kubectl config` writes them. */
export async function writeKubeconfig(file: string, o: { server: string; caPem: string; user: string; token: string }): Promise<void> {
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'weft-lab', cluster: { server: o.server, 'certificate-authority-data': Buffer.from(o.caPem).toString('base64') } }],
    users: [{ name: o.user, user: { token: o.token } }],
    contexts: [{ name: 'weft-lab', context: { cluster: 'weft-lab', user: o.user } }],
    'current-context': 'weft-lab',
  };
  await writeFileAtomic(file, stringify(config));
}

// ---------------------------------------------------------------------------------------------
// Apply and delete through the API (what kubectl apply / delete do, minus the three-way merge)

const KIND_ORDER = ['Namespace', 'CustomResourceDefinition', 'ServiceAccount', 'ClusterRole', 'Role', 'ClusterRoleBinding', 'RoleBinding', 'ConfigMap', 'Secret', 'Service'];

function rank(kind: string): number {
  const i = KIND_ORDER.indexOf(kind);
  if (i >= 0) return i;
  return kind === 'Pod' ? KIND_ORDER.length + 1 : KIND_ORDER.length;
}

/** Whether every field `want` sets has that value in `have` (server defaults aside). */
export function subsetOf(want: unknown, have: unknown): boolean {
  if (Array.isArray(want)) return Array.isArray(have) && want.length === have.length && want.every((w, i) => subsetOf(w, have[i]));
  if (want !== null && typeof want === 'object') {
    if (have === null || typeof have !== 'object' || Array.isArray(have)) return false;
    return Object.entries(want).every(([k, v]) => subsetOf(v, (have as Record<string, unknown>)[k]));
  }
  return want === have;
}

function header(o: ManifestObject): KubernetesObject & { metadata: { name: string; namespace?: string } } {
  return { apiVersion: o.apiVersion, kind: o.kind, metadata: { name: o.metadata.name, ...(o.metadata.namespace !== undefined ? { namespace: o.metadata.namespace } : {}) } };
}

/** kubectl's record of what it applied: labels and annotations it set and later drops are removed. */
export const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

/** Labels or annotations after an apply: the object's own, minus what the last apply set and this one drops, plus this one's. */
function merged(existing: Record<string, string> | undefined, previous: Record<string, string> | undefined, next: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = { ...existing };
  for (const k of Object.keys(previous ?? {})) if (!(k in (next ?? {}))) delete out[k];
  return Object.assign(out, next);
}

/**
 * Creates or replaces each object (namespaces and accounts first), as `kubectl apply` would for
 * these kinds: the object's body is the manifest's, its labels and annotations are merged with
 * the three-way rule of kubectl's last-applied-configuration (which is written too, so kubectl
 * and the lab can take turns); fields the API server set (ClusterIPs, its labels) stay.
 */
export async function applyObjects(kc: KubeConfig, objects: readonly ManifestObject[]): Promise<ChangeSummary> {
  const api = KubernetesObjectApi.makeApiClient(kc);
  const summary: ChangeSummary = { created: [], configured: [], unchanged: [], deleted: [] };
  const sorted = [...objects].sort((a, b) => rank(a.kind) - rank(b.kind));
  const failures: string[] = [];
  for (const o of sorted) {
    const name = nameOf(o);
    const { status: _status, ...applied } = o as ManifestObject & { status?: unknown };
    const record = JSON.stringify(applied);
    const annotations = { ...applied.metadata.annotations, [LAST_APPLIED]: record };
    try {
      let existing: KubernetesObject | undefined;
      try {
        existing = await api.read(header(o));
      } catch (err) {
        if (apiCode(err) !== 404) throw err;
      }
      if (existing === undefined) {
        await api.create({ ...applied, metadata: { ...applied.metadata, annotations } } as KubernetesObject);
        summary.created.push(name);
        continue;
      }
      const have = existing as unknown as Record<string, unknown> & { metadata: { labels?: Record<string, string>; annotations?: Record<string, string> } & Record<string, unknown> };
      let previous: { metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> } } = {};
      try {
        previous = JSON.parse(have.metadata.annotations?.[LAST_APPLIED] ?? '{}') as typeof previous;
      } catch {
        // Not written by an apply: nothing is dropped.
      }
      const labels = merged(have.metadata.labels, previous.metadata?.labels, applied.metadata.labels);
      const mergedAnnotations = merged(have.metadata.annotations, previous.metadata?.annotations, annotations);
      const { metadata: _metadata, ...body } = applied;
      const same = stableJson(labels) === stableJson(have.metadata.labels ?? {}) && stableJson(mergedAnnotations) === stableJson(have.metadata.annotations ?? {}) && subsetOf(body, have);
      if (same) {
        summary.unchanged.push(name);
        continue;
      }
      await api.replace({ ...body, metadata: { ...have.metadata, labels, annotations: mergedAnnotations } } as KubernetesObject);
      summary.configured.push(name);
    } catch (err) {
      failures.push(`${name}: ${apiMessage(err)}`);
    }
  }
  if (failures.length > 0) {
    throw new WeftError('WEFT_ERR_LAB', `the lab's API server refused ${failures.length} object(s):\n  ${failures.join('\n  ')}\n(the others were applied)`);
  }
  return summary;
}

/** Deletes each object; waits until pods and namespaces are really gone (as kubectl delete --wait). */
export async function deleteObjects(kc: KubeConfig, objects: readonly ManifestObject[], timeoutMs: number): Promise<{ deleted: string[]; notFound: string[] }> {
  const api = KubernetesObjectApi.makeApiClient(kc);
  const deleted: string[] = [];
  const notFound: string[] = [];
  const gone: ManifestObject[] = [];
  for (const o of [...objects].sort((a, b) => rank(b.kind) - rank(a.kind))) {
    try {
      await api.delete(header(o));
      deleted.push(nameOf(o));
      gone.push(o);
    } catch (err) {
      if (apiCode(err) === 404) notFound.push(nameOf(o));
      else throw new WeftError('WEFT_ERR_LAB', `delete ${nameOf(o)}: ${apiMessage(err)}`, { cause: err });
    }
  }
  const deadline = Date.now() + timeoutMs;
  for (const o of gone) {
    for (;;) {
      const still = await api.read(header(o)).then(() => true, (err: unknown) => apiCode(err) !== 404);
      if (!still) break;
      if (Date.now() > deadline) throw new WeftError('WEFT_ERR_LAB', `${nameOf(o)} is still there ${timeoutMs} ms after its deletion (see the kubelet logs in ${labPaths('').logsDir.replace(/\/$/, '')}<lab>/logs)`);
      await delay(50);
    }
  }
  return { deleted, notFound };
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ---------------------------------------------------------------------------------------------
// Up

function podReady(p: V1Pod): boolean {
  return p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
}

/** Waits until the given pods (`ns/name`) are Ready, then until their agents captured them. */
export async function waitForPods(state: LabState, kc: KubeConfig, keys: readonly string[], timeoutMs: number): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  const deadline = Date.now() + timeoutMs;
  const want = new Set(keys);
  let pods: V1Pod[] = [];
  for (;;) {
    pods = (await core.listPodForAllNamespaces()).items;
    const notReady = pods.filter((p) => want.has(`${p.metadata?.namespace}/${p.metadata?.name}`) && !podReady(p));
    const missing = [...want].filter((k) => !pods.some((p) => `${p.metadata?.namespace}/${p.metadata?.name}` === k));
    if (notReady.length === 0 && missing.length === 0) break;
    if (Date.now() > deadline) {
      const why = [...missing.map((k) => `${k} (missing)`), ...notReady.map((p) => `${p.metadata?.namespace}/${p.metadata?.name} (${p.status?.phase ?? 'no status'}${p.status?.containerStatuses?.[0]?.state?.waiting?.message ? `: ${p.status.containerStatuses[0].state.waiting.message}` : ''})`)];
      throw new WeftError('WEFT_ERR_LAB', `pods not ready within ${timeoutMs} ms: ${why.join(', ')} (pod logs: ${labPaths(state.name).logsDir}/pod-*.log, kubelets: kubelet-*.log)`);
    }
    await delay(50);
  }
  if (!state.agents) return;
  const nodes = state.nodes.map((n) => ({ name: n.name, netns: n.netns }));
  const podsOnNodes = pods
    .filter((p) => p.spec?.hostNetwork !== true && p.status?.podIP !== undefined && p.metadata?.deletionTimestamp === undefined)
    .map((p) => ({ namespace: p.metadata?.namespace ?? 'default', name: p.metadata?.name ?? '', node: p.spec?.nodeName ?? '', ip: p.status!.podIP! }));
  await waitForCaptureOf(nodes, podsOnNodes, Math.max(1_000, deadline - Date.now()), agentLogOf(state.name, state.nodes[0]?.name ?? ''));
}

/**
 * Waits until each of the given Deployments (`ns/name`) has rolled out, as `kubectl rollout
 * status` would: its current template's pods Ready (and captured, through waitForPods) and no pod
 * of an older template left.
 */
export async function waitForDeployments(state: LabState, kc: KubeConfig, keys: readonly string[], timeoutMs: number): Promise<void> {
  if (keys.length === 0) return;
  const apps = kc.makeApiClient(AppsV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  const deadline = Date.now() + timeoutMs;
  const expected: string[] = [];
  const owners: { key: string; uid: string | undefined; pods: Set<string> }[] = [];
  for (const key of keys) {
    const [namespace, name] = key.split('/') as [string, string];
    const d = await apps.readNamespacedDeployment({ name, namespace });
    const planned = planDeployment(d as unknown as DeploymentObject);
    if ('problem' in planned) throw new WeftError('WEFT_ERR_LAB', `deployment ${key}: ${planned.problem}`);
    const pods = Array.from({ length: planned.plan.replicas }, (_, i) => `${namespace}/${deploymentPodName(name, planned.plan.hash, i)}`);
    expected.push(...pods);
    owners.push({ key, uid: d.metadata?.uid, pods: new Set(pods) });
  }
  await waitForPods(state, kc, expected, timeoutMs);
  for (;;) {
    const all = (await core.listPodForAllNamespaces()).items;
    const old = owners.flatMap((o) => all.filter((p) => ownedBy(p, o.uid) && !o.pods.has(`${p.metadata?.namespace}/${p.metadata?.name}`)).map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`));
    if (old.length === 0) return;
    if (Date.now() > deadline) throw new WeftError('WEFT_ERR_LAB', `the old pods ${old.join(', ')} are still there ${timeoutMs} ms after the rollout (see ${kubePaths(state.name).controllersLog})`);
    await delay(50);
  }
}

function deploymentKeys(objects: readonly ManifestObject[]): string[] {
  return objects.filter((o) => o.kind === 'Deployment' && o.apiVersion === 'apps/v1').map((o) => `${o.metadata.namespace ?? 'default'}/${o.metadata.name}`);
}

/**
 * The Deployments the waypoint controller makes for the waypoint Gateways among `objects` (same
 * namespace and name), once it has made them: `apply` of a Gateway waits for its waypoint.
 */
async function waypointDeploymentKeys(kc: KubeConfig, objects: readonly ManifestObject[], timeoutMs: number): Promise<string[]> {
  const keys = objects.filter((o) => isWaypointGateway(o) || isIngressGatewayObject(o)).map((o) => `${o.metadata.namespace ?? 'default'}/${o.metadata.name}`);
  const apps = kc.makeApiClient(AppsV1Api);
  const deadline = Date.now() + timeoutMs;
  for (const key of keys) {
    const [namespace, name] = key.split('/') as [string, string];
    while (!(await apps.readNamespacedDeployment({ name, namespace }).then(() => true, () => false))) {
      if (Date.now() > deadline) throw new WeftError('WEFT_ERR_LAB', `the waypoint controller made no Deployment ${key} within ${timeoutMs} ms (see ${labPaths('').logsDir.replace(/\/$/, '')}<lab>/logs/kube-controllers.log)`);
      await delay(50);
    }
  }
  return keys;
}

function agentLogOf(lab: string, node: string): string {
  return podLogFile(lab, AGENT_NAMESPACE, agentPodName(node));
}

/** Builds a fresh Kubernetes-mode lab (the caller has removed any earlier one and holds the lock). */
export async function kubeLabUp(state: LabState, spec: ClusterSpec, options: KubeLabOptions): Promise<ChangeSummary> {
  const log = options.logger;
  const paths = kubePaths(state.name);
  await mkdir(labPaths(state.name).logsDir, { recursive: true });
  await mkdir(paths.dir, { recursive: true });

  // ---- fabric and nodes, as the local lab wires them
  const nodes: NodeState[] = [];
  for (const name of spec.nodes) {
    const index = allocateNodeIndex(new Set(nodes.map((n) => n.index)));
    if (index === undefined) throw new WeftError('WEFT_ERR_LAB', 'the lab has at most 254 nodes');
    nodes.push({ name, index, netns: nodeNetns(state.name, name), fabricIP: fabricIp(index), podCIDR: podCidr(index), lastHost: 1, agent: undefined, agentLog: agentLogOf(state.name, name) });
  }
  await addNetns([state.fabricNetns]);
  await createFabric(state.fabricNetns);
  await addNetns(nodes.map((n) => n.netns));
  await wireNodes(state.fabricNetns, nodes, nodes);
  state.nodes = nodes;
  await ensureInternet(state);
  await writeState(state);
  log.info({ nodes: nodes.map((n) => n.name) }, 'nodes wired');

  // ---- API server
  const kube = state.kubernetes!;
  const api = await startApiServer(state);
  kube.apiserver = api.ref;
  kube.apiPort = api.port;
  const admin = adminKubeConfig(state.name);
  await writeState(state);
  const core = admin.makeApiClient(CoreV1Api);

  // ---- cluster objects: nodes, Weft's namespace, CRDs and RBAC as shipped
  for (const n of nodes) {
    await core.createNode({
      body: {
        metadata: { name: n.name, labels: { 'kubernetes.io/hostname': n.name, 'kubernetes.io/os': 'linux' } },
        spec: { podCIDR: n.podCIDR, podCIDRs: [n.podCIDR] },
      },
    });
  }
  await applyObjects(admin, [...(await shippedObjects()), ...labWaypointAccount(), ...labGatewayAccount()]);
  await ensureKubernetesEndpoints(admin);

  // ---- control plane roles
  await writeKubeconfig(paths.controlPlaneKubeconfig, { server: LAB_API_FABRIC_URL, caPem: kubeconfigCa(admin), user: 'weft-lab-admin', token: kubeconfigToken(admin) });
  kube.controllers = await startInNetns(
    { what: 'the lab controllers', netns: state.fabricNetns, argv: [process.execPath, WEFT_MAIN, 'lab', 'kube-controllers', '--kubeconfig', paths.controlPlaneKubeconfig, '--name', state.name], env: { ...baseEnv(), ...weftEnv() }, cwd: REPO_DIR, log: paths.controllersLog },
    { readyTimeoutMs: START_TIMEOUT_MS, waitExec: true },
  );
  for (const n of nodes) {
    kube.kubelets[n.name] = await startInNetns(
      {
        what: `the kubelet of ${n.name}`,
        netns: n.netns,
        argv: [process.execPath, WEFT_MAIN, 'lab', 'kubelet', '--name', state.name, '--node', n.name, '--kubeconfig', paths.controlPlaneKubeconfig, ...(await cniArgs(state, n, options.startAgents))],
        env: { ...baseEnv(), ...weftEnv() },
        cwd: REPO_DIR,
        log: paths.kubeletLog(n.name),
        networkOnly: true,
      },
      { readyTimeoutMs: START_TIMEOUT_MS, waitExec: true },
    );
  }
  await writeState(state);

  // ---- Weft: the CA and one agent pod per node, with their service accounts' credentials
  if (options.startAgents) {
    const caPem = kubeconfigCa(admin);
    for (const [account, file] of [[AGENT_ACCOUNT, paths.agentKubeconfig], [CA_ACCOUNT, paths.caKubeconfig], [WAYPOINT_ACCOUNT, paths.waypointKubeconfig], [GATEWAY_ACCOUNT, paths.gatewayKubeconfig]] as const) {
      const res = await core.createNamespacedServiceAccountToken({ name: account, namespace: AGENT_NAMESPACE, body: { spec: { audiences: [], expirationSeconds: ACCOUNT_TOKEN_SECONDS } } });
      if (!res.status?.token) throw new WeftError('WEFT_ERR_LAB', `TokenRequest for ${AGENT_NAMESPACE}/${account} returned no token`);
      await writeKubeconfig(file, { server: LAB_API_FABRIC_URL, caPem, user: `system:serviceaccount:${AGENT_NAMESPACE}:${account}`, token: res.status.token });
    }
    state.ca = await startKubeLabCa(state, admin);
    for (const n of nodes) await core.createNamespacedPod({ namespace: AGENT_NAMESPACE, body: agentPod(state, n) });
    await writeState(state);
    await waitForPods(state, admin, nodes.map((n) => `${AGENT_NAMESPACE}/${agentPodName(n.name)}`), options.readyTimeoutMs);
    if (options.prometheus) state.prometheus = await ensureLabPrometheus(state);
    if (options.prometheus) state.dashboard = await ensureLabDashboard(state);
  }

  // ---- the manifests of DIR, through the API
  const objects = [...spec.objects.values()];
  const summary = await applyObjects(admin, objects);
  await writeState(state);
  await waitForPods(state, admin, objects.filter((o) => o.kind === 'Pod').map((o) => `${o.metadata.namespace ?? 'default'}/${o.metadata.name}`), options.readyTimeoutMs);
  await waitForDeployments(state, admin, [...deploymentKeys(objects), ...(await waypointDeploymentKeys(admin, objects, options.readyTimeoutMs))], options.readyTimeoutMs);
  return summary;
}

function baseEnv(): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', HOME: process.env.HOME ?? '/root' };
}

function weftEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (k.startsWith('WEFT_') && v !== undefined) env[k] = v;
  return env;
}

function kubeconfigCa(kc: KubeConfig): string {
  const cluster = kc.getCurrentCluster();
  if (cluster?.caData) return Buffer.from(cluster.caData, 'base64').toString('utf8');
  throw new WeftError('WEFT_ERR_LAB', 'the admin kubeconfig has no certificate-authority-data');
}

function kubeconfigToken(kc: KubeConfig): string {
  const token = kc.getCurrentUser()?.token;
  if (!token) throw new WeftError('WEFT_ERR_LAB', 'the admin kubeconfig has no token');
  return token;
}

/** daemonset/'s Namespace, CRDs and RBAC, as `kubectl apply -k daemonset/` would create them. */
async function shippedObjects(): Promise<ManifestObject[]> {
  const { parseAllDocuments } = await import('yaml');
  const dir = join(REPO_DIR, 'daemonset');
  const files = [join(dir, 'namespace.yaml'), join(dir, 'rbac.yaml'), ...(await readdir(join(dir, 'crds'))).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml').map((f) => join(dir, 'crds', f))];
  const out: ManifestObject[] = [];
  for (const f of files) {
    for (const doc of parseAllDocuments(await readFile(f, 'utf8'))) {
      const o = doc.toJS() as ManifestObject | null;
      if (o !== null && typeof o === 'object' && typeof o.kind === 'string') out.push(o);
    }
  }
  return out;
}

/** The `kubernetes` Service's EndpointSlice: the API server on the fabric (selectorless, as upstream). */
async function ensureKubernetesEndpoints(kc: KubeConfig): Promise<void> {
  const discovery = kc.makeApiClient(DiscoveryV1Api);
  const body = {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: 'kubernetes', namespace: 'default', labels: { 'kubernetes.io/service-name': 'kubernetes' } },
    addressType: 'IPv4',
    endpoints: [{ addresses: [LAB_API_IP], conditions: { ready: true, serving: true, terminating: false } }],
    ports: [{ name: 'https', port: LAB_API_PORT, protocol: 'TCP' }],
  };
  try {
    await discovery.createNamespacedEndpointSlice({ namespace: 'default', body });
  } catch (err) {
    if (apiCode(err) !== 409) throw err;
  }
}

/**
 * The node's CNI configuration: the lab's wiring is the main plugin (the kubelet does it), Weft's
 * chained plugin (daemonset/cni/weft-cni) follows, talking to this node's agent through its run
 * dir. Without agents there is no chain (the plugin would refuse every pod: no agent answers).
 */
async function cniArgs(state: LabState, node: NodeState, withAgents: boolean): Promise<string[]> {
  if (!withAgents) return [];
  const confDir = kubePaths(state.name).cniConfDir(node.name);
  await mkdir(confDir, { recursive: true });
  const conf = { cniVersion: '1.0.0', name: 'k8s-pod-network', plugins: [{ type: 'weft-cni', runDir: nodeRunDir(state.name, node.name) }] };
  await writeFileAtomic(join(confDir, '10-weft.conflist'), JSON.stringify(conf, null, 2) + '\n');
  return ['--cni-conf-dir', confDir, '--cni-bin-dir', dirname(CNI_PLUGIN)];
}

/** What the DaemonSet's pod template would make for node `n`, with the lab's paths. */
function agentPod(state: LabState, n: NodeState): V1Pod {
  const paths = kubePaths(state.name);
  const podDir = join(paths.podsDir, `${AGENT_NAMESPACE}_${agentPodName(n.name)}`);
  const tokenFile = join(podDir, 'ca-token', 'token');
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: agentPodName(n.name), namespace: AGENT_NAMESPACE, labels: { app: 'weft-agent' }, annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(METRICS_PORT) } },
    spec: {
      nodeName: n.name,
      serviceAccountName: AGENT_ACCOUNT,
      hostNetwork: true,
      terminationGracePeriodSeconds: 30,
      containers: [
        {
          name: 'agent',
          image: 'weft-lab/agent',
          command: [
            process.execPath, ...agentNodeFlags(), WEFT_MAIN, 'agent', '--node=$(NODE_NAME)', `--kubeconfig=${paths.agentKubeconfig}`,
            `--ca=${LAB_CA_URL}`, `--ca-token-file=${tokenFile}`, `--ca-root=${join(podDir, 'ca-root', 'root-cert.pem')}`, `--pod-netns-prefix=${labPrefix(state.name)}pod-`,
            '--node-ip=$(HOST_IP)', `--run-dir=${nodeRunDir(state.name, n.name)}`, `--drain-timeout=${LAB_DRAIN_SECONDS}`,
          ],
          env: [
            { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
            { name: 'HOST_IP', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } },
            ...Object.entries(weftEnv()).map(([name, value]) => ({ name, value })),
          ],
          ports: [{ name: 'metrics', containerPort: METRICS_PORT }],
          readinessProbe: { httpGet: { path: '/healthz/ready', port: READINESS_PORT }, periodSeconds: 1 },
        },
      ],
      volumes: [
        { name: 'ca-token', projected: { sources: [{ serviceAccountToken: { path: 'token', audience: 'weft-ca', expirationSeconds: 3600 } }] } },
        // The trust bundle the CA publishes (ca-bootstrap.ts), as the DaemonSet mounts it.
        { name: 'ca-root', configMap: { name: 'weft-ca-root' } },
      ],
    },
  };
}

/**
 * The CA as its Deployment runs it: no key directory, so it bootstraps as on a cluster (creates
 * the weft-ca-keys Secret with a new root when absent, publishes the weft-ca-root ConfigMap the
 * agents' pods mount). The lab then copies the Secret into its CA directory, for `weft lab cert`.
 */
async function startKubeLabCa(state: LabState, kc: KubeConfig): Promise<ProcRef> {
  const ca = labCaPaths(state.name);
  const ref = await startInNetns(
    {
      what: 'the lab CA',
      netns: state.fabricNetns,
      argv: [process.execPath, WEFT_MAIN, 'ca', '--listen', `${LAB_CA_IP}:${LAB_CA_PORT}`, '--kubeconfig', kubePaths(state.name).caKubeconfig, '--namespace', AGENT_NAMESPACE],
      env: baseEnv(),
      cwd: REPO_DIR,
      log: ca.log,
    },
    { readyTimeoutMs: START_TIMEOUT_MS, waitExec: true, tcpPorts: [LAB_CA_PORT] },
  );
  const core = kc.makeApiClient(CoreV1Api);
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    const secret = await core.readNamespacedSecret({ name: 'weft-ca-keys', namespace: AGENT_NAMESPACE }).catch(() => undefined);
    const bundle = await core.readNamespacedConfigMap({ name: 'weft-ca-root', namespace: AGENT_NAMESPACE }).catch(() => undefined);
    if (secret?.data !== undefined && bundle !== undefined) {
      await mkdir(ca.dir, { recursive: true });
      for (const [key, value] of Object.entries(secret.data)) {
        if (/^[\w.-]+\.pem$/.test(key)) await writeFile(join(ca.dir, key), Buffer.from(value, 'base64'), { mode: 0o600 });
      }
      return ref;
    }
    if (Date.now() > deadline) throw new WeftError('WEFT_ERR_LAB', `the CA did not create the weft-ca-keys Secret and the weft-ca-root ConfigMap within ${START_TIMEOUT_MS} ms; see ${ca.log}`);
    await delay(100);
  }
}

/**
 * Starts `weft lab kube-apiserver` (agent/lab/kube/) on this machine's loopback (a free port, for
 * kubectl) and inside the fabric namespace on the bridge's address (for the lab), and waits until
 * the admin kubeconfig it writes works. Returns the process and the loopback port.
 */
async function startApiServer(state: LabState): Promise<{ ref: ProcRef; port: number }> {
  const paths = kubePaths(state.name);
  await mkdir(paths.apiserverDir, { recursive: true });
  const fd = openSync(paths.apiserverLog, 'a');
  let pid: number;
  try {
    const child = spawn(
      process.execPath,
      [
        WEFT_MAIN, 'lab', 'kube-apiserver',
        '--state', join(paths.apiserverDir, 'state.json'),
        '--listen', `${LAB_API_LOOPBACK}:0`,
        '--listen-netns', `/run/netns/${state.fabricNetns}=${LAB_API_IP}:${LAB_API_PORT}`,
        '--kubeconfig', paths.adminKubeconfig,
      ],
      { cwd: REPO_DIR, env: baseEnv(), detached: true, stdio: ['ignore', fd, fd] },
    );
    pid = await new Promise<number>((resolve, reject) => {
      child.once('spawn', () => resolve(child.pid!));
      child.once('error', (err) => reject(new WeftError('WEFT_ERR_LAB', `start the lab API server: ${err.message}`, { cause: err })));
    });
    child.unref();
  } finally {
    closeSync(fd);
  }
  const ref: ProcRef = { pid, startTime: procStartTime(pid) };
  const deadline = Date.now() + START_TIMEOUT_MS;
  let last = 'no kubeconfig yet';
  for (;;) {
    if (!refAlive(ref)) throw new WeftError('WEFT_ERR_LAB', `the lab API server exited at once; see ${paths.apiserverLog}`);
    if (existsSync(paths.adminKubeconfig)) {
      try {
        const kc = adminKubeConfig(state.name);
        await kc.makeApiClient(CoreV1Api).listNamespace();
        return { ref, port: Number(new URL(kc.getCurrentCluster()!.server).port) };
      } catch (err) {
        last = (err as Error).message;
      }
    }
    if (Date.now() > deadline) throw new WeftError('WEFT_ERR_LAB', `the lab API server did not answer within ${START_TIMEOUT_MS} ms (${last}); see ${paths.apiserverLog}`);
    await delay(50);
  }
}

function procStartTime(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
  } catch {
    return '';
  }
}

// ---------------------------------------------------------------------------------------------
// Status, apply, delete, exec

export async function kubeLabStatus(state: LabState, base: LabStatus): Promise<LabStatus> {
  const kc = adminKubeConfig(state.name);
  const core = kc.makeApiClient(CoreV1Api);
  const discovery = kc.makeApiClient(DiscoveryV1Api);
  const [pods, namespaces, services, slices, deploymentList, gatewayList] = await Promise.all([
    core.listPodForAllNamespaces(),
    core.listNamespace(),
    core.listServiceForAllNamespaces(),
    discovery.listEndpointSliceForAllNamespaces(),
    kc.makeApiClient(AppsV1Api).listDeploymentForAllNamespaces(),
    // A cluster without the Gateway API has no Gateways.
    kc.makeApiClient(CustomObjectsApi).listClusterCustomObject({ group: 'gateway.networking.k8s.io', version: 'v1', plural: 'gateways' }).then((l) => (l as { items?: KubernetesObject[] }).items ?? [], () => [] as KubernetesObject[]),
  ]);
  const ingress = gatewayList.map((g) => g as unknown as ManifestObject).filter(isIngressGatewayObject);
  const ingressKeys = new Set(ingress.map((g) => `${g.metadata.namespace ?? 'default'}/${g.metadata.name}`));
  const gateways: IngressGatewayStatus[] = ingress.map((g) => ({
    name: g.metadata.name,
    namespace: g.metadata.namespace ?? 'default',
    addresses: ((g as { status?: { addresses?: { value?: string }[] } }).status?.addresses ?? []).map((a) => a.value ?? '').filter((v) => v !== ''),
    ports: [...new Set((g.spec.listeners ?? []).map((l) => l.port))],
  }));
  const externalOf = new Map(services.items.map((s) => [`${s.metadata?.namespace ?? 'default'}/${s.metadata?.name}`, s.status?.loadBalancer?.ingress?.[0]?.ip]));
  const deployments: DeploymentStatus[] = deploymentList.items
    .map((d) => {
      const planned = planDeployment(d as unknown as DeploymentObject);
      const gateway = d.metadata?.ownerReferences?.find((r) => r.kind === 'Gateway');
      return {
        name: d.metadata?.name ?? '',
        namespace: d.metadata?.namespace ?? 'default',
        replicas: d.spec?.replicas ?? 1,
        ready: d.status?.availableReplicas ?? 0,
        templateHash: 'plan' in planned ? planned.plan.hash : '',
        pods: pods.items.filter((p) => ownedBy(p, d.metadata?.uid)).map((p) => p.metadata?.name ?? '').sort(),
        ...(gateway !== undefined ? { gateway: `${d.metadata?.namespace ?? 'default'}/${gateway.name}` } : {}),
        ...(gateway !== undefined && ingressKeys.has(`${d.metadata?.namespace ?? 'default'}/${gateway.name}`) ? { ingress: true } : {}),
      };
    })
    .sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
  const nsLabels = new Map(namespaces.items.map((n) => [n.metadata?.name ?? '', n.metadata?.labels ?? {}]));
  const pidOf = (p: V1Pod): number | undefined => {
    const id = p.status?.containerStatuses?.[0]?.containerID;
    const m = id === undefined ? null : /^weftlab:\/\/(\d+)$/.exec(id);
    return m === null ? undefined : Number(m[1]);
  };
  const podStatuses: PodStatus[] = pods.items
    .filter((p) => p.spec?.hostNetwork !== true)
    .map((p) => {
      const namespace = p.metadata?.namespace ?? 'default';
      const name = p.metadata?.name ?? '';
      const labels = p.metadata?.labels ?? {};
      return {
        name,
        namespace,
        node: p.spec?.nodeName ?? '',
        ip: p.status?.podIP ?? '',
        labels,
        inMesh: nsLabels.get(namespace)?.['weft.dev/mesh'] === 'enabled' && labels['weft.dev/mesh'] !== 'disabled',
        netns: podNetns(state.name, namespace, name),
        pid: pidOf(p),
        running: p.status?.phase === 'Running' && (p.status.containerStatuses ?? []).every((c) => c.state?.running !== undefined),
        containers: (p.status?.containerStatuses ?? []).map((c) => ({ name: c.name, pid: Number(/(\d+)$/.exec(c.containerID ?? '')?.[1] ?? 0), running: c.state?.running !== undefined })),
        log: podLogFile(state.name, namespace, name),
      };
    })
    .sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
  const views = serviceViewsFromApi(services.items, slices.items);
  const serviceStatuses: ServiceStatus[] = views.map((v) => ({
    name: v.name,
    namespace: v.namespace,
    clusterIP: v.clusterIP,
    ports: v.ports.map((p) => ({ name: p.name, port: p.port, protocol: p.protocol, targetPort: p.targetPort })),
    endpoints: v.ports.flatMap((p) => p.endpoints.map((e) => ({ pod: e.pod, ip: e.ip, port: p.port, targetPort: e.targetPort }))),
    ...(externalOf.get(v.key) !== undefined ? { externalIP: externalOf.get(v.key)! } : {}),
  }));
  const agents = new Map(pods.items.filter((p) => p.metadata?.namespace === AGENT_NAMESPACE && p.metadata.name?.startsWith('weft-agent-')).map((p) => [p.spec?.nodeName ?? '', p]));
  return {
    ...base,
    kubeconfig: kubePaths(state.name).adminKubeconfig,
    nodes: base.nodes.map((n) => {
      const agent = agents.get(n.name);
      return { ...n, agentPid: agent === undefined ? undefined : pidOf(agent), agentRunning: agent?.status?.phase === 'Running' && podReady(agent), agentLog: agentLogOf(state.name, n.name) };
    }),
    pods: podStatuses,
    services: serviceStatuses,
    deployments,
    gateways,
    prometheus: labPrometheusStatus(state),
  };
}

export async function kubeLabApply(state: LabState, loaded: LoadedManifests, readyTimeoutMs: number): Promise<ChangeSummary> {
  const kc = adminKubeConfig(state.name);
  const summary = await applyObjects(kc, loaded.objects);
  const pods = loaded.objects.filter((o) => o.kind === 'Pod' && o.apiVersion === 'v1').map((o) => `${o.metadata.namespace ?? 'default'}/${o.metadata.name}`);
  await waitForPods(state, kc, pods, readyTimeoutMs);
  await waitForDeployments(state, kc, [...deploymentKeys(loaded.objects), ...(await waypointDeploymentKeys(kc, loaded.objects, readyTimeoutMs))], readyTimeoutMs);
  summary.refused = await agentRefusals(state, kc, loaded.objects, readyTimeoutMs);
  return summary;
}

/**
 * What the agents refuse of the applied objects the agents read (policies and routes: the API server
 * double does not validate them against the CRD's schema), once every agent's watches have
 * seen the resourceVersion each object has now.
 */
async function agentRefusals(state: LabState, kc: KubeConfig, objects: readonly ManifestObject[], timeoutMs: number): Promise<ChangeSummary['refused']> {
  if (!state.agents) return [];
  const api = KubernetesObjectApi.makeApiClient(kc);
  const seen: Record<string, number> = {};
  for (const o of objects.filter((x) => ['AuthorizationPolicy', 'PeerAuthentication', 'HTTPRoute', 'GRPCRoute'].includes(x.kind))) {
    try {
      const current = await api.read(header(o));
      const rv = Number(current.metadata?.resourceVersion ?? 0);
      if (rv > (seen[o.kind] ?? 0)) seen[o.kind] = rv;
    } catch {
      // Not there (refused by the API server, which applyObjects reported): nothing to wait for.
    }
  }
  if (Object.keys(seen).length === 0) return [];
  const names = new Set(objects.flatMap(refusalNames));
  const refused = await collectRefusalsAfter(state.nodes, seen, timeoutMs);
  return refused.filter((r) => names.has(r.object));
}

export async function kubeLabDelete(state: LabState, loaded: LoadedManifests, timeoutMs: number): Promise<{ deleted: string[]; notFound: string[] }> {
  const kc = adminKubeConfig(state.name);
  const result = await deleteObjects(kc, loaded.objects, timeoutMs);
  return result;
}

/** The pod as `weft lab exec` needs it: where it runs and its environment. */
export async function kubeLabPod(state: LabState, namespace: string, name: string): Promise<{ netns: string; env: Record<string, string> }> {
  const core = adminKubeConfig(state.name).makeApiClient(CoreV1Api);
  let pod: V1Pod;
  try {
    pod = await core.readNamespacedPod({ name, namespace });
  } catch (err) {
    if (apiCode(err) === 404) throw new WeftError('WEFT_ERR_LAB_NOT_FOUND', `lab ${state.name} has no pod ${namespace}/${name} (kubectl --kubeconfig ${kubePaths(state.name).adminKubeconfig} get pods -A lists them)`);
    throw err;
  }
  const ip = pod.status?.podIP;
  if (ip === undefined) throw new WeftError('WEFT_ERR_LAB', `pod ${namespace}/${name} is not running yet (phase ${pod.status?.phase ?? 'unknown'})`);
  const c = pod.spec?.containers[0];
  const env: Record<string, string> = {};
  for (const e of c?.env ?? []) if (e.value !== undefined) env[e.name] = e.value;
  const node = pod.spec?.nodeName ?? '';
  const podState = { name, namespace, node, ip, netns: '', hostVeth: '', specHash: '', procs: [], log: '' };
  return {
    netns: pod.spec?.hostNetwork === true ? nodeNetns(state.name, node) : podNetns(state.name, namespace, name),
    env: podEnv(podState, { name: c?.name ?? '', argv: [], env, fieldEnv: {}, tcpPorts: [] }),
  };
}

/** Every process of the control plane is there (and the namespaces: checked by the caller). */
export function kubeLabHealthy(state: LabState): boolean {
  const k = state.kubernetes;
  if (k === undefined) return false;
  return refAlive(k.apiserver) && refAlive(k.controllers) && state.nodes.every((n) => refAlive(k.kubelets[n.name]));
}

/** The control plane's processes, stopped before anything else at `down` (so nothing restarts pods). */
export function kubeLabProcs(state: LabState | undefined): ProcRef[] {
  const k = state?.kubernetes;
  if (k === undefined) return [];
  return [k.apiserver, k.controllers, ...Object.values(k.kubelets)].filter((r): r is ProcRef => r !== undefined);
}

