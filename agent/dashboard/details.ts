/**
 * What the details panel shows for a clicked node or edge, from the graph, the agents' config
 * dumps and the cluster's Gateway API objects. Pure: the server gathers the inputs.
 */
import type { ManifestObject } from '../discovery/types.js';
import { topCallers, type Graph, type GraphEdge, type GraphNode } from './graph.js';
import type { AgentDump, ConfigDump } from './sources.js';

type DumpWorkload = NonNullable<ConfigDump['workloads']>[number];
type DumpPolicy = NonNullable<ConfigDump['policies']>[number];

export interface PodDetail {
  name: string;
  namespace: string;
  node: string;
  ip: string;
  identity: string;
  inMesh: boolean;
  /** When the certificate of its identity expires (from the agent that captures it). */
  certExpiry?: string;
}

export interface RouteDetail {
  kind: string;
  namespace: string;
  name: string;
  /** What it attaches to (`Service ns/name`, `Gateway ns/name`). */
  parents: string[];
  backends: string[];
  hostnames: string[];
}

export interface NodeDetails {
  node: GraphNode;
  identities: string[];
  pods: PodDetail[];
  policies: DumpPolicy[];
  routes: RouteDetail[];
  topCallers: { source: string; label: string; protocol: string; perSecond: number; unit: string }[];
  /** Services whose traffic reached this workload (or, for a service, the workloads it reached). */
  services: string[];
}

export interface EdgeDetails {
  edge: GraphEdge;
  source: NodeDetails;
  target: NodeDetails;
  /** Routes of the destination service (what a waypoint applies to this traffic). */
  routes: RouteDetail[];
}

export interface DetailInputs {
  graph: Graph;
  dumps: readonly AgentDump[];
  objects: readonly ManifestObject[];
}

function podMatches(w: DumpWorkload, node: GraphNode): boolean {
  if (w.namespace !== node.namespace || node.workload === undefined) return false;
  const name = w.workloadName ?? w.labels?.['app'] ?? w.name;
  if (name !== node.workload && w.name !== node.workload) return false;
  if (node.version === undefined) return true;
  const version = w.version ?? w.labels?.['version'];
  return version === undefined || version === node.version;
}

/** Pods of a workload node, one entry per pod (the capturing agent's view wins). */
function podsOf(node: GraphNode, dumps: readonly AgentDump[]): { pod: PodDetail; labels: Record<string, string> | undefined }[] {
  const byKey = new Map<string, { pod: PodDetail; labels: Record<string, string> | undefined; captured: boolean }>();
  for (const d of dumps) {
    for (const w of d.dump?.workloads ?? []) {
      if (!podMatches(w, node)) continue;
      const had = byKey.get(w.key);
      if (had !== undefined && (had.captured || !w.captured)) continue;
      const pod: PodDetail = { name: w.name, namespace: w.namespace, node: w.node, ip: w.ip, identity: w.identity, inMesh: w.inMesh, ...(w.certExpiry !== undefined ? { certExpiry: w.certExpiry } : {}) };
      byKey.set(w.key, { pod, labels: w.labels, captured: w.captured });
    }
  }
  return [...byKey.values()].sort((a, b) => a.pod.name.localeCompare(b.pod.name));
}

/** `app=reviews,version=v2` (the admin API's scope) -> labels; `namespace` -> {}. */
function scopeLabels(scope: string): Record<string, string> {
  if (scope === 'namespace' || scope === '') return {};
  const out: Record<string, string> = {};
  for (const part of scope.split(',')) {
    const i = part.indexOf('=');
    if (i > 0) out[part.slice(0, i)] = part.slice(i + 1);
  }
  return out;
}

/** Policies of the node's namespace whose selector matches its pods' labels (or app/version). */
function policiesOf(node: GraphNode, podLabels: readonly (Record<string, string> | undefined)[], dumps: readonly AgentDump[]): DumpPolicy[] {
  if (node.namespace === undefined || node.kind === 'namespace' || node.kind === 'app') return [];
  const fallback: Record<string, string> = { ...(node.app !== undefined ? { app: node.app } : {}), ...(node.version !== undefined ? { version: node.version } : {}) };
  const labelSets = podLabels.length > 0 ? podLabels.map((l) => l ?? fallback) : [fallback];
  const seen = new Map<string, DumpPolicy>();
  for (const d of dumps) {
    for (const p of d.dump?.policies ?? []) {
      if (p.namespace !== node.namespace) continue;
      const want = scopeLabels(p.scope);
      const selects = node.kind === 'service' ? p.scope === 'namespace' : labelSets.some((labels) => Object.entries(want).every(([k, v]) => labels[k] === v));
      if (selects) seen.set(`${p.kind}/${p.namespace}/${p.name}`, p);
    }
  }
  return [...seen.values()].sort((a, b) => `${a.kind}/${a.name}`.localeCompare(`${b.kind}/${b.name}`));
}

interface RouteRef {
  kind?: string;
  name?: string;
  namespace?: string;
}

function refText(r: RouteRef, defaultKind: string, ns: string): string {
  return `${r.kind ?? defaultKind} ${r.namespace ?? ns}/${r.name ?? '?'}`;
}

function routeDetail(o: ManifestObject): RouteDetail {
  const ns = o.metadata.namespace ?? 'default';
  const spec = (o as { spec?: { parentRefs?: RouteRef[]; hostnames?: string[]; rules?: { backendRefs?: RouteRef[] }[] } }).spec ?? {};
  const backends = new Set<string>();
  for (const rule of spec.rules ?? []) for (const b of rule.backendRefs ?? []) backends.add(refText(b, 'Service', ns));
  return {
    kind: o.kind,
    namespace: ns,
    name: o.metadata.name,
    parents: (spec.parentRefs ?? []).map((p) => refText(p, 'Gateway', ns)),
    backends: [...backends],
    hostnames: spec.hostnames ?? [],
  };
}

/** Routes that attach to or send to one of `refs` (`Service ns/name`, `Gateway ns/name`). */
function routesFor(refs: ReadonlySet<string>, objects: readonly ManifestObject[]): RouteDetail[] {
  return objects
    .filter((o) => o.kind === 'HTTPRoute' || o.kind === 'GRPCRoute')
    .map(routeDetail)
    .filter((r) => r.parents.some((p) => refs.has(p)) || r.backends.some((b) => refs.has(b)))
    .sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
}

function servicesOf(node: GraphNode, graph: Graph): string[] {
  if (node.kind === 'service') return graph.members.filter((m) => m.service === node.id).map((m) => m.workload);
  return [...new Set(graph.members.filter((m) => m.workload === node.id).map((m) => m.service))].sort();
}

function refsOf(node: GraphNode, services: readonly string[]): Set<string> {
  const refs = new Set<string>();
  const svcRef = (id: string): string => `Service ${id.replace(/^svc:/, '')}`;
  if (node.kind === 'service') refs.add(svcRef(node.id));
  else for (const s of services) refs.add(svcRef(s));
  if ((node.kind === 'waypoint' || node.kind === 'gateway') && node.namespace !== undefined && node.workload !== undefined) refs.add(`Gateway ${node.namespace}/${node.workload}`);
  return refs;
}

export function nodeDetails(id: string, inputs: DetailInputs): NodeDetails | undefined {
  const node = inputs.graph.nodes.find((n) => n.id === id);
  if (node === undefined) return undefined;
  const pods = node.kind === 'workload' || node.kind === 'waypoint' || node.kind === 'gateway' ? podsOf(node, inputs.dumps) : [];
  const identities = [...new Set([...pods.map((p) => p.pod.identity), ...(node.principal !== undefined ? [node.principal] : [])])].sort();
  const services = servicesOf(node, inputs.graph);
  const label = (nodeId: string): string => inputs.graph.nodes.find((n) => n.id === nodeId)?.label ?? nodeId;
  return {
    node,
    identities,
    pods: pods.map((p) => p.pod),
    policies: policiesOf(node, pods.map((p) => p.labels), inputs.dumps),
    routes: routesFor(refsOf(node, services), inputs.objects),
    topCallers: topCallers(inputs.graph, id).map((c) => ({ ...c, label: label(c.source) })),
    services,
  };
}

export function edgeDetails(id: string, inputs: DetailInputs): EdgeDetails | undefined {
  const edge = inputs.graph.edges.find((e) => e.id === id);
  if (edge === undefined) return undefined;
  const source = nodeDetails(edge.source, inputs);
  const target = nodeDetails(edge.target, inputs);
  if (source === undefined || target === undefined) return undefined;
  const refs = new Set<string>();
  if (edge.service !== undefined) refs.add(`Service ${edge.service}`);
  return { edge, source, target, routes: routesFor(refs, inputs.objects) };
}

/** Waypoint and gateway keys (`ns/name`) from the Gateways of the cluster. */
export function gatewayKeys(objects: readonly ManifestObject[], waypointClass: string): { waypoints: Set<string>; gateways: Set<string> } {
  const waypoints = new Set<string>();
  const gateways = new Set<string>();
  for (const o of objects) {
    if (o.kind !== 'Gateway') continue;
    const key = `${o.metadata.namespace ?? 'default'}/${o.metadata.name}`;
    const cls = (o as { spec?: { gatewayClassName?: string } }).spec?.gatewayClassName;
    (cls === waypointClass ? waypoints : gateways).add(key);
  }
  return { waypoints, gateways };
}
